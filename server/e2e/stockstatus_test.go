package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// milkGTIN is the GTIN-14 of the lot- and expiry-tracked item of the stock
// status tests (a valid check digit).
const milkGTIN = "04012345678901"

// gs1 is the human-readable GS1 element string of a unit of milk of lot
// with its expiry date (AI 17, YYMMDD).
func gs1(lot string, expiry time.Time) string {
	return "(01)" + milkGTIN + "(17)" + expiry.Format("060102") + "(10)" + lot
}

// statusRow is a stock row of the API, with its status.
type statusRow struct {
	Location, SKU, Lot, Status, Owner string
	OnHand                            int64 `json:"on_hand"`
}

// statusStock returns the server's non-zero stock of sku in wh as
// "loc/lot/status" → on-hand.
func (c *cluster) statusStock(wh, sku string) map[string]int64 {
	var b struct{ Items []statusRow }
	getJSON(c.t, fmt.Sprintf("http://%s/api/v1/stock?warehouse=%s&sku=%s", c.httpAddr, wh, sku), &b)
	return statusMap(b.Items)
}

// statusStock returns the gateway's local view of sku the same way.
func (g *gateway) statusStock(sku string) map[string]int64 {
	var b struct{ Items []statusRow }
	if err := json.Unmarshal(g.get("/api/v1/stock?sku="+sku), &b); err != nil {
		return nil
	}
	return statusMap(b.Items)
}

func statusMap(rows []statusRow) map[string]int64 {
	out := map[string]int64{}
	for _, r := range rows {
		if r.OnHand != 0 {
			out[r.Location+"/"+r.Lot+"/"+r.Status] = r.OnHand
		}
	}
	return out
}

func (g *gateway) get(path string) []byte {
	resp, err := http.Get("http://" + g.HTTP + path)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if json.NewDecoder(resp.Body).Decode(&raw) != nil {
		return nil
	}
	return raw
}

// setupMilk defines bin B-01 (sellable, zone Z served by gw) and the
// lot- and expiry-tracked item MILK with its GTIN.
func setupMilk(t *testing.T, c *cluster, g *gateway) {
	c.mustDo("POST", "/api/v1/masterdata/wh1/locations", []map[string]any{{"code": "B-01", "zone": "Z", "type": "storage", "sellable": true}}, nil)
	c.mustDo("POST", "/api/v1/masterdata/wh1/zones", []map[string]any{{"zone": "Z", "gateway": g.GW}}, nil)
	c.mustDo("POST", "/api/v1/masterdata/wh1/items", []map[string]any{{"sku": "MILK", "gtins": []string{milkGTIN}, "track_lot": true, "track_expiry": true}}, nil)
}

// retainedMilk connects a new MQTT subscriber to the channel's
// availability topic and returns what the retained message offers of
// MILK (-1 while none arrived, or it is not retained).
func (c *cluster) retainedMilk(channel string) int64 {
	tp := c.tap("shelfsync/v1/channels/" + channel + "/availability")
	var got int64 = -1
	waitFor(c.t, 10*time.Second, "the retained availability message", func() bool {
		for _, m := range tp.all() {
			if !m.retained {
				continue
			}
			var a availability
			require.NoError(c.t, json.Unmarshal(m.payload, &a))
			got = a.of("MILK")
			return true
		}
		return false
	})
	tp.c.Disconnect(100)
	return got
}

