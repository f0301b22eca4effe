package orders

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
)

// owners: sku A belongs to acme in wh1 and wh2, and to another owner in
// wh3.
func owners(wh, sku string) (string, error) {
	if wh == "wh3" {
		return "other", nil
	}
	return "acme", nil
}

func (f *fixture) get(wh, id string) Order {
	f.t.Helper()
	o, err := f.svc.Get(f.ctx, wh, id)
	require.NoError(f.t, err)
	return o
}

// An order line its warehouse cannot meet is allocated to another
// warehouse of the same owner (a part of the order there, reserving
// there), never to another owner's; what no warehouse of the owner can
// ship is refused; cancelling the order cancels its parts.
func TestAnOrderItsWarehouseCannotMeetIsSplitAcrossTheOwnersWarehouses(t *testing.T) {
	f := newFixture(t, "", Config{Owner: owners})
	f.receive("wh1", "BIN-1", "A", 2)
	f.receive("wh2", "BIN-9", "A", 3)
	f.receive("wh3", "BIN-5", "A", 10)
	f.ats("wh1", "A")

	o, created, err := f.svc.Create(f.ctx, newOrder("o1", Line{SKU: "A", Qty: 4}))
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, StatusOpen, o.Status)
	require.Equal(t, []string{"wh2"}, o.Parts)
	require.Equal(t, int64(2), o.Lines[0].Elsewhere, "two units ship from wh2")
	require.Equal(t, int64(2), o.Lines[0].Reserved, "two are reserved here")
	p := f.get("wh2", o.ID)
	require.Equal(t, StatusOpen, p.Status)
	require.Equal(t, "wh1", p.PartOf)
	require.Equal(t, []Line{{Line: 1, SKU: "A", Qty: 2, Reserved: 2}}, p.Lines)
	require.Equal(t, int64(0), f.ats("wh1", "A").Available)
	require.Equal(t, int64(1), f.ats("wh2", "A").Available)
	require.Equal(t, int64(10), f.ats("wh3", "A").Available, "another owner's stock is not allocated")

	again, created, err := f.svc.Create(f.ctx, newOrder("o1", Line{SKU: "A", Qty: 4}))
	require.NoError(t, err)
	require.False(t, created, "a replay returns the order")
	require.Equal(t, o.ID, again.ID)

	_, _, err = f.svc.Create(f.ctx, newOrder("o2", Line{SKU: "A", Qty: 2}))
	require.Equal(t, []Shortfall{{SKU: "A", Requested: 2, Available: 0}}, refusal(t, err).Skus,
		"wh2's last unit cannot meet 2, wh3 is another owner's")

	// wh1 ships 2 of the line: a third picked there is an over-pick (the
	// units are wh2's to pick).
	overPicks := func() int {
		cs, err := f.st.Conflicts(f.ctx, conflicts.Query{Kind: conflicts.KindOverPick})
		require.NoError(t, err)
		n := 0
		for _, c := range cs {
			if c.Holds {
				n++
			}
		}
		return n
	}
	f.pick("wh1", "BIN-1", "A", 2, o.ID, 1)
	require.Zero(t, overPicks())
	f.receive("wh1", "BIN-1", "A", 1)
	f.pick("wh1", "BIN-1", "A", 1, o.ID, 1)
	require.Equal(t, 1, overPicks(), "3 picked in wh1 of the 2 it ships")

	_, err = f.svc.Cancel(f.ctx, "wh1", o.ID)
	require.NoError(t, err)
	require.Equal(t, StatusCancelled, f.get("wh2", o.ID).Status, "the part goes with the order")
	require.Equal(t, int64(0), f.ats("wh1", "A").Available, "what was picked stays off the shelf")
	require.Equal(t, int64(3), f.ats("wh2", "A").Available)
}

// A channel that does not sell from a warehouse gets no part there.
func TestASplitStaysInTheChannelsWarehouses(t *testing.T) {
	f := newFixture(t, "", Config{Owner: owners})
	_, err := f.svc.PutChannel(f.ctx, Channel{Name: "web", SharePct: 100, Warehouses: []string{"wh1"}})
	require.NoError(t, err)
	f.receive("wh1", "BIN-1", "A", 1)
	f.receive("wh2", "BIN-9", "A", 5)
	f.ats("wh1", "A")
	_, _, err = f.svc.Create(f.ctx, newOrder("o1", Line{SKU: "A", Qty: 2}))
	refusal(t, err)
	_, err = f.svc.Get(f.ctx, "wh2", "web-o1")
	require.ErrorIs(t, err, ErrNotFound)
}

