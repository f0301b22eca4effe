package orders

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
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

	_, err = f.svc.Cancel(f.ctx, "wh1", o.ID)
	require.NoError(t, err)
	require.Equal(t, StatusCancelled, f.get("wh2", o.ID).Status, "the part goes with the order")
	require.Equal(t, int64(2), f.ats("wh1", "A").Available)
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

// Reallocate moves a line's units to a part in another warehouse of the
// owner when one can ship them, else backorders them on the line; the
// backordered units are released when stock arrives.
func TestReallocateMovesALineOrBackordersIt(t *testing.T) {
	var mu sync.Mutex
	var events []string
	f := newFixture(t, "", Config{Owner: owners, OnOrder: func(o Order, ev string) {
		mu.Lock()
		events = append(events, o.Warehouse+" "+ev)
		mu.Unlock()
	}})
	f.receive("wh1", "BIN-1", "A", 3)
	f.receive("wh2", "BIN-9", "A", 2)
	f.ats("wh1", "A")
	o, _, err := f.svc.Create(f.ctx, newOrder("o1", Line{SKU: "A", Qty: 3}))
	require.NoError(t, err)
	require.Empty(t, o.Parts, "wh1 ships it all")

	// A short pick: 3 asked at BIN-1, none there. The server takes them off.
	f.op("wh1", protocol.Op{Kind: protocol.OpAdjust, Location: "BIN-1", SKU: "A", Qty: -3, Reason: "short-pick"})
	re, err := f.svc.Reallocate(f.ctx, "wh1", o.ID, 1, 2)
	require.NoError(t, err)
	require.Equal(t, int64(2), re.Units)
	require.NotNil(t, re.Part)
	require.Equal(t, "wh2", re.Part.Warehouse)
	require.Equal(t, int64(2), re.Part.Lines[0].Reserved)
	got := f.get("wh1", o.ID)
	require.Equal(t, []string{"wh2"}, got.Parts)
	require.Equal(t, int64(2), got.Lines[0].Elsewhere)
	require.Equal(t, int64(1), got.Lines[0].Reserved)
	require.Equal(t, int64(0), f.ats("wh2", "A").Available)

	re, err = f.svc.Reallocate(f.ctx, "wh1", o.ID, 1, 5)
	require.NoError(t, err)
	require.Nil(t, re.Part, "nowhere to go: backordered")
	require.Equal(t, int64(1), re.Units, "capped at what the line still reserves")
	got = f.get("wh1", o.ID)
	require.Equal(t, StatusOpen, got.Status)
	require.Equal(t, int64(1), got.Lines[0].Backordered)
	require.Equal(t, int64(0), got.Lines[0].Reserved)
	require.Equal(t, int64(0), f.ats("wh1", "A").Reserved)

	f.receive("wh1", "BIN-2", "A", 1)
	f.ats("wh1", "A") // the flush releases it
	got = f.get("wh1", o.ID)
	require.Equal(t, int64(0), got.Lines[0].Backordered)
	require.Equal(t, int64(1), got.Lines[0].Reserved)
	require.Equal(t, int64(0), f.ats("wh1", "A").Available)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"wh1 created", "wh1 reallocated", "wh2 created", "wh1 backordered", "wh1 released"}, events)
}
