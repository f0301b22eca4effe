package orders

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
)

type fixture struct {
	t   *testing.T
	ctx context.Context
	st  testStore
	svc *Service
	hlc int64

	mu     sync.Mutex
	snaps  []Snapshot
	cfls   []conflicts.Conflict
	others []*Service // replicas over the same store (replica_test.go)
}

// testStore is what the fixture needs: the order model's store and the
// actions that issue ops.
type testStore interface {
	Store
	store.Actions
	Close() error
}

// openStore opens the fixture's store (dir "": a fresh one; the same dir
// again: the same state): Badger here, PostgreSQL under
// TestIntegrationOrdersOnPostgres.
var openStore = func(t *testing.T, dir string) testStore {
	st, err := badger.Open(badger.Options{Dir: dir, InMemory: dir == ""})
	require.NoError(t, err)
	return st
}

func newFixture(t *testing.T, dir string, cfg Config) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st := openStore(t, dir)
	f := &fixture{t: t, ctx: ctx, st: st, hlc: 1000}
	cfg.Debounce = time.Millisecond
	cfg.Publish = func(s Snapshot) { f.mu.Lock(); f.snaps = append(f.snaps, s); f.mu.Unlock() }
	cfg.OnConflict = func(c conflicts.Conflict) { f.mu.Lock(); f.cfls = append(f.cfls, c); f.mu.Unlock() }
	f.svc = New(cfg, st)
	require.NoError(t, f.svc.Start(ctx))
	done := make(chan struct{})
	go func() { defer close(done); f.svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	return f
}

// op issues a server-origin op and tells the service, as the app does.
func (f *fixture) op(wh string, op protocol.Op) {
	f.t.Helper()
	f.mu.Lock()
	f.hlc++
	op.HLC = protocol.MakeHLC(f.hlc, 0)
	f.mu.Unlock()
	_, res, err := f.st.IssueOp(f.ctx, wh, op)
	for errors.Is(err, store.ErrConflict) { // two pickers at once
		_, res, err = f.st.IssueOp(f.ctx, wh, op)
	}
	require.NoError(f.t, err)
	f.svc.Changed(res.Changes)
	f.mu.Lock()
	others := f.others
	f.mu.Unlock()
	for _, o := range others { // the app broadcasts every apply's changes
		o.Changed(res.Changes)
	}
}

func (f *fixture) receive(wh, loc, sku string, qty int64) {
	f.op(wh, protocol.Op{Kind: protocol.OpReceive, Location: loc, SKU: sku, Qty: qty})
}

func (f *fixture) pick(wh, loc, sku string, qty int64, order string, line uint32) {
	f.op(wh, protocol.Op{Kind: protocol.OpPick, Location: loc, SKU: sku, Qty: qty, Refs: &protocol.Refs{Order: order, OrderLine: line}})
}

func (f *fixture) ats(wh, sku string) ATS {
	f.svc.Flush(f.ctx)
	rows, _, _ := f.svc.Availability(wh, sku)
	for _, r := range rows {
		if r.Warehouse == wh && r.SKU == sku {
			return r
		}
	}
	return ATS{Warehouse: wh, SKU: sku}
}

func newOrder(ext string, lines ...Line) NewOrder {
	return NewOrder{Warehouse: "wh1", Channel: "web", ExternalID: ext, Lines: lines}
}

func TestCreateReservesAtOnceAndIsIdempotent(t *testing.T) {
	f := newFixture(t, "", Config{})
	f.receive("wh1", "BIN-1", "A", 10)
	require.Equal(t, int64(10), f.ats("wh1", "A").Available)

	o, created, err := f.svc.Create(f.ctx, newOrder("1001", Line{SKU: "A", Qty: 4}))
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, "web-1001", o.ID)
	require.Equal(t, int64(4), o.Lines[0].Reserved)
	require.Empty(t, o.Short)
	rows, _, seq := f.svc.Availability("wh1", "A")
	require.Equal(t, int64(6), rows[0].Available, "reserved at once, before any debounce")
	require.GreaterOrEqual(t, seq, o.Seq)

	again, created, err := f.svc.Create(f.ctx, newOrder("1001", Line{SKU: "A", Qty: 4}))
	require.NoError(t, err)
	require.False(t, created, "a replay returns the order it made")
	require.Equal(t, o.ID, again.ID)
	require.Equal(t, int64(6), f.ats("wh1", "A").Available, "a replay reserves nothing more")

	_, _, err = f.svc.Create(f.ctx, newOrder("1001", Line{SKU: "A", Qty: 5}))
	require.ErrorIs(t, err, ErrConflict)
	_, _, err = f.svc.Create(f.ctx, NewOrder{Warehouse: "wh1", Channel: "web", ExternalID: "x", Lines: []Line{{SKU: "A", Qty: 0}}})
	require.ErrorIs(t, err, ErrInvalid)
}

