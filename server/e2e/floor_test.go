package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// floorOrder is an order as the API shows it, with what the floor changes.
type floorOrder struct {
	Warehouse string   `json:"warehouse"`
	ID        string   `json:"id"`
	Status    string   `json:"status"`
	Parts     []string `json:"parts"`
	PartOf    string   `json:"part_of"`
	Lines     []struct {
		Line                                          uint32
		SKU                                           string
		Qty, Picked, Reserved, Elsewhere, Backordered int64
	}
}

// TestOrdersTheFloorCanKeep runs the server and two gateways, one per
// warehouse of one owner, with simulated scanners:
//
//   - an order for a sku its warehouse lacks is allocated to the other
//     warehouse of the owner, and its pick task goes to that warehouse's
//     gateway, which picks it;
//   - a short pick leads to a count task, an alert, a re-allocation (to the
//     other warehouse, whose gateway gets the pick task), and the missing
//     units leave availability at once; counting the bin clears the alert;
//   - a backordered order released when stock arrives gets its pick task.
func TestOrdersTheFloorCanKeep(t *testing.T) {
	c := newCluster(t)
	for wh, gw := range map[string]string{"wh1": "g1", "wh2": "g2"} {
		c.mustDo("POST", "/api/v1/masterdata/"+wh+"/locations", []map[string]any{
			{"code": "BIN-1", "zone": "PICK", "type": "pick", "sellable": true, "rank": 1},
			{"code": "BIN-9", "zone": "PICK", "type": "pick", "sellable": true, "rank": 2}}, nil)
		c.mustDo("POST", "/api/v1/masterdata/"+wh+"/zones", []map[string]any{{"zone": "PICK", "gateway": gw}}, nil)
		c.mustDo("POST", "/api/v1/masterdata/"+wh+"/items", []map[string]any{{"sku": "A", "owner": "acme"}, {"sku": "B", "owner": "acme"}, {"sku": "C", "owner": "acme"}}, nil)
	}
	g1, g2 := c.newGateway("wh1", "g1"), c.newGateway("wh2", "g2")
	require.Equal(t, 200, c.call("PUT", "/api/v1/channels/web", map[string]any{"share_pct": 100}, nil))
	require.Equal(t, map[string]int{"good": 5, "bad": 0, "warn": 0}, g1.scanAll(t, "CMD:RECEIVE", "LOC:BIN-1", "QTY:5", "SKU:A", "CMD:DONE"))
	require.Equal(t, map[string]int{"good": 7, "bad": 0, "warn": 0}, g2.scanAll(t, "CMD:RECEIVE", "LOC:BIN-9", "QTY:4", "SKU:B", "QTY:3", "SKU:A", "CMD:DONE"))
	c.waitConverged("wh1", g1)
	c.waitConverged("wh2", g2)
	offered := func(sku string) int64 {
		var a availability
		require.Equal(t, 200, c.call("GET", "/api/v1/channels/web/availability", nil, &a))
		return a.of(sku)
	}
	waitFor(t, 20*time.Second, "the channel is offered both warehouses' stock", func() bool { return offered("A") == 8 && offered("B") == 4 })
	order := func(wh, id string) floorOrder {
		var o floorOrder
		require.Equal(t, 200, c.call("GET", fmt.Sprintf("/api/v1/orders/%s/%s", wh, id), nil, &o))
		return o
	}
	pickTasks := func(g *gateway, orderID string) map[string]string { // task id → "qty sku at location"
		out := map[string]string{}
		for _, tk := range g.screen().Tasks {
			if tk.Kind == "pick" && tk.Order == orderID {
				out[tk.ID] = fmt.Sprintf("%d %s at %s", tk.Qty, tk.SKU, tk.Location)
			}
		}
		return out
	}

	// 1. wh1 has no B: the order is allocated to wh2, and g2 picks it.
	var o floorOrder
	require.Equal(t, 201, c.call("POST", "/api/v1/orders", map[string]any{"warehouse": "wh1", "channel": "web", "external_id": "x1",
		"lines": []map[string]any{{"sku": "B", "qty": 2}}}, &o))
	require.Equal(t, "open", o.Status)
	require.Equal(t, []string{"wh2"}, o.Parts, "wh1 lacks B: wh2 of the same owner ships it")
	require.Equal(t, int64(2), o.Lines[0].Elsewhere)
	require.Zero(t, o.Lines[0].Reserved)
	part := order("wh2", o.ID)
	require.Equal(t, "open", part.Status)
	require.Equal(t, "wh1", part.PartOf)
	require.Equal(t, int64(2), part.Lines[0].Reserved)
	waitFor(t, 20*time.Second, "the pick task at wh2's gateway", func() bool {
		return len(pickTasks(g2, o.ID)) == 1
	})
	require.Equal(t, map[string]string{"pick-web-x1-1-1": "2 B at BIN-9"}, pickTasks(g2, o.ID))
	require.Empty(t, pickTasks(g1, o.ID), "wh1's gateway gets no task for what wh2 ships")
	require.Equal(t, map[string]int{"good": 6, "bad": 0, "warn": 0},
		g2.scanAll(t, "CMD:PICK", "ORD:"+o.ID, "LOC:BIN-9", "QTY:2", "SKU:B", "CMD:DONE"))
	waitFor(t, 20*time.Second, "wh2 picked the part", func() bool { return order("wh2", o.ID).Lines[0].Picked == 2 })
	require.Equal(t, int64(2), offered("B"))

	// 2. A short pick: 4 of A asked at wh1's BIN-1 (5 on record), 1 found.
	var s floorOrder
	require.Equal(t, 201, c.call("POST", "/api/v1/orders", map[string]any{"warehouse": "wh1", "channel": "web", "external_id": "s1",
		"lines": []map[string]any{{"sku": "A", "qty": 4}}}, &s))
	require.Empty(t, s.Parts)
	waitFor(t, 20*time.Second, "the pick task at wh1's gateway", func() bool { return len(pickTasks(g1, s.ID)) == 1 })
	require.Equal(t, map[string]string{"pick-web-s1-1-1": "4 A at BIN-1"}, pickTasks(g1, s.ID))
	waitFor(t, 20*time.Second, "the order counted in the offer", func() bool { return offered("A") == 4 }) // (5−4) + 3
	require.Equal(t, map[string]int{"good": 4, "bad": 0, "warn": 1},
		g1.scanAll(t, "CMD:PICK", "ORD:"+s.ID, "LOC:BIN-1", "SKU:A", "CMD:DONE"), "a short pick is warned")
	shortAt := time.Now()

	// The 3 missing leave availability: the pool keeps wh1's 1 unit left
	// on record, and wh2's 3 are now the order's.
	waitFor(t, 20*time.Second, "the missing units leave availability", func() bool { return offered("A") == 1 })
	t.Logf("short pick: the channel's offer dropped %v after the warn beep", time.Since(shortAt).Round(time.Millisecond))
	require.Equal(t, map[string]int64{"BIN-1/A": 1}, c.ledger("wh1"), "5 on record − 1 picked − 3 missing")

	// A count task for the bin, at wh1's gateway.
	var tasks struct {
		Items []struct{ ID, Kind, Location, Status, Reason string }
	}
	var count string
	waitFor(t, 20*time.Second, "a count task for the short-picked bin", func() bool {
		c.mustDo("GET", "/api/v1/tasks?warehouse=wh1", nil, &tasks)
		for _, tk := range tasks.Items {
			if tk.Kind == "count" && tk.Location == "BIN-1" && (tk.Status == "" || tk.Status == "open") {
				count = tk.ID
			}
		}
		return count != ""
	})
	waitFor(t, 20*time.Second, "the count task at wh1's gateway", func() bool {
		for _, tk := range g1.screen().Tasks {
			if tk.ID == count {
				return true
			}
		}
		return false
	})

	// An alert that stands.
	type alertView struct{ ID, Kind, Status, Location, SKU, Message string }
	var al struct{ Items []alertView }
	waitFor(t, 20*time.Second, "the short-pick alert", func() bool {
		c.mustDo("GET", "/api/v1/alerts?warehouse=wh1&kind=short-pick&standing=true", nil, &al)
		return len(al.Items) > 0
	})
	require.Len(t, al.Items, 1)
	require.Equal(t, "BIN-1", al.Items[0].Location)
	require.Equal(t, "A", al.Items[0].SKU)
	require.Contains(t, al.Items[0].Message, "picked 1 of 4")
	require.Contains(t, al.Items[0].Message, "line 1 re-allocated to warehouse wh2 (its part there reserves 3)")

	// The line re-allocated: its 3 units ship from wh2, whose gateway gets the task.
	s = order("wh1", s.ID)
	require.Equal(t, []string{"wh2"}, s.Parts)
	require.Equal(t, int64(1), s.Lines[0].Picked)
	require.Equal(t, int64(3), s.Lines[0].Elsewhere)
	require.Zero(t, s.Lines[0].Reserved)
	sp := order("wh2", s.ID)
	require.Equal(t, "wh1", sp.PartOf)
	require.Equal(t, int64(3), sp.Lines[0].Reserved)
	waitFor(t, 20*time.Second, "the re-allocated pick task at wh2's gateway", func() bool { return len(pickTasks(g2, s.ID)) == 1 })
	t.Logf("short pick: the re-allocated task reached wh2's gateway %v after the warn beep", time.Since(shortAt).Round(time.Millisecond))
	require.Equal(t, map[string]string{"pick-web-s1-1-1": "3 A at BIN-9"}, pickTasks(g2, s.ID))

	// Counting the bin clears the alert (its cause is gone).
	require.Equal(t, map[string]int{"good": 5, "bad": 0, "warn": 0}, g1.scanAll(t, "CMD:COUNT", "LOC:BIN-1", "QTY:1", "SKU:A", "CMD:DONE"))
	waitFor(t, 30*time.Second, "the short-pick alert cleared by the count", func() bool {
		var a alertView
		require.Equal(t, 200, c.call("GET", "/api/v1/alerts/"+al.Items[0].ID, nil, &a))
		return a.Status == "cleared"
	})

	// 3. A backorder released when stock arrives gets its pick task.
	require.Equal(t, 200, c.call("PUT", "/api/v1/channels/shop", map[string]any{"share_pct": 100, "policy": "backorder"}, nil))
	var b floorOrder
	require.Equal(t, 201, c.call("POST", "/api/v1/orders", map[string]any{"warehouse": "wh1", "channel": "shop", "external_id": "b1",
		"lines": []map[string]any{{"sku": "C", "qty": 2}}}, &b))
	require.Equal(t, "backordered", b.Status, "no warehouse has C")
	require.Empty(t, pickTasks(g1, b.ID))
	require.Equal(t, map[string]int{"good": 5, "bad": 0, "warn": 0}, g1.scanAll(t, "CMD:RECEIVE", "LOC:BIN-1", "QTY:2", "SKU:C", "CMD:DONE"))
	waitFor(t, 20*time.Second, "the backorder released", func() bool { return order("wh1", b.ID).Status == "open" })
	waitFor(t, 20*time.Second, "the released order's pick task at wh1's gateway", func() bool { return len(pickTasks(g1, b.ID)) == 1 })
	require.Equal(t, map[string]string{"pick-shop-b1-1-1": "2 C at BIN-1"}, pickTasks(g1, b.ID))
}