// TestHeldAndExpiredLotsAreNotSold: over real processes (server with its
// embedded broker, agent, simulated scanner on a pty), one receipt against
// a PO brings a good lot, an over-received lot and an expired lot. The
// over-receipt lands on hold and the expired lot on hold and then expired
// (the server's expiry sweep); availability and the retained availability
// topic count only the good lot; an order is routed (FEFO) to the good
// lot, though the held lot expires sooner; at the pick the expired lot
// and the held lot get a bad beep and nothing is recorded; releasing the
// hold by scan makes the held lot available, and the retained topic
// follows.
func TestHeldAndExpiredLotsAreNotSold(t *testing.T) {
	t.Parallel()
	c := newClusterWith(t, "--expiry-every", "1s")
	g := c.newGateway("wh1", "g1")
	setupMilk(t, c, g)
	c.mustDo("POST", "/api/v1/masterdata/wh1/pos", []map[string]any{{"id": "P1", "dock": "B-01", "lines": []map[string]any{{"sku": "MILK", "qty": 4}}}}, nil)
	require.Equal(t, 200, c.call("PUT", "/api/v1/channels/web", map[string]any{"share_pct": 100}, nil))
	waitFor(t, 30*time.Second, "the master data at the gateway", func() bool {
		s := g.screen()
		return len(s.POs) == 1 && s.Counts["locations"] == 1
	})

	today := time.Now().UTC()
	good, soon, past := today.AddDate(0, 0, 60), today.AddDate(0, 0, 40), today.AddDate(0, 0, -10)
	b := g.scanAll(t, "OP:alice", "CMD:RECEIVE", "PO:P1", "LOC:B-01",
		"QTY:4", gs1("LG", good), // the PO's 4: available
		"QTY:2", gs1("LO", soon), // 2 beyond the PO: over-receipt, on hold
		"QTY:3", gs1("LX", past), // past its date: expired, on hold
		"CMD:DONE")
	require.Equal(t, 0, b["bad"], "%v", g.reasons(""))
	require.Equal(t, 2, b["warn"], "the over-receipt and the expired lot are flagged: %v", g.reasons(""))
	require.Contains(t, g.reasons("(10)LO")[0], "over-receipt")
	require.Contains(t, g.reasons("(10)LX")[0], "expired")

	want := map[string]int64{"B-01/LG/available": 4, "B-01/LO/hold": 2, "B-01/LX/expired": 3}
	waitFor(t, 30*time.Second, "good lot available, over-receipt held, expired lot expired at the server", func() bool {
		return fmt.Sprint(c.statusStock("wh1", "MILK")) == fmt.Sprint(want)
	})
	waitFor(t, 30*time.Second, "the expired lot expired at the gateway too", func() bool {
		return fmt.Sprint(g.statusStock("MILK")) == fmt.Sprint(want)
	})
	var av struct {
		Items []struct {
			SKU                 string
			OnHand              int64 `json:"on_hand"`
			Sellable, Available int64
		}
	}
	// The availability model folds in changes after a short debounce, so
	// the good lot's 4 can be seen before the held and expired lots: wait
	// for on hand to sum every status, then check only the good lot is
	// available.
	waitFor(t, 20*time.Second, "availability's on hand sums every status", func() bool {
		getJSON(t, "http://"+c.httpAddr+"/api/v1/availability?warehouse=wh1&sku=MILK", &av)
		return len(av.Items) == 1 && av.Items[0].OnHand == 9
	})
	require.Equal(t, int64(4), av.Items[0].Available, "availability counts only the good lot")
	waitFor(t, 20*time.Second, "the retained topic offers the good lot", func() bool { return c.retainedMilk("web") == 4 })

	// An order of 2: FEFO routes the good lot, not the held lot (which
	// expires sooner) nor the expired one.
	var o orderView
	require.Equal(t, 201, c.call("POST", "/api/v1/orders", map[string]any{"warehouse": "wh1", "channel": "web", "external_id": "o1",
		"lines": []map[string]any{{"sku": "MILK", "qty": 2}}}, &o))
	var task struct{ ID, Lot, Location string }
	waitFor(t, 30*time.Second, "the pick task at the gateway", func() bool {
		for _, tk := range g.screen().Tasks {
			if tk.Order == o.ID && tk.Kind == "pick" {
				task.ID, task.Lot, task.Location = tk.ID, tk.Lot, tk.Location
				return true
			}
		}
		return false
	})
	require.Equal(t, "LG", task.Lot, "FEFO routes the good lot")
	require.Equal(t, "B-01", task.Location)

	b = g.scanAll(t, "CMD:PICK", "ORD:"+o.ID, "LOC:B-01", gs1("LX", past))
	require.Equal(t, map[string]int{"good": 3, "bad": 1, "warn": 0}, b, "%v", g.reasons(""))
	require.Contains(t, lastReason(g, "(10)LX"), "lot LX of MILK expired on "+past.Format(time.DateOnly))
	b = g.scanAll(t, gs1("LO", soon))
	require.Equal(t, 1, b["bad"], "the held lot is not for picking: %v", g.reasons("(10)LO"))
	require.Contains(t, lastReason(g, "(10)LO"), "lot LO of MILK at B-01 is hold, not for picking")
	b = g.scanAll(t, gs1("LG", good), gs1("LG", good), "CMD:DONE")
	require.Equal(t, map[string]int{"good": 3, "bad": 0, "warn": 0}, b, "%v", g.reasons(""))

	want = map[string]int64{"B-01/LG/available": 2, "B-01/LO/hold": 2, "B-01/LX/expired": 3}
	waitFor(t, 30*time.Second, "the pick at the server", func() bool {
		return fmt.Sprint(c.statusStock("wh1", "MILK")) == fmt.Sprint(want)
	})
	waitFor(t, 20*time.Second, "the retained topic after the pick", func() bool { return c.retainedMilk("web") == 2 })

	// Releasing the hold by scan makes the lot available; the retained
	// topic follows.
	b = g.scanAll(t, "CMD:RELEASE", "LOC:B-01", "REASON:QC-OK", "QTY:2", gs1("LO", soon), "CMD:DONE")
	require.Equal(t, map[string]int{"good": 6, "bad": 0, "warn": 0}, b, "%v", g.reasons(""))
	want = map[string]int64{"B-01/LG/available": 2, "B-01/LO/available": 2, "B-01/LX/expired": 3}
	waitFor(t, 30*time.Second, "the release at the server", func() bool {
		return fmt.Sprint(c.statusStock("wh1", "MILK")) == fmt.Sprint(want)
	})
	waitFor(t, 20*time.Second, "availability after the release", func() bool {
		getJSON(t, "http://"+c.httpAddr+"/api/v1/availability?warehouse=wh1&sku=MILK", &av)
		return len(av.Items) == 1 && av.Items[0].Available == 4
	})
	waitFor(t, 20*time.Second, "the retained topic after the release", func() bool { return c.retainedMilk("web") == 4 })

	var h struct {
		Items []struct{ Kind, Reason, Operator, Status, ToStatus string }
	}
	getJSON(t, "http://"+c.httpAddr+"/api/v1/stock/history?warehouse=wh1&location=B-01&sku=MILK&lot=LO&status=available", &h)
	var kinds []string
	for _, e := range h.Items {
		kinds = append(kinds, e.Kind+" "+e.Reason)
	}
	require.Contains(t, kinds, "status QC-OK", "the release is in the stock history")
}