func TestPicksConsumeTheReservationShipReleasesTheRest(t *testing.T) {
	f := newFixture(t, "", Config{})
	f.receive("wh1", "BIN-1", "A", 10)
	f.receive("wh1", "BIN-1", "B", 1)
	o, _, err := f.svc.Create(f.ctx, newOrder("1", Line{SKU: "A", Qty: 4}, Line{SKU: "B", Qty: 1}))
	require.NoError(t, err)
	require.Equal(t, int64(6), f.ats("wh1", "A").Available)

	f.pick("wh1", "BIN-1", "A", 2, o.ID, 0) // names the order only: goes to the line of its sku
	f.pick("wh1", "BIN-1", "A", 1, o.ID, 1) // names the line
	a := f.ats("wh1", "A")
	require.Equal(t, ATS{Warehouse: "wh1", SKU: "A", OnHand: 7, Sellable: 7, Reserved: 1, Available: 6}, a, "a pick moves units from reserved to gone: ATS does not change")
	got, err := f.svc.Get(f.ctx, "wh1", o.ID)
	require.NoError(t, err)
	require.Equal(t, int64(3), got.Lines[0].Picked)
	require.Equal(t, int64(1), got.Lines[0].Reserved)

	shipped, err := f.svc.Ship(f.ctx, "wh1", o.ID)
	require.NoError(t, err)
	require.Equal(t, StatusShipped, shipped.Status)
	require.Equal(t, int64(7), f.ats("wh1", "A").Available, "the unpicked unit is released")
	_, err = f.svc.Cancel(f.ctx, "wh1", o.ID)
	require.ErrorIs(t, err, ErrConflict)
	again, err := f.svc.Ship(f.ctx, "wh1", o.ID)
	require.NoError(t, err, "shipping twice is a replay")
	require.Equal(t, StatusShipped, again.Status)
}

func TestAReservationThatCannotBeMetRaisesAnOversell(t *testing.T) {
	f := newFixture(t, "", Config{})
	f.receive("wh1", "BIN-1", "A", 3)
	_, created, err := f.svc.Create(f.ctx, newOrder("9", Line{SKU: "A", Qty: 3}))
	require.NoError(t, err)
	require.True(t, created)
	f.pick("wh1", "BIN-1", "A", 1, "", 0) // a unit left for no order: the reservation cannot be met
	require.Equal(t, int64(-1), f.ats("wh1", "A").Available)
	cs, err := f.st.Conflicts(f.ctx, conflicts.Query{Kind: conflicts.KindOversell})
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.Equal(t, conflicts.StatusOpen, cs[0].Status)
	require.Equal(t, int64(2), cs[0].Expected)
	require.Equal(t, int64(3), cs[0].Observed)

	f.receive("wh1", "BIN-2", "A", 5) // stock arrives: the condition stops holding
	f.ats("wh1", "A")
	cs, err = f.st.Conflicts(f.ctx, conflicts.Query{Kind: conflicts.KindOversell})
	require.NoError(t, err)
	require.Equal(t, conflicts.StatusCleared, cs[0].Status)
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Len(t, f.cfls, 2, "raised, then cleared")
}

