package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestOrderShippedByScanning: over real processes (server, agent, a
// simulated scanner on a pty), an order is created, picked by scan, and
// packed by scan at the gateway: a wrong item gets a bad beep and is not
// counted, every picked unit is checked, the outbound SSCC label is
// scanned, and CMD:DONE ships it — the server marks it shipped once, with
// the label, and the order.shipped webhook fires once. An order the
// channel cancels after its pick gets its pick task cancelled at the
// gateway, which then refuses to pack it; one cancelled before a pack
// scanned offline reaches the server stays cancelled and raises a
// ship-refused alert.
func TestOrderShippedByScanning(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	g := c.newGateway("wh1", "pack1")
	c.mustDo("POST", "/api/v1/masterdata/wh1/locations", []map[string]any{{"code": "BIN-1", "type": "pick", "sellable": true}}, nil)
	c.mustDo("POST", "/api/v1/masterdata/wh1/items", []map[string]any{
		{"sku": "MILK", "gtins": []string{"04012345678901"}}, {"sku": "JAM"}, {"sku": "BREAD"}}, nil)
	require.Equal(t, 200, c.call("PUT", "/api/v1/channels/web", map[string]any{"share_pct": 100}, nil))
	waitFor(t, 30*time.Second, "master data at the gateway", func() bool {
		s := g.screen()
		return s.Counts["locations"] == 1 && s.Counts["items"] == 3
	})
	b := g.scanAll(t, "OP:ann", "CMD:RECEIVE", "LOC:BIN-1", "QTY:5", "SKU:MILK", "QTY:3", "SKU:JAM", "QTY:2", "SKU:BREAD", "CMD:DONE")
	require.Equal(t, map[string]int{"good": 10, "bad": 0, "warn": 0}, b, "%v", g.reasons(""))
	c.waitConverged("wh1", g)

	rcv := newHookReceiver(t)
	rcv.start()
	rcv.register(c, map[string]any{"events": []string{"order"}})

	order := func(ext string, lines ...map[string]any) orderView {
		var o orderView
		require.Equal(t, http.StatusCreated, c.call("POST", "/api/v1/orders", map[string]any{"warehouse": "wh1", "channel": "web", "external_id": ext, "lines": lines}, &o))
		waitFor(t, 30*time.Second, "the pick tasks of "+o.ID+" at the gateway", func() bool {
			n := 0
			for _, tk := range g.screen().Tasks {
				if tk.Order == o.ID {
					n++
				}
			}
			return n == len(lines)
		})
		return o
	}
	o1 := order("1", map[string]any{"sku": "MILK", "qty": 2}, map[string]any{"sku": "JAM", "qty": 1})
	b = g.scanAll(t, "CMD:PICK", "ORD:"+o1.ID, "LOC:BIN-1", "SKU:MILK", "SKU:MILK", "SKU:JAM", "CMD:DONE")
	require.Equal(t, map[string]int{"good": 7, "bad": 0, "warn": 0}, b, "%v", g.reasons(""))

	const label = "106141412345678908"
	b = g.scanAll(t, "CMD:PACK", "ORD:"+o1.ID, "04012345678901")
	require.Equal(t, map[string]int{"good": 3, "bad": 0, "warn": 0}, b, "%v", g.reasons(""))
	b = g.scanAll(t, "SKU:BREAD")
	require.Equal(t, map[string]int{"good": 0, "bad": 1, "warn": 0}, b, "a wrong item gets a bad beep")
	require.True(t, saidOnce(g.reasons("SKU:BREAD"), "bad: wrong item BREAD"), "%v", g.reasons("SKU:BREAD"))
	b = g.scanAll(t, "SKU:JAM", "SKU:JAM")
	require.Equal(t, map[string]int{"good": 1, "bad": 1, "warn": 0}, b, "one JAM was picked: a second is one too many")
	b = g.scanAll(t, "CMD:DONE")
	require.Equal(t, map[string]int{"good": 0, "bad": 1, "warn": 0}, b, "one MILK is not checked yet: nothing ships")
	b = g.scanAll(t, "04012345678901", "(00)"+label, "CMD:DONE")
	require.Equal(t, map[string]int{"good": 3, "bad": 0, "warn": 0}, b, "%v", g.reasons(""))
	require.True(t, saidOnce(g.reasons("CMD:DONE"), "good: order "+o1.ID+" shipped: 3 unit(s) checked, outbound label "+label), "%v", g.reasons("CMD:DONE"))

	var got struct {
		orderView
		SSCC      string `json:"sscc"`
		ShippedBy string `json:"shipped_by"`
	}
	waitFor(t, 30*time.Second, o1.ID+" shipped on the server", func() bool {
		getJSON(t, "http://"+c.httpAddr+"/api/v1/orders/wh1/"+o1.ID, &got)
		return got.Status == "shipped"
	})
	require.Equal(t, label, got.SSCC)
	require.Equal(t, "pack1/s1 (operator ann)", got.ShippedBy)
	for _, l := range got.Lines {
		require.Equal(t, l.Qty, l.Picked, l.SKU)
		require.Zero(t, l.Reserved, l.SKU)
	}
	shipped := func(id string) []map[string]any {
		var out []map[string]any
		for _, h := range rcv.received("order") {
			var body struct {
				Event string         `json:"event"`
				Order map[string]any `json:"order"`
			}
			require.NoError(t, json.Unmarshal(h.body, &body))
			if body.Event == "order.shipped" && body.Order["id"] == id {
				out = append(out, body.Order)
			}
		}
		return out
	}
	waitFor(t, 30*time.Second, "the order.shipped webhook", func() bool { return len(shipped(o1.ID)) == 1 })
	require.Equal(t, label, shipped(o1.ID)[0]["sscc"])
	waitFor(t, 30*time.Second, "the gateway's ship notice confirmed", func() bool { return len(g.screen().Notices) == 0 })
	require.Equal(t, 200, c.call("POST", "/api/v1/orders/wh1/"+o1.ID+"/ship", nil, nil), "the ship API stays, and a replay is fine")

	// Cancelled by the channel after the pick: the gateway gets the
	// order's pick tasks cancelled and refuses to pack it.
	o2 := order("2", map[string]any{"sku": "BREAD", "qty": 1})
	b = g.scanAll(t, "CMD:PICK", "ORD:"+o2.ID, "LOC:BIN-1", "SKU:BREAD", "CMD:DONE")
	require.Equal(t, map[string]int{"good": 5, "bad": 0, "warn": 0}, b, "%v", g.reasons(""))
	require.Equal(t, 200, c.call("POST", "/api/v1/orders/wh1/"+o2.ID+"/cancel", nil, nil))
	waitFor(t, 30*time.Second, "the pick task of "+o2.ID+" cancelled at the gateway", func() bool {
		return agentTaskStatus(t, g, o2.ID) == "cancelled"
	})
	b = g.scanAll(t, "CMD:PACK", "ORD:"+o2.ID, "CMD:CANCEL")
	require.Equal(t, map[string]int{"good": 2, "bad": 1, "warn": 0}, b, "%v", g.reasons(""))
	require.True(t, saidOnce(g.reasons("ORD:"+o2.ID), "bad: order "+o2.ID+" was cancelled"), "%v", g.reasons("ORD:"+o2.ID))

	// Packed while the server was down, cancelled before the ship reached
	// it (the agent down meanwhile): the cancel stands, and a person is told.
	o3 := order("3", map[string]any{"sku": "BREAD", "qty": 1})
	b = g.scanAll(t, "CMD:PICK", "ORD:"+o3.ID, "LOC:BIN-1", "SKU:BREAD", "CMD:DONE")
	require.Equal(t, map[string]int{"good": 5, "bad": 0, "warn": 0}, b, "%v", g.reasons(""))
	c.waitConverged("wh1", g)
	c.stopServer(syscall.SIGKILL)
	waitFor(t, 10*time.Second, "the gateway sees the server gone", func() bool { return !g.status().Connected })
	b = g.scanAll(t, "CMD:PACK", "ORD:"+o3.ID, "SKU:BREAD", "CMD:DONE")
	require.Equal(t, map[string]int{"good": 4, "bad": 0, "warn": 0}, b, "the gateway does not know of a cancel: %v", g.reasons(""))
	g.Agent().Stop(syscall.SIGKILL)
	c.startServer()
	require.Equal(t, 200, c.call("POST", "/api/v1/orders/wh1/"+o3.ID+"/cancel", nil, nil))
	g.startAgent()
	var alerts struct {
		Items []struct{ Kind, Gateway, Message string }
	}
	waitFor(t, 30*time.Second, "a ship-refused alert", func() bool {
		getJSON(t, "http://"+c.httpAddr+"/api/v1/alerts?kind=ship-refused", &alerts)
		return len(alerts.Items) == 1
	})
	require.Equal(t, "pack1", alerts.Items[0].Gateway)
	require.Contains(t, alerts.Items[0].Message, "order "+o3.ID)
	require.Contains(t, alerts.Items[0].Message, "is cancelled")
	waitFor(t, 30*time.Second, "the refused notice confirmed", func() bool { return len(g.screen().Notices) == 0 })
	var o3now orderView
	getJSON(t, "http://"+c.httpAddr+"/api/v1/orders/wh1/"+o3.ID, &o3now)
	require.Equal(t, "cancelled", o3now.Status)
	require.Empty(t, shipped(o3.ID))
	// The webhooks queued after o1 shipped (o2 created, cancelled) have
	// arrived: no second order.shipped of o1 came before them.
	waitFor(t, 30*time.Second, "the order.cancelled webhook of "+o2.ID, func() bool {
		for _, h := range rcv.received("order") {
			var body struct {
				Event string         `json:"event"`
				Order map[string]any `json:"order"`
			}
			require.NoError(t, json.Unmarshal(h.body, &body))
			if body.Event == "order.cancelled" && body.Order["id"] == o2.ID {
				return true
			}
		}
		return false
	})
	require.Len(t, shipped(o1.ID), 1, "shipped once, by the scan")
	require.Empty(t, shipped(o2.ID))
	require.Zero(t, rcv.badSig)
}

// agentTaskStatus returns the status the gateway holds for the pick task
// of order ("" when it holds none).
func agentTaskStatus(t *testing.T, g *gateway, order string) string {
	var st struct {
		Tasks []struct{ Order, Status string }
	}
	getJSON(t, "http://"+g.HTTP+"/api/v1/status", &st)
	for _, tk := range st.Tasks {
		if tk.Order == order {
			return tk.Status
		}
	}
	return ""
}

// saidOnce reports whether exactly one of the reasons contains s.
func saidOnce(reasons []string, s string) bool {
	n := 0
	for _, r := range reasons {
		if strings.Contains(r, s) {
			n++
		}
	}
	return n == 1
}

// TestOrderShippedByScanningOffline: the pick and the pack are scanned
// while the server is down, the agent is killed (-9) right after the last
// good beep and restarted, and when the server is back the order is
// shipped once — after the picks it packed are applied, so the order shows
// them picked — with its label and one order.shipped webhook.
func TestOrderShippedByScanningOffline(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	g := c.newGateway("wh1", "pack1")
	c.mustDo("POST", "/api/v1/masterdata/wh1/locations", []map[string]any{{"code": "BIN-1", "type": "pick", "sellable": true}}, nil)
	c.mustDo("POST", "/api/v1/masterdata/wh1/items", []map[string]any{{"sku": "MILK", "gtins": []string{"04012345678901"}}}, nil)
	require.Equal(t, 200, c.call("PUT", "/api/v1/channels/web", map[string]any{"share_pct": 100}, nil))
	waitFor(t, 30*time.Second, "master data at the gateway", func() bool {
		s := g.screen()
		return s.Counts["locations"] == 1 && s.Counts["items"] == 1
	})
	b := g.scanAll(t, "CMD:RECEIVE", "LOC:BIN-1", "QTY:4", "SKU:MILK", "CMD:DONE")
	require.Equal(t, map[string]int{"good": 5, "bad": 0, "warn": 0}, b, "%v", g.reasons(""))
	c.waitConverged("wh1", g)
	rcv := newHookReceiver(t)
	rcv.start()
	rcv.register(c, map[string]any{"events": []string{"order"}})
	var o orderView
	require.Equal(t, http.StatusCreated, c.call("POST", "/api/v1/orders", map[string]any{"warehouse": "wh1", "channel": "web", "external_id": "1",
		"lines": []map[string]any{{"sku": "MILK", "qty": 3}}}, &o))
	waitFor(t, 30*time.Second, "the pick task at the gateway", func() bool { return len(g.screen().Tasks) == 1 })

	c.stopServer(syscall.SIGKILL)
	waitFor(t, 10*time.Second, "the gateway sees the server gone", func() bool { return !g.status().Connected })
	b = g.scanAll(t, "CMD:PICK", "ORD:"+o.ID, "LOC:BIN-1", "QTY:3", "SKU:MILK", "CMD:DONE",
		"CMD:PACK", "ORD:"+o.ID, "QTY:2", "04012345678901", "SKU:JAM", "SKU:MILK", "(00)106141412345678908", "CMD:DONE")
	require.Equal(t, map[string]int{"good": 13, "bad": 1, "warn": 0}, b, "offline: the pick and the pack are confirmed, the wrong item refused: %v", g.reasons(""))
	g.Agent().Stop(syscall.SIGKILL) // right after the good beep of the ship
	g.startAgent()
	c.startServer()

	var got struct {
		orderView
		SSCC string `json:"sscc"`
	}
	waitFor(t, 30*time.Second, o.ID+" shipped on the server", func() bool {
		getJSON(t, "http://"+c.httpAddr+"/api/v1/orders/wh1/"+o.ID, &got)
		return got.Status == "shipped"
	})
	require.Equal(t, "106141412345678908", got.SSCC)
	require.Equal(t, int64(3), got.Lines[0].Picked, "the picks were applied before the ship")
	waitFor(t, 30*time.Second, "the order.shipped webhook", func() bool {
		n := 0
		for _, h := range rcv.received("order") {
			var body struct{ Event string }
			require.NoError(t, json.Unmarshal(h.body, &body))
			if body.Event == "order.shipped" {
				n++
			}
		}
		return n == 1
	})
	waitFor(t, 30*time.Second, "the gateway's notices confirmed", func() bool { return len(g.screen().Notices) == 0 })
	require.Equal(t, map[string]int64{"BIN-1/MILK": 1}, c.waitConverged("wh1", g))
}

// TestOrderPickedInTwoZonesPackedAtAPackStation: an order picked by the
// gateways of two zones is packed at a third, the gateway of the pack
// location: once each pick task is closed the server sends it there too,
// so the pack station checks every unit of the order, refuses a wrong
// item, and ships it.
func TestOrderPickedInTwoZonesPackedAtAPackStation(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	p1, p2, pack := c.newGateway("wh1", "pick1"), c.newGateway("wh1", "pick2"), c.newGateway("wh1", "pack1")
	c.mustDo("POST", "/api/v1/masterdata/wh1/locations", []map[string]any{
		{"code": "BIN-1", "zone": "Z1", "type": "pick", "sellable": true},
		{"code": "BIN-2", "zone": "Z2", "type": "pick", "sellable": true},
		{"code": "PACK-1", "zone": "PACK", "type": "pack"}}, nil)
	c.mustDo("POST", "/api/v1/masterdata/wh1/zones", []map[string]any{
		{"zone": "Z1", "gateway": "pick1"}, {"zone": "Z2", "gateway": "pick2"}, {"zone": "PACK", "gateway": "pack1"}}, nil)
	c.mustDo("POST", "/api/v1/masterdata/wh1/items", []map[string]any{{"sku": "MILK", "gtins": []string{"04012345678901"}}, {"sku": "JAM"}}, nil)
	require.Equal(t, 200, c.call("PUT", "/api/v1/channels/web", map[string]any{"share_pct": 100}, nil))
	for _, g := range []*gateway{p1, p2, pack} {
		waitFor(t, 30*time.Second, "master data at "+g.GW, func() bool { return g.screen().Counts["locations"] == 3 })
	}
	require.Equal(t, map[string]int{"good": 5, "bad": 0, "warn": 0}, p1.scanAll(t, "CMD:RECEIVE", "LOC:BIN-1", "QTY:2", "SKU:MILK", "CMD:DONE"))
	require.Equal(t, map[string]int{"good": 4, "bad": 0, "warn": 0}, p2.scanAll(t, "CMD:RECEIVE", "LOC:BIN-2", "SKU:JAM", "CMD:DONE"))
	c.waitConverged("wh1", p1, p2)

	var o orderView
	require.Equal(t, http.StatusCreated, c.call("POST", "/api/v1/orders", map[string]any{"warehouse": "wh1", "channel": "web", "external_id": "1",
		"lines": []map[string]any{{"sku": "MILK", "qty": 2}, {"sku": "JAM", "qty": 1}}}, &o))
	for _, g := range []*gateway{p1, p2} {
		waitFor(t, 30*time.Second, "the pick task at "+g.GW, func() bool { return agentTaskStatus(t, g, o.ID) == "open" })
	}
	require.Empty(t, agentTaskStatus(t, pack, o.ID), "open tasks are not sent to the pack station")
	require.Equal(t, map[string]int{"good": 6, "bad": 0, "warn": 0}, p1.scanAll(t, "CMD:PICK", "ORD:"+o.ID, "LOC:BIN-1", "QTY:2", "SKU:MILK", "CMD:DONE"))
	require.Equal(t, map[string]int{"good": 5, "bad": 0, "warn": 0}, p2.scanAll(t, "CMD:PICK", "ORD:"+o.ID, "LOC:BIN-2", "SKU:JAM", "CMD:DONE"))
	waitFor(t, 30*time.Second, "both closed tasks at the pack station", func() bool {
		var st struct {
			Tasks []struct{ Order, Status string }
		}
		getJSON(t, "http://"+pack.HTTP+"/api/v1/status", &st)
		n := 0
		for _, tk := range st.Tasks {
			if tk.Order == o.ID && tk.Status == "done" {
				n++
			}
		}
		return n == 2
	})

	b := pack.scanAll(t, "CMD:PACK", "ORD:"+o.ID, "04012345678901", "SKU:BREAD", "SKU:JAM", "04012345678901", "CMD:DONE")
	require.Equal(t, map[string]int{"good": 6, "bad": 1, "warn": 0}, b, "%v", pack.reasons(""))
	require.True(t, saidOnce(pack.reasons("ORD:"+o.ID), "check 3 unit(s) of 2 line(s)"), "%v", pack.reasons("ORD:"))
	var got struct {
		orderView
		ShippedBy string `json:"shipped_by"`
	}
	waitFor(t, 30*time.Second, o.ID+" shipped on the server", func() bool {
		getJSON(t, "http://"+c.httpAddr+"/api/v1/orders/wh1/"+o.ID, &got)
		return got.Status == "shipped"
	})
	require.Equal(t, "pack1/s1", got.ShippedBy)
	for _, l := range got.Lines {
		require.Equal(t, l.Qty, l.Picked, l.SKU)
	}
}