// Reallocate moves a line's units to parts in other warehouses of the
// owner that can ship them, most available first, and backorders on the
// line what they cannot take; the backordered units are released when
// stock arrives.
func TestReallocateMovesALineOrBackordersIt(t *testing.T) {
	var mu sync.Mutex
	var events []string
	f := newFixture(t, "", Config{Owner: owners, OnOrder: func(o Order, ev string) {
		mu.Lock()
		events = append(events, o.Warehouse+" "+ev)
		mu.Unlock()
	}})
	f.receive("wh1", "BIN-1", "A", 4)
	f.receive("wh2", "BIN-9", "A", 1)
	f.receive("wh4", "BIN-7", "A", 2)
	f.receive("wh3", "BIN-5", "A", 9) // another owner's
	f.ats("wh1", "A")
	o, _, err := f.svc.Create(f.ctx, newOrder("o1", Line{SKU: "A", Qty: 4}))
	require.NoError(t, err)
	require.Empty(t, o.Parts, "wh1 ships it all")

	// A short pick: 4 asked at BIN-1, none there. The server takes them off.
	f.op("wh1", protocol.Op{Kind: protocol.OpAdjust, Location: "BIN-1", SKU: "A", Qty: -4, Reason: "short-pick"})
	re, err := f.svc.Reallocate(f.ctx, "wh1", o.ID, 1, 9)
	require.NoError(t, err)
	require.Equal(t, int64(3), re.Moved, "wh4 takes 2, wh2 its 1")
	require.Equal(t, int64(1), re.Backordered, "capped at what the line reserved (4); the last waits for stock")
	require.Len(t, re.Parts, 2)
	require.Equal(t, "wh4", re.Parts[0].Warehouse, "most available first")
	require.Equal(t, int64(2), re.Parts[0].Lines[0].Reserved)
	require.Equal(t, "wh2", re.Parts[1].Warehouse)
	require.Equal(t, int64(1), re.Parts[1].Lines[0].Reserved)
	got := f.get("wh1", o.ID)
	require.Equal(t, []string{"wh4", "wh2"}, got.Parts)
	require.Equal(t, int64(3), got.Lines[0].Elsewhere)
	require.Equal(t, int64(1), got.Lines[0].Backordered)
	require.Equal(t, int64(0), got.Lines[0].Reserved)
	require.Equal(t, StatusOpen, got.Status)
	for _, wh := range []string{"wh1", "wh2", "wh4"} {
		require.Equal(t, int64(0), f.ats(wh, "A").Available, wh)
	}
	require.Equal(t, int64(9), f.ats("wh3", "A").Available, "another owner's stock is not taken")

	re, err = f.svc.Reallocate(f.ctx, "wh1", o.ID, 1, 5)
	require.NoError(t, err)
	require.Zero(t, re.Moved+re.Backordered, "the line reserves nothing left to move")

	f.receive("wh1", "BIN-2", "A", 1)
	f.ats("wh1", "A") // the flush releases it
	got = f.get("wh1", o.ID)
	require.Equal(t, int64(0), got.Lines[0].Backordered)
	require.Equal(t, int64(1), got.Lines[0].Reserved)
	require.Equal(t, int64(0), f.ats("wh1", "A").Available)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"wh1 created", "wh1 reallocated", "wh4 created", "wh2 created", "wh1 released"}, events)
}