func TestSellableLocationsAndSafetyStock(t *testing.T) {
	f := newFixture(t, "", Config{
		Sellable: func(_, loc string) bool { return loc != "RECEIVING" },
		Safety:   func(_, sku string) int64 { return 2 },
	})
	f.receive("wh1", "RECEIVING", "A", 5)
	f.receive("wh1", "BIN-1", "A", 4)
	require.Equal(t, ATS{Warehouse: "wh1", SKU: "A", OnHand: 9, Sellable: 4, Safety: 2, Available: 2}, f.ats("wh1", "A"))
	f.pick("wh1", "BIN-2", "A", 1, "", 0) // booked at the wrong bin: the unit left BIN-1
	require.Equal(t, ATS{Warehouse: "wh1", SKU: "A", OnHand: 8, Sellable: 3, Safety: 2, Available: 1}, f.ats("wh1", "A"))
}

func TestChannelAllocate(t *testing.T) {
	cap3 := int64(3)
	for _, tc := range []struct {
		name string
		c    Channel
		per  map[string]int64
		want int64
	}{
		{"whole pool", Channel{SharePct: 100}, map[string]int64{"wh1": 5, "wh2": 4}, 9},
		{"share rounds down", Channel{SharePct: 50}, map[string]int64{"wh1": 5, "wh2": 4}, 4},
		{"cap", Channel{SharePct: 100, Cap: &cap3}, map[string]int64{"wh1": 5}, 3},
		{"a deficit is not hidden by a surplus", Channel{SharePct: 100}, map[string]int64{"wh1": -5, "wh2": 44}, 39},
		{"a deficit beyond the surplus offers nothing", Channel{SharePct: 100}, map[string]int64{"wh1": -4, "wh2": 2}, 0},
		{"warehouses", Channel{SharePct: 100, Warehouses: []string{"wh2"}}, map[string]int64{"wh1": 5, "wh2": 2}, 2},
		{"nothing", Channel{SharePct: 0}, map[string]int64{"wh1": 5}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) { require.Equal(t, tc.want, tc.c.Allocate(tc.per, 0)) })
	}
	bad := Channel{Name: "web", SharePct: 120}
	require.ErrorIs(t, bad.Validate(), ErrInvalid)
}

// TestSnapshotsNeverOfferMoreThanCanBeShipped: orders arrive while picks
// consume them, concurrently; every published snapshot offers at most the
// stock minus the orders it accounts for (Seq).
func TestSnapshotsNeverOfferMoreThanCanBeShipped(t *testing.T) {
	f := newFixture(t, "", Config{})
	const stock = 40
	f.receive("wh1", "BIN-1", "A", stock/2)
	f.receive("wh1", "BIN-2", "A", stock/2)
	type placed struct {
		seq uint64
		qty int64
	}
	var mu sync.Mutex
	var orders []placed
	var wg sync.WaitGroup
	picks := make(chan Order, 64)
	for g := 0; g < 2; g++ { // two pickers
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range picks {
				for q := o.Lines[0].Qty; q > 0; q-- {
					f.pick("wh1", fmt.Sprintf("BIN-%d", 1+rand.IntN(2)), "A", 1, o.ID, 0)
				}
			}
		}()
	}
	total := int64(0)
	for i := 0; total < stock-3; i++ {
		qty := int64(1 + rand.IntN(3))
		o, _, err := f.svc.Create(f.ctx, newOrder(fmt.Sprint(i), Line{SKU: "A", Qty: qty}))
		require.NoError(t, err)
		require.Empty(t, o.Short)
		total += qty
		mu.Lock()
		orders = append(orders, placed{o.Seq, qty})
		mu.Unlock()
		picks <- o
	}
	close(picks)
	wg.Wait()
	f.svc.Flush(f.ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	require.NotEmpty(t, f.snaps)
	for _, sn := range f.snaps {
		var counted int64
		for _, o := range orders {
			if o.seq <= sn.Seq {
				counted += o.qty
			}
		}
		for _, it := range sn.Items {
			require.LessOrEqual(t, it.Available, stock-counted, "snapshot seq %d offers %d with %d ordered", sn.Seq, it.Available, counted)
		}
	}
	last := f.snaps[len(f.snaps)-1]
	require.Equal(t, stock-total, last.Items[0].Available, "the last snapshot is exact")
	for _, k := range []conflicts.Kind{conflicts.KindOversell, conflicts.KindOverPick} {
		cs, err := f.st.Conflicts(f.ctx, conflicts.Query{Kind: k})
		require.NoError(t, err)
		require.Empty(t, cs, "no %s", k)
	}
}

