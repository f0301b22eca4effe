package main

import (
	"fmt"
	"os"
	"time"

	"github.com/shelfsync/shelfsync/agent/internal/session"
	"github.com/shelfsync/shelfsync/agent/internal/store"
	"github.com/shelfsync/shelfsync/drivers/scan"
	"github.com/shelfsync/shelfsync/protocol"
)

// closedTasks is how many closed pick tasks the gateway holds in the
// pick-scan figure (a pack station receives every closed pick task of
// the warehouse until they are pruned).
const closedTasks = 10_000

// fullScan is the store's Lookup with the order's tasks found by reading
// every task, as the gateway did before the task index: the baseline.
type fullScan struct{ session.Lookup }

func (f fullScan) OrderTasks(order string) []protocol.Task {
	var out []protocol.Task
	for _, t := range f.Tasks() {
		if t.Order == order {
			out = append(out, t)
		}
	}
	return out
}

// benchPickScan times one item scan of a pick session against an order
// (session.Step over the real store, which looks the order's open pick
// tasks up) on a gateway holding 10,000 closed pick tasks of other
// orders; the baseline is the same scan reading every task.
func benchPickScan(d time.Duration) (Result, error) {
	dir, err := os.MkdirTemp("", "shelfsync-bench-tasks")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(store.Options{Dir: dir, Small: true})
	if err != nil {
		return Result{}, err
	}
	defer st.Close()
	down := store.Down{
		Items:     []protocol.Item{{SKU: "MILK", GTINs: []string{"04012345678901"}}},
		Locations: []protocol.Location{{Code: "BIN-1", Type: protocol.LocPick, Sellable: true}},
		Tasks: []protocol.Task{
			{ID: "NOW-1", Kind: "pick", Location: "BIN-1", SKU: "MILK", Qty: 1_000_000, Order: "ORD-NOW", OrderLine: 1},
			{ID: "NOW-2", Kind: "pick", Location: "BIN-1", SKU: "MILK", Qty: 1_000_000, Order: "ORD-NOW", OrderLine: 2},
		},
	}
	if err := st.ApplyDownItems(down, 0, 1); err != nil {
		return Result{}, err
	}
	for i := 0; i < closedTasks; i += 1000 {
		var ts []protocol.Task
		for j := i; j < i+1000; j++ {
			ts = append(ts, protocol.Task{ID: fmt.Sprintf("T%06d", j), Kind: "pick", Location: fmt.Sprintf("BIN-%d", j%200), SKU: "MILK",
				Qty: 2, Picked: 2, Order: fmt.Sprintf("ORD-%05d", j/2), OrderLine: uint32(j%2 + 1), Status: "done"})
		}
		if err := st.ApplyDownItems(store.Down{Tasks: ts}, 0, uint64(2+i/1000)); err != nil {
			return Result{}, err
		}
	}
	perScan := func(l session.Lookup) (float64, error) {
		env := session.Env{Device: "bench", Now: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC), Data: l}
		var s session.Station
		for _, in := range []session.Input{
			{Kind: scan.KindCommand, Command: "PICK"}, {Kind: scan.KindOrder, Value: "ORD-NOW"}, {Kind: scan.KindLocation, Value: "BIN-1"},
		} {
			o := session.Step(s, in, env)
			if o.Verdict == session.Bad {
				return 0, fmt.Errorf("pick session setup: %s", o.Reason)
			}
			s = o.Station
		}
		item := session.Input{Kind: scan.KindItem, SKU: "MILK", Raw: "SKU:MILK"}
		if o := session.Step(s, item, env); o.Verdict != session.Good || len(o.Ops) != 1 || o.Ops[0].Refs == nil || o.Ops[0].Refs.Task == "" {
			return 0, fmt.Errorf("pick scan: %s %s (%d ops)", o.Verdict, o.Reason, len(o.Ops))
		}
		n := 0
		start := time.Now()
		for time.Since(start) < d {
			session.Step(s, item, env)
			n++
		}
		return float64(time.Since(start).Microseconds()) / float64(n), nil
	}
	base, err := perScan(fullScan{st.Lookup()})
	if err != nil {
		return Result{}, err
	}
	idx, err := perScan(st.Lookup())
	if err != nil {
		return Result{}, err
	}
	return result("pick_scan_us_10k_closed_tasks", idx, "µs", "the same scan reading every task (no index)", base), nil
}