// lastReason is the reason of the latest scan whose raw text contains raw.
func lastReason(g *gateway, raw string) string {
	rs := g.reasons(raw)
	if len(rs) == 0 {
		return ""
	}
	return rs[len(rs)-1]
}

// TestALotCrossesItsExpiryDate: a lot received five days before its
// expiry raises a near-expiry alert on a server judging dates by the real
// clock. The server is restarted with --expiry-clock-offset six days
// ahead: the lot becomes expired at the server (a server-origin status
// op), its near-expiry alert — raised first — is cleared, and the expired
// lot reaches both gateways of the warehouse, whose local views show it
// expired; the one serving the bin refuses to pick it with a bad beep,
// though by the gateway's own clock (and the date in the barcode) it has
// not expired yet.
func TestALotCrossesItsExpiryDate(t *testing.T) {
	t.Parallel()
	c := newClusterWith(t, "--expiry-every", "1s")
	g := c.newGateway("wh1", "g1")
	g2 := c.newGateway("wh1", "g2") // another gateway of the warehouse
	setupMilk(t, c, g)
	waitFor(t, 30*time.Second, "the master data at the gateway", func() bool { return g.screen().Counts["locations"] == 1 })

	expiry := time.Now().UTC().AddDate(0, 0, 5)
	b := g.scanAll(t, "OP:alice", "CMD:RECEIVE", "LOC:B-01", "QTY:3", gs1("LN", expiry), "CMD:DONE")
	require.Equal(t, map[string]int{"good": 6, "bad": 0, "warn": 0}, b, "%v", g.reasons(""))
	waitFor(t, 30*time.Second, "the lot available at the server", func() bool {
		return fmt.Sprint(c.statusStock("wh1", "MILK")) == fmt.Sprint(map[string]int64{"B-01/LN/available": 3})
	})

	var near alertFull
	waitFor(t, 30*time.Second, "the near-expiry alert", func() bool {
		for _, a := range c.fullAlerts("kind=near-expiry") {
			near = a
			return true
		}
		return false
	})
	require.Equal(t, "open", near.Status)
	require.Equal(t, "MILK", near.SKU)
	require.Contains(t, near.Message, "lot LN of MILK (3 on hand) expires on "+expiry.Format(time.DateOnly))
	var list struct {
		Items []struct {
			SKU, Lot, Expiry string
			DaysLeft         int   `json:"days_left"`
			OnHand           int64 `json:"on_hand"`
		}
	}
	asked := time.Now().UTC().Truncate(24 * time.Hour) // the day the server judges by (one after the receipt, across midnight)
	getJSON(t, "http://"+c.httpAddr+"/api/v1/stock/near-expiry?warehouse=wh1", &list)
	require.Len(t, list.Items, 1)
	require.Equal(t, "LN", list.Items[0].Lot)
	require.Equal(t, expiry.Format(time.DateOnly), list.Items[0].Expiry)
	require.Equal(t, int(expiry.Truncate(24*time.Hour).Sub(asked)/(24*time.Hour)), list.Items[0].DaysLeft, "5 on the day of the receipt")
	require.Equal(t, map[string]int64{"B-01/LN/available": 3}, g.statusStock("MILK"))
	waitFor(t, 30*time.Second, "the lot available at the other gateway", func() bool {
		return fmt.Sprint(g2.statusStock("MILK")) == fmt.Sprint(map[string]int64{"B-01/LN/available": 3})
	})
	var ack alertFull
	require.Equal(t, 200, c.call("POST", "/api/v1/alerts/"+near.ID+"/ack", map[string]any{"by": "alice", "note": "sell it first"}, &ack))
	require.Equal(t, "acknowledged", ack.Status)

	// Six days on: the lot is past its date.
	c.stopServer(syscall.SIGTERM)
	c.server.Args = append(c.server.Args, "--expiry-clock-offset", "144h")
	c.startServer()
	waitFor(t, 30*time.Second, "the lot expired at the server", func() bool {
		return fmt.Sprint(c.statusStock("wh1", "MILK")) == fmt.Sprint(map[string]int64{"B-01/LN/expired": 3})
	})
	for _, gw := range []*gateway{g, g2} {
		waitFor(t, 30*time.Second, "the lot expired at gateway "+gw.GW, func() bool {
			return fmt.Sprint(gw.statusStock("MILK")) == fmt.Sprint(map[string]int64{"B-01/LN/expired": 3})
		})
	}
	var h struct {
		Items []struct {
			Kind, Reason, Gateway string
			HLC                   uint64
		}
	}
	getJSON(t, "http://"+c.httpAddr+"/api/v1/stock/history?warehouse=wh1&location=B-01&sku=MILK&lot=LN&status=expired", &h)
	require.Len(t, h.Items, 1, "%+v", h.Items)
	require.Equal(t, "status", h.Items[0].Kind)
	require.Equal(t, "EXPIRED", h.Items[0].Reason)
	require.Equal(t, "@server", h.Items[0].Gateway)
	require.Equal(t, 1.0, serverMetric(t, "http://"+c.httpAddr, "shelfsync_expiry_expired_keys_total"), "one key expired")
	stamped := time.UnixMilli(int64(h.Items[0].HLC >> 16))
	require.WithinDuration(t, time.Now(), stamped, time.Hour, "the expiry op is stamped by the real clock, not the shifted date")

	var cleared alertFull
	waitFor(t, 30*time.Second, "the near-expiry alert cleared", func() bool {
		getJSON(t, "http://"+c.httpAddr+"/api/v1/alerts/"+near.ID, &cleared)
		return cleared.Status == "cleared"
	})
	require.Less(t, cleared.CreatedMS, stamped.UnixMilli(), "the near-expiry alert came first")
	require.Equal(t, "alice", cleared.AckBy, "acknowledged, then cleared by the server")
	require.Len(t, c.fullAlerts("kind=near-expiry"), 1, "no second alert")
	require.Empty(t, c.fullAlerts("kind=near-expiry&standing=true"))
	getJSON(t, "http://"+c.httpAddr+"/api/v1/stock/near-expiry?warehouse=wh1", &list)
	require.Empty(t, list.Items)

	// The gateway's clock and the barcode say the lot is still good; its
	// view says expired: a bad beep, nothing recorded.
	before := g.status().LastSeq
	b = g.scanAll(t, "CMD:PICK", "LOC:B-01", gs1("LN", expiry), "CMD:DONE")
	require.Equal(t, map[string]int{"good": 3, "bad": 1, "warn": 0}, b, "%v", g.reasons(""))
	require.Contains(t, lastReason(g, "(10)LN"), "lot LN of MILK at B-01 is expired, not for picking", "refused by the replicated status, not by a date")
	require.Equal(t, before, g.status().LastSeq, "nothing recorded")
	require.Equal(t, map[string]int64{"B-01/LN/expired": 3}, c.statusStock("wh1", "MILK"))
}