func TestRestartKeepsReservationsAndSequence(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, dir, Config{})
	f.receive("wh1", "BIN-1", "A", 10)
	o, _, err := f.svc.Create(f.ctx, newOrder("1", Line{SKU: "A", Qty: 4}))
	require.NoError(t, err)
	f.pick("wh1", "BIN-1", "A", 1, o.ID, 0)
	require.Equal(t, int64(6), f.ats("wh1", "A").Available)
	_, err = f.svc.PutChannel(f.ctx, Channel{Name: "market", SharePct: 50})
	require.NoError(t, err)
	f.svc.Flush(f.ctx)
	_, _, seq := f.svc.Availability("", "")

	// a second service over the same data, as after a restart
	f2 := &fixture{t: t, ctx: f.ctx, st: f.st, hlc: f.hlc}
	f2.svc = New(Config{Publish: func(s Snapshot) { f2.mu.Lock(); f2.snaps = append(f2.snaps, s); f2.mu.Unlock() }}, f.st)
	require.NoError(t, f2.svc.Start(f.ctx))
	rows, _, seq2 := f2.svc.Availability("wh1", "A")
	require.Equal(t, int64(6), rows[0].Available)
	require.Equal(t, int64(3), rows[0].Reserved)
	require.Greater(t, seq2, o.Seq, "the sequence never goes back")
	require.GreaterOrEqual(t, seq2, seq)
	require.Len(t, f2.snaps, 2, "every channel is published at start (retained messages restored)")
	require.Len(t, f2.svc.Channels(), 2)
}

func TestAnOrderCarriesItsItemsOwnerAndMixedOwnersAreRefused(t *testing.T) {
	owners := map[string]string{"A": "acme", "B": "acme", "C": "beta"}
	f := newFixture(t, "", Config{Owner: func(wh, sku string) (string, error) {
		require.Equal(t, "wh1", wh)
		return owners[sku], nil
	}})
	for _, sku := range []string{"A", "B", "C", "D"} {
		f.receive("wh1", "BIN-1", sku, 10)
	}

	o, _, err := f.svc.Create(f.ctx, newOrder("1", Line{SKU: "A", Qty: 1}, Line{SKU: "B", Qty: 1}, Line{SKU: "D", Qty: 1}))
	require.NoError(t, err)
	require.Equal(t, "acme", o.Owner, "lines of acme's items (and one of no owner)")
	o2, _, err := f.svc.Create(f.ctx, newOrder("2", Line{SKU: "C", Qty: 1}))
	require.NoError(t, err)
	require.Equal(t, "beta", o2.Owner)
	o3, _, err := f.svc.Create(f.ctx, newOrder("3", Line{SKU: "D", Qty: 1}))
	require.NoError(t, err)
	require.Empty(t, o3.Owner, "no item has an owner")
	h, _, err := f.svc.Hold(f.ctx, NewHold{Warehouse: "wh1", Channel: "web", CheckoutID: "c1", Lines: []Line{{SKU: "C", Qty: 1}}})
	require.NoError(t, err)
	require.Equal(t, "beta", h.Owner, "a hold carries its owner too")

	_, _, err = f.svc.Create(f.ctx, newOrder("4", Line{SKU: "A", Qty: 1}, Line{SKU: "C", Qty: 1}))
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, "owner acme: A; owner beta: C")
	_, err = f.svc.Get(f.ctx, "wh1", "web-4")
	require.ErrorIs(t, err, ErrNotFound, "a refused order is not taken")
	require.Equal(t, int64(9), f.ats("wh1", "A").Available, "and reserves nothing (order 1 holds one)")

	got, err := f.svc.Get(f.ctx, "wh1", o.ID)
	require.NoError(t, err)
	require.Equal(t, "acme", got.Owner)
	list, _, err := f.svc.List(f.ctx, Query{Warehouse: "wh1", Owner: "acme"})
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.Equal(t, o.ID, list[0].ID)
	list, _, err = f.svc.List(f.ctx, Query{Owner: "beta"})
	require.NoError(t, err)
	require.Len(t, list, 2, "the order and the hold of beta")
	list, _, err = f.svc.List(f.ctx, Query{})
	require.NoError(t, err)
	require.Len(t, list, 4)
}