// Property: whatever stock three warehouses hold and whatever orders and
// re-allocations come, no warehouse reserves more than it holds, an
// order's line is shipped in full across its records (its quantity less
// what it sends elsewhere, summed over the order and its parts, is what
// the channel asked), and no part lands in another owner's warehouse.
func TestAllocationNeverPromisesBeyondAWarehousesStock(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		st, err := badger.Open(badger.Options{InMemory: true})
		if err != nil {
			rt.Fatal(err)
		}
		defer st.Close()
		svc := New(Config{Owner: owners, Debounce: time.Millisecond}, st)
		if err := svc.Start(ctx); err != nil {
			rt.Fatal(err)
		}
		whs := []string{"wh1", "wh2", "wh3"}
		hlc := int64(1000)
		for _, wh := range whs {
			for _, sku := range []string{"A", "B"} {
				n := rapid.Int64Range(0, 6).Draw(rt, "stock "+wh+" "+sku)
				if n == 0 {
					continue
				}
				hlc++
				_, res, err := st.IssueOp(ctx, wh, protocol.Op{HLC: protocol.MakeHLC(hlc, 0), Kind: protocol.OpReceive, Location: "BIN", SKU: sku, Qty: n})
				if err != nil {
					rt.Fatal(err)
				}
				svc.Changed(res.Changes)
			}
		}
		svc.Flush(ctx)
		policy := rapid.SampledFrom([]string{PolicyRefuse, PolicyBackorder}).Draw(rt, "policy")
		if _, err := svc.PutChannel(ctx, Channel{Name: "web", SharePct: 100, Policy: policy}); err != nil {
			rt.Fatal(err)
		}
		type taken struct {
			wh, id string
			asked  map[uint32]int64
		}
		var placed []taken
		for i := range rapid.IntRange(1, 8).Draw(rt, "orders") {
			if len(placed) > 0 && rapid.Bool().Draw(rt, "reallocate") {
				p := rapid.SampledFrom(placed).Draw(rt, "order")
				wh := rapid.SampledFrom(whs).Draw(rt, "from") // the order's or one of its parts
				if _, err := svc.Reallocate(ctx, wh, p.id, uint32(rapid.IntRange(1, 2).Draw(rt, "line")), rapid.Int64Range(1, 4).Draw(rt, "units")); err != nil && !errors.Is(err, ErrNotFound) {
					rt.Fatal(err)
				}
				continue
			}
			n := NewOrder{Warehouse: rapid.SampledFrom(whs).Draw(rt, "wh"), Channel: "web", ExternalID: fmt.Sprint(i)}
			for j := range rapid.IntRange(1, 2).Draw(rt, "lines") {
				n.Lines = append(n.Lines, Line{Line: uint32(j + 1), SKU: rapid.SampledFrom([]string{"A", "B"}).Draw(rt, "sku"), Qty: rapid.Int64Range(1, 5).Draw(rt, "qty")})
			}
			o, _, err := svc.Create(ctx, n)
			if errors.Is(err, ErrUnavailable) {
				continue
			}
			if err != nil {
				rt.Fatal(err)
			}
			asked := map[uint32]int64{}
			for _, l := range n.Lines {
				asked[l.Line] = l.Qty
			}
			placed = append(placed, taken{o.Warehouse, o.ID, asked})
		}
		for _, wh := range whs { // stock arrives: backorders are released
			if n := rapid.Int64Range(0, 4).Draw(rt, "restock "+wh); n > 0 {
				hlc++
				_, res, err := st.IssueOp(ctx, wh, protocol.Op{HLC: protocol.MakeHLC(hlc, 0), Kind: protocol.OpReceive, Location: "BIN", SKU: "A", Qty: n})
				if err != nil {
					rt.Fatal(err)
				}
				svc.Changed(res.Changes)
			}
		}
		svc.Flush(ctx)
		svc.Flush(ctx)
		rows, _, _ := svc.Availability("", "")
		for _, a := range rows {
			if a.Available < 0 {
				rt.Fatalf("%s/%s reserves %d of %d", a.Warehouse, a.SKU, a.Reserved, a.Sellable)
			}
		}
		for _, p := range placed {
			o, err := svc.Get(ctx, p.wh, p.id)
			if err != nil {
				rt.Fatal(err)
			}
			recs := []Order{o}
			seen := map[string]bool{p.wh: true}
			for i := 0; i < len(recs); i++ { // the order, its parts, their parts
				for _, w := range recs[i].Parts {
					if w == "wh3" || p.wh == "wh3" {
						rt.Fatalf("order %s/%s has a part in %s, another owner's warehouse", p.wh, p.id, w)
					}
					if seen[w] {
						continue
					}
					seen[w] = true
					part, err := svc.Get(ctx, w, p.id)
					if err != nil {
						rt.Fatal(err)
					}
					recs = append(recs, part)
				}
			}
			got := map[uint32]int64{}
			for _, r := range recs {
				for _, l := range r.Lines {
					got[l.Line] += l.Qty - l.Elsewhere
				}
			}
			if !maps.Equal(got, p.asked) {
				rt.Fatalf("order %s/%s ships %v across %d records, asked %v", p.wh, p.id, got, len(recs), p.asked)
			}
		}
	})
}

// A backordered order its warehouse cannot ship alone is released when
// the owner's other warehouses can ship the rest: parts there, as at
// intake; another owner's stock releases nothing.
func TestABackorderIsReleasedAcrossTheOwnersWarehouses(t *testing.T) {
	var mu sync.Mutex
	var events []string
	f := newFixture(t, "", Config{Owner: owners, OnOrder: func(o Order, ev string) {
		mu.Lock()
		events = append(events, o.Warehouse+" "+ev)
		mu.Unlock()
	}})
	_, err := f.svc.PutChannel(f.ctx, Channel{Name: "web", SharePct: 100, Policy: PolicyBackorder})
	require.NoError(t, err)
	f.receive("wh3", "BIN-5", "A", 9) // another owner's
	f.ats("wh3", "A")
	o, created, err := f.svc.Create(f.ctx, newOrder("o1", Line{SKU: "A", Qty: 3}))
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, StatusBackordered, o.Status)

	f.receive("wh2", "BIN-9", "A", 2)
	f.ats("wh2", "A")
	require.Equal(t, StatusBackordered, f.get("wh1", o.ID).Status, "wh2's 2 do not make 3; wh3's are another owner's")

	f.receive("wh1", "BIN-1", "A", 1)
	f.ats("wh1", "A") // the flush releases it
	got := f.get("wh1", o.ID)
	require.Equal(t, StatusOpen, got.Status)
	require.Equal(t, []string{"wh2"}, got.Parts)
	require.Equal(t, int64(2), got.Lines[0].Elsewhere)
	require.Equal(t, int64(1), got.Lines[0].Reserved)
	p := f.get("wh2", o.ID)
	require.Equal(t, "wh1", p.PartOf)
	require.Equal(t, int64(2), p.Lines[0].Reserved)
	for _, wh := range []string{"wh1", "wh2"} {
		require.Equal(t, int64(0), f.ats(wh, "A").Available, wh)
	}
	require.Equal(t, int64(9), f.ats("wh3", "A").Available)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"wh1 created", "wh1 released", "wh2 created"}, events)
}