// alertFull is an alert as the API shows it.
type alertFull struct {
	ID, Kind, Status, Warehouse, SKU, Message string
	AckBy                                     string `json:"ack_by"`
	CreatedMS                                 int64  `json:"created_ms"`
	ClosedMS                                  int64  `json:"closed_ms"`
}

func (c *cluster) fullAlerts(query string) []alertFull {
	var body struct{ Items []alertFull }
	getJSON(c.t, "http://"+c.httpAddr+"/api/v1/alerts?limit=1000&"+query, &body)
	sort.Slice(body.Items, func(i, j int) bool { return body.Items[i].ID < body.Items[j].ID })
	return body.Items
}

// TestChannelWithItsOwnMinimumShelfLife: a channel with min_shelf_days 50
// is offered (API and retained topic) only the lot with 60 days left, not
// the one with 20, while a channel without a minimum is offered both; an
// order of that channel beyond the fresh lot is refused (409) with what it
// may have, and one within it is routed to the fresh lot although FEFO
// would take the short-dated lot first — as it does for the other
// channel's order.
func TestChannelWithItsOwnMinimumShelfLife(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	g := c.newGateway("wh1", "g1")
	setupMilk(t, c, g)
	require.Equal(t, 200, c.call("PUT", "/api/v1/channels/web", map[string]any{"share_pct": 100}, nil))
	var fresh struct {
		MinShelfDays int `json:"min_shelf_days"`
	}
	require.Equal(t, 200, c.call("PUT", "/api/v1/channels/fresh", map[string]any{"share_pct": 100, "min_shelf_days": 50}, &fresh))
	require.Equal(t, 50, fresh.MinShelfDays)
	require.Equal(t, 400, c.call("PUT", "/api/v1/channels/bad", map[string]any{"min_shelf_days": -1}, nil))
	waitFor(t, 30*time.Second, "the master data at the gateway", func() bool { return g.screen().Counts["locations"] == 1 })

	today := time.Now().UTC()
	long, short := today.AddDate(0, 0, 60), today.AddDate(0, 0, 20)
	b := g.scanAll(t, "OP:alice", "CMD:RECEIVE", "LOC:B-01", "QTY:4", gs1("LL", long), "QTY:3", gs1("LS", short), "CMD:DONE")
	require.Equal(t, map[string]int{"good": 8, "bad": 0, "warn": 0}, b, "%v", g.reasons(""))

	offered := func(channel string) int64 {
		var sn availability
		if c.call("GET", "/api/v1/channels/"+channel+"/availability", nil, &sn) != 200 {
			return -1
		}
		return sn.of("MILK")
	}
	waitFor(t, 30*time.Second, "web offered both lots, fresh only the long-dated one", func() bool {
		return offered("web") == 7 && offered("fresh") == 4
	})
	require.EqualValues(t, 4, c.retainedMilk("fresh"), "the retained topic of the channel")
	require.EqualValues(t, 7, c.retainedMilk("web"))

	var refused struct {
		Available []struct {
			SKU                  string
			Requested, Available int64
		}
	}
	require.Equal(t, 409, c.call("POST", "/api/v1/orders", map[string]any{"warehouse": "wh1", "channel": "fresh", "external_id": "f0",
		"lines": []map[string]any{{"sku": "MILK", "qty": 5}}}, &refused))
	require.Len(t, refused.Available, 1)
	require.EqualValues(t, 4, refused.Available[0].Available, "the short-dated lot is not the fresh channel's")

	taskOf := func(order string) (lot string, qty int64) {
		waitFor(t, 30*time.Second, "the pick task of "+order, func() bool {
			for _, tk := range g.screen().Tasks {
				if tk.Order == order && tk.Kind == "pick" {
					lot, qty = tk.Lot, tk.Qty
					return true
				}
			}
			return false
		})
		return lot, qty
	}
	var o orderView
	require.Equal(t, 201, c.call("POST", "/api/v1/orders", map[string]any{"warehouse": "wh1", "channel": "fresh", "external_id": "f1",
		"lines": []map[string]any{{"sku": "MILK", "qty": 2}}}, &o))
	lot, qty := taskOf(o.ID)
	require.Equal(t, "LL", lot, "routed to the lot with the channel's shelf life left")
	require.EqualValues(t, 2, qty)
	b = g.scanAll(t, "CMD:PICK", "ORD:"+o.ID, "LOC:B-01", gs1("LS", short))
	require.Equal(t, map[string]int{"good": 3, "bad": 1, "warn": 0}, b, "%v", g.reasons(""))
	require.Contains(t, lastReason(g, "(10)LS"), "wrong lot LS: pick lot LL", "the gateway refuses the short-dated lot for this order")
	b = g.scanAll(t, gs1("LL", long), gs1("LL", long), "CMD:DONE")
	require.Equal(t, map[string]int{"good": 3, "bad": 0, "warn": 0}, b, "%v", g.reasons(""))
	require.Equal(t, 201, c.call("POST", "/api/v1/orders", map[string]any{"warehouse": "wh1", "channel": "web", "external_id": "w1",
		"lines": []map[string]any{{"sku": "MILK", "qty": 2}}}, &o))
	lot, _ = taskOf(o.ID)
	require.Equal(t, "LS", lot, "FEFO for a channel without a minimum of its own")
	waitFor(t, 30*time.Second, "offers after the two orders and the pick", func() bool {
		return offered("web") == 3 && offered("fresh") == 0
	})
	waitFor(t, 30*time.Second, "the pick at the server", func() bool {
		return fmt.Sprint(c.statusStock("wh1", "MILK")) == fmt.Sprint(map[string]int64{"B-01/LL/available": 2, "B-01/LS/available": 3})
	})
}
