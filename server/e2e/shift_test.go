package e2e

import (
	"fmt"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// GS1 element strings (bracketed AI form) the simulated scanner types:
// GTIN, expiry (YYMMDD) and lot of the milk on the two pallets.
const (
	milkA = "(01)04012345678901(17)301231(10)LOT-A" // expires 2030-12-31
	milkB = "(01)04012345678901(17)310630(10)LOT-B" // expires 2031-06-30
	bolt  = "4006381333931"                         // EAN-13 of BOLT
)

const shiftLocations = `code,zone,type,sellable,rank
RECEIVING,DOCK,dock,false,0
PACK,PICK,pack,false,0
A-01,PICK,pick,true,1
A-02,PICK,pick,true,2
B-01,PICK,storage,true,5
B-02,PICK,storage,true,8
QUAR,PICK,quarantine,false,0
`

// setupMasterData loads the shift's master data through the API: CSV
// import (with its progress stream) for locations, JSON for the rest.
func setupMasterData(t *testing.T, c *cluster) {
	lines := c.importCSV("wh1", "locations", shiftLocations)
	last := lines[len(lines)-1]
	require.Equal(t, true, last["done"], "import ends with done: %v", lines)
	require.EqualValues(t, 7, last["imported"])
	require.EqualValues(t, 0, last["errors"])
	c.mustDo("PUT", "/api/v1/masterdata/wh1/settings", map[string]any{"over_receipt_pct": 0, "skew_window_ms": 1}, nil)
	c.mustDo("POST", "/api/v1/masterdata/wh1/zones", []map[string]any{{"zone": "DOCK", "gateway": "dock1"}, {"zone": "PICK", "gateway": "pick1"}}, nil)
	c.mustDo("POST", "/api/v1/masterdata/wh1/items", []map[string]any{
		{"sku": "MILK", "gtins": []string{"4012345678901"}, "track_expiry": true, "velocity": "fast"},
		{"sku": "BOLT", "gtins": []string{"4006381333931"}},
		{"sku": "SOAP", "velocity": "slow"},
		{"sku": "TEA"},
	}, nil)
	c.mustDo("POST", "/api/v1/masterdata/wh1/thresholds", []map[string]any{{"sku": "BOLT", "reorder_point": 2, "reorder_qty": 10}}, nil)
	c.mustDo("POST", "/api/v1/masterdata/wh1/pos", []map[string]any{
		{"id": "P1", "supplier": "Dairy & Bolts", "dock": "RECEIVING", "lines": []map[string]any{{"sku": "MILK", "qty": 10}, {"sku": "BOLT", "qty": 5}}},
		{"id": "P2", "supplier": "Soap Co", "dock": "RECEIVING", "lines": []map[string]any{{"sku": "SOAP", "qty": 4}}},
	}, nil)
}

// shiftFigures is what a whole-shift run measures.
type shiftFigures struct {
	Scans, Ops       int
	Elapsed          time.Duration
	Conflicts        int
	Good, Bad, Warn  int
	OfflineConfirmed int
	CatchUp          time.Duration
}

// runShift plays a whole shift through the simulated scanners of two
// gateways — dock1 (receiving, put-away) and pick1 (picking zone) — and
// checks the server's ledger, discrepancies, variances and conflicts
// exactly. With cut, the uplink (the server and its embedded broker) goes
// away after the orders are routed: picking, counting and adjusting
// happen offline and are confirmed locally; the server comes back and
// everything converges to the same end state.
func runShift(t *testing.T, cut bool) shiftFigures {
	c := newCluster(t)
	dock, pick := c.newGateway("wh1", "dock1"), c.newGateway("wh1", "pick1")
	setupMasterData(t, c)
	waitFor(t, 20*time.Second, "master data at both gateways", func() bool {
		d, p := dock.screen(), pick.screen()
		return d.Counts["items"] == 4 && d.Counts["locations"] == 7 && len(d.POs) == 2 && p.Counts["items"] == 4 && p.Counts["thresholds"] == 1
	})
	require.Equal(t, 0, pick.screen().Counts["pos"], "POs go to the gateway serving the dock's zone only")

	var fig shiftFigures
	started := time.Now()
	tally := func(b map[string]int) {
		fig.Good += b["good"]
		fig.Bad += b["bad"]
		fig.Warn += b["warn"]
		fig.Scans += b["good"] + b["bad"] + b["warn"]
	}

	// Receiving: P1 arrives short (3 of 5 BOLT), P2 with an unexpected TEA.
	b := dock.scanAll(t, "OP:alice", "CMD:RECEIVE", "PO:P1", "QTY:6", milkA, "QTY:4", milkB, "QTY:3", bolt, "CMD:DONE")
	require.Equal(t, map[string]int{"good": 9, "bad": 0, "warn": 1}, b, "closing P1 short warns")
	require.Contains(t, dock.reasons("CMD:DONE")[0], "line 2: 3 of 5 × BOLT")
	tally(b)
	b = dock.scanAll(t, "CMD:RECEIVE", "PO:P2", "QTY:4", "SKU:SOAP", "SKU:TEA", "CMD:DONE")
	require.Equal(t, map[string]int{"good": 5, "bad": 0, "warn": 1}, b, "the unexpected TEA warns at scan time")
	require.Contains(t, dock.reasons("SKU:TEA")[0], "unexpected item")
	tally(b)

	// Put-away with suggestions: MILK (fast) to the free bin nearest
	// packing, then the operator puts LOT-B elsewhere (allowed, recorded);
	// BOLT (normal) and SOAP (slow) to the farthest free storage bins.
	b = dock.scanAll(t, "CMD:PUTAWAY", "QTY:6", milkA)
	require.Equal(t, "A-01", dock.screen().Devices[0].Suggest)
	b2 := dock.scanAll(t, "LOC:A-01", "QTY:4", milkB)
	require.Equal(t, "A-01", dock.screen().Devices[0].Suggest, "A-01 already holds MILK")
	b3 := dock.scanAll(t, "LOC:A-02", "QTY:3", bolt)
	require.Equal(t, "B-02", dock.screen().Devices[0].Suggest)
	b4 := dock.scanAll(t, "LOC:B-02", "QTY:4", "SKU:SOAP")
	require.Equal(t, "B-01", dock.screen().Devices[0].Suggest, "B-02 now holds BOLT")
	b5 := dock.scanAll(t, "LOC:B-01", "CMD:DONE")
	for _, x := range []map[string]int{b, b2, b3, b4, b5} {
		require.Zero(t, x["bad"]+x["warn"])
		tally(x)
	}
	require.Contains(t, dock.reasons("LOC:A-02")[0], "instead of the suggested A-01")

	// Orders, routed to pick tasks (FEFO for MILK) at pick1.
	waitFor(t, 20*time.Second, "put-away at the server", func() bool {
		return c.ledger("wh1")["B-01/SOAP"] == 4 && dock.status().OutboxDepth == 0
	})
	for i, o := range []struct {
		id    string
		lines []map[string]any
	}{
		{"O1", []map[string]any{{"sku": "MILK", "qty": 5}}},
		{"O2", []map[string]any{{"sku": "BOLT", "qty": 2}, {"sku": "SOAP", "qty": 1}}},
		{"O3", []map[string]any{{"sku": "MILK", "qty": 3}}},
	} {
		c.mustDo("POST", "/api/v1/orders", map[string]any{"warehouse": "wh1", "channel": "web", "external_id": fmt.Sprint(i + 1), "id": o.id, "lines": o.lines}, nil)
	}
	// Creating an order routes it at once; routing it again finds nothing
	// left to route.
	routed := map[string]string{}
	var serverTasks struct {
		Items []struct {
			ID, Kind, Location, SKU, Lot string
			Qty                          int64
		}
	}
	c.mustDo("GET", "/api/v1/tasks?warehouse=wh1", nil, &serverTasks)
	for _, tk := range serverTasks.Items {
		if tk.Kind == "pick" {
			routed[tk.ID] = fmt.Sprintf("%d %s %s %s", tk.Qty, tk.SKU, tk.Lot, tk.Location)
		}
	}
	for _, o := range []string{"O1", "O2", "O3"} {
		var res struct{ Tasks []struct{ ID string } }
		c.mustDo("POST", "/api/v1/routing/wh1/orders/"+o, nil, &res)
		require.Empty(t, res.Tasks, "order %s was routed when it was created", o)
	}
	require.Equal(t, map[string]string{
		"pick-O1-1-1": "5 MILK LOT-A A-01", // FEFO: LOT-A expires first
		"pick-O2-1-1": "2 BOLT  B-02",
		"pick-O2-2-1": "1 SOAP  B-01",
		"pick-O3-1-1": "1 MILK LOT-A A-01", // what O1 left of LOT-A
		"pick-O3-1-2": "2 MILK LOT-B A-02",
	}, routed)
	waitFor(t, 20*time.Second, "tasks at pick1", func() bool { return len(pick.screen().Tasks) == 5 })
	require.Empty(t, dock.screen().Tasks, "tasks go to the gateway serving the zone")

	if cut {
		c.stopServer(syscall.SIGKILL) // the embedded broker goes with it
		waitFor(t, 15*time.Second, "pick1 sees the uplink down", func() bool { return !pick.status().Connected })
	}

	// Picking: a wrong item, more than the line, a wrong lot (FEFO) and a
	// short pick; then a blind count with a variance and a damaged unit.
	b = pick.scanAll(t, "OP:bob", "CMD:PICK", "ORD:O1", "LOC:A-01", "QTY:5", "SKU:SOAP", milkA, "CMD:DONE")
	require.Equal(t, map[string]int{"good": 7, "bad": 1, "warn": 0}, b)
	require.Contains(t, pick.reasons("SKU:SOAP")[0], "wrong item SOAP")
	tally(b)
	b = pick.scanAll(t, "CMD:PICK", "ORD:O2", "LOC:B-02", "QTY:2", bolt, "LOC:B-01", "QTY:2", "SKU:SOAP", "QTY:1", "SKU:SOAP", "CMD:DONE")
	require.Equal(t, map[string]int{"good": 10, "bad": 1, "warn": 0}, b)
	tally(b)
	b = pick.scanAll(t, "CMD:PICK", "ORD:O3", "LOC:A-01", milkB, milkA, "LOC:A-02", milkB, "CMD:DONE")
	require.Equal(t, map[string]int{"good": 6, "bad": 1, "warn": 1}, b, "wrong lot refused, short pick warned")
	require.Contains(t, pick.reasons("LOT-B")[0], "wrong lot LOT-B: pick lot LOT-A")
	tally(b)
	b = pick.scanAll(t, "CMD:COUNT", "LOC:B-02", "QTY:2", bolt, "CMD:DONE")
	require.Equal(t, map[string]int{"good": 5, "bad": 0, "warn": 0}, b)
	tally(b)
	b = pick.scanAll(t, "CMD:ADJUST", "LOC:B-01", "REASON:DAMAGED", "QTY:-1", "SKU:SOAP", "CMD:DONE")
	require.Equal(t, map[string]int{"good": 6, "bad": 0, "warn": 0}, b)
	tally(b)
	pst := pick.screen()
	var reorder []string
	for _, n := range pst.Notices {
		if n.Kind == "reorder" {
			reorder = append(reorder, n.SKU)
		}
	}
	if cut {
		require.Equal(t, []string{"BOLT"}, reorder, "the reorder alert is raised locally while offline")
		fig.OfflineConfirmed = int(pick.status().OutboxDepth)
		require.Equal(t, 7, fig.OfflineConfirmed, "every op of the offline half waits in the outbox")
		back := time.Now()
		c.startServer()
		c.waitConverged("wh1", dock, pick)
		fig.CatchUp = time.Since(back)
	}

	c.waitConverged("wh1", dock, pick)
	waitFor(t, 30*time.Second, "every notice taken and acknowledged", func() bool {
		var ns struct{ Items []struct{ Taken bool } }
		getJSON(t, "http://"+c.httpAddr+"/api/v1/masterdata/wh1/notices", &ns)
		for _, n := range ns.Items {
			if !n.Taken {
				return false
			}
		}
		return len(ns.Items) == 8 && len(pick.screen().Notices) == 0 && len(dock.screen().Notices) == 0
	})
	fig.Elapsed = time.Since(started)

	// The ledger, exactly.
	require.Equal(t, map[string]int64{
		"RECEIVING/TEA":   1, // unexpected, kept at the dock for review
		"A-02/MILK/LOT-B": 2, // 4 put away, 1 picked, the short pick's missing 1 taken off until counted
		"B-02/BOLT":       2, // 3 put away, 2 picked, counted 2
		"B-01/SOAP":       2, // 4 put away, 1 picked, 1 damaged
	}, c.ledger("wh1"))

	// Discrepancies, variances and conflicts, exactly.
	cs := c.allConflicts("wh1")
	var got []string
	for _, x := range cs {
		got = append(got, fmt.Sprintf("%s %s/%s/%s exp=%d obs=%d %s", x.Kind, x.Location, x.SKU, x.Lot, x.Expected, x.Observed, x.Status))
	}
	sort.Strings(got)
	require.Equal(t, []string{
		"receipt-discrepancy RECEIVING/BOLT/ exp=5 obs=3 open", // P1 closed short
		"receipt-discrepancy RECEIVING/TEA/ exp=0 obs=1 open",  // unexpected item on P2
		"variance B-02/BOLT/ exp=1 obs=2 open",                 // found stock
	}, got)
	fig.Conflicts = len(cs)

	// Documents: both POs closed by dock1; O3's short task puts its bin
	// up for a count, with nothing left to route the remainder to.
	var po struct {
		Status   string
		ClosedBy string `json:"closed_by"`
		Received map[string]int64
	}
	getJSON(t, "http://"+c.httpAddr+"/api/v1/masterdata/wh1/pos/P1", &po)
	require.Equal(t, "closed", po.Status)
	require.Equal(t, map[string]int64{"1": 10, "2": 3}, po.Received)
	var tasks struct {
		Items []struct {
			ID, Status string
			Picked     int64
		}
	}
	getJSON(t, "http://"+c.httpAddr+"/api/v1/tasks?warehouse=wh1", &tasks)
	status := map[string]string{}
	for _, tk := range tasks.Items {
		status[tk.ID] = fmt.Sprintf("%s %d", tk.Status, tk.Picked)
	}
	require.Equal(t, map[string]string{
		"pick-O1-1-1": "done 5", "pick-O2-1-1": "done 2", "pick-O2-2-1": "done 1",
		"pick-O3-1-1": "done 1", "pick-O3-1-2": "short 1",
		"count-A-02-1": "open 0", // the short pick's bin is to be counted
	}, status)

	// The local reorder alert reached the server once.
	var alerts struct {
		Items []struct {
			SKU      string
			RaisedBy []string `json:"raised_by"`
		}
	}
	getJSON(t, "http://"+c.httpAddr+"/api/v1/masterdata/wh1/reorder-alerts", &alerts)
	require.Len(t, alerts.Items, 1)
	require.Equal(t, "BOLT", alerts.Items[0].SKU)
	require.True(t, strings.HasPrefix(alerts.Items[0].RaisedBy[0], "pick1/reorder/BOLT/"))

	// The put-away that left the suggestion is recorded in the audit trail.
	var hist struct {
		Items []struct{ Kind, Reason, Device, Operator string }
	}
	getJSON(t, "http://"+c.httpAddr+"/api/v1/stock/history?warehouse=wh1&location=A-02&sku=MILK&lot=LOT-B", &hist)
	require.Equal(t, "putaway", hist.Items[0].Kind)
	require.Equal(t, "suggested A-01; put at A-02", hist.Items[0].Reason)
	require.Equal(t, "alice", hist.Items[0].Operator)

	for _, g := range []*gateway{dock, pick} {
		fig.Ops += int(g.status().LastSeq)
	}
	require.Equal(t, 68, fig.Scans)
	require.Equal(t, 3, fig.Bad)
	require.Equal(t, 3, fig.Warn)
	return fig
}

func TestShiftOnline(t *testing.T) {
	t.Parallel() // its own server, agents, ports and directories
	fig := runShift(t, false)
	t.Logf("whole shift online: %d scans (%d good, %d bad, %d warn) → %d ops, %d conflicts, %s from first scan to convergence",
		fig.Scans, fig.Good, fig.Bad, fig.Warn, fig.Ops, fig.Conflicts, fig.Elapsed.Round(time.Millisecond))
}

func TestShiftUplinkCutHalfway(t *testing.T) {
	t.Parallel() // its own server, agents, ports and directories
	fig := runShift(t, true)
	t.Logf("whole shift, uplink cut after routing: %d scans → %d ops (%d confirmed offline), %d conflicts, %s in all, %s to catch up after the uplink returned",
		fig.Scans, fig.Ops, fig.OfflineConfirmed, fig.Conflicts, fig.Elapsed.Round(time.Millisecond), fig.CatchUp.Round(time.Millisecond))
}
