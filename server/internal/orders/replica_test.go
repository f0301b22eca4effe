package orders

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
	"github.com/shelfsync/shelfsync/server/internal/store/pgtest"
	"github.com/shelfsync/shelfsync/server/internal/store/postgres"
)

// replica is a second Service over the fixture's store, as another server
// replica over the same database: f.op tells it every change.
type replica struct {
	f   *fixture
	svc *Service

	mu     sync.Mutex
	snaps  []Snapshot
	cfls   []conflicts.Conflict
	events []string
}

func (f *fixture) replica(cfg Config) *replica {
	f.t.Helper()
	r := &replica{f: f}
	cfg.Debounce = time.Millisecond
	cfg.Publish = func(s Snapshot) { r.mu.Lock(); r.snaps = append(r.snaps, s); r.mu.Unlock() }
	cfg.OnConflict = func(c conflicts.Conflict) { r.mu.Lock(); r.cfls = append(r.cfls, c); r.mu.Unlock() }
	cfg.OnOrder = func(o Order, ev string) { r.mu.Lock(); r.events = append(r.events, ev+" "+o.ID); r.mu.Unlock() }
	r.svc = New(cfg, f.st)
	require.NoError(f.t, r.svc.Start(f.ctx))
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.svc.Run(ctx) }()
	f.t.Cleanup(func() { cancel(); <-done }) // before the store closes
	f.mu.Lock()
	f.others = append(f.others, r.svc)
	f.mu.Unlock()
	return r
}

func (r *replica) ats(wh, sku string) ATS {
	r.svc.Flush(r.f.ctx)
	rows, _, _ := r.svc.Availability(wh, sku)
	for _, a := range rows {
		if a.Warehouse == wh && a.SKU == sku {
			return a
		}
	}
	return ATS{Warehouse: wh, SKU: sku}
}

func (r *replica) published() []Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Snapshot(nil), r.snaps...)
}

func (r *replica) conflictsSeen() []conflicts.Conflict {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]conflicts.Conflict(nil), r.cfls...)
}

func (f *fixture) published() []Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Snapshot(nil), f.snaps...)
}

func (f *fixture) conflictsSeen() []conflicts.Conflict {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]conflicts.Conflict(nil), f.cfls...)
}

func (f *fixture) oversells() []conflicts.Conflict {
	f.t.Helper()
	cs, err := f.st.Conflicts(f.ctx, conflicts.Query{Kind: conflicts.KindOversell})
	require.NoError(f.t, err)
	return cs
}

// TestAnOrderWrittenByAnotherReplicaReachesTheModel: A is the fixture's
// (active) service, B a passive replica; orders created and shipped on B
// reach A's model through OrderChanged, and B publishes nothing.
func TestAnOrderWrittenByAnotherReplicaReachesTheModel(t *testing.T) {
	f := newFixture(t, "", Config{})
	b := f.replica(Config{Passive: true})
	require.False(t, b.svc.Active())
	require.True(t, f.svc.Active())
	f.receive("wh1", "BIN-1", "A", 10)
	require.Equal(t, int64(10), f.ats("wh1", "A").Available)
	require.Equal(t, int64(10), b.ats("wh1", "A").Available)

	o, created, err := b.svc.Create(f.ctx, newOrder("1", Line{SKU: "A", Qty: 4}))
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, int64(6), b.ats("wh1", "A").Available, "the writer's model holds it at once")

	f.svc.OrderChanged("wh1", o.ID)
	a := f.ats("wh1", "A")
	require.Equal(t, int64(4), a.Reserved)
	require.Equal(t, int64(6), a.Available)
	got, err := f.svc.Get(f.ctx, "wh1", o.ID)
	require.NoError(t, err)
	require.Equal(t, int64(4), got.Lines[0].Reserved)
	_, _, seq := f.svc.Availability("wh1", "A")
	require.GreaterOrEqual(t, seq, o.Seq)
	snaps := f.published()
	last := snaps[len(snaps)-1]
	require.Equal(t, "web", last.Channel, "the channel the order created on B")
	require.GreaterOrEqual(t, last.Seq, o.Seq)
	require.Equal(t, []Item{{SKU: "A", Available: 6}}, last.Items)

	f.pick("wh1", "BIN-1", "A", 1, o.ID, 0) // ingest on either replica: both hear of it
	require.Equal(t, ATS{Warehouse: "wh1", SKU: "A", OnHand: 9, Sellable: 9, Reserved: 3, Available: 6}, f.ats("wh1", "A"))
	require.Equal(t, ATS{Warehouse: "wh1", SKU: "A", OnHand: 9, Sellable: 9, Reserved: 3, Available: 6}, b.ats("wh1", "A"))

	// A's own stale view does not let it ship twice or cancel a shipped order
	shipped, err := b.svc.Ship(f.ctx, "wh1", o.ID)
	require.NoError(t, err)
	require.Equal(t, int64(1), shipped.Lines[0].Picked)
	_, err = f.svc.Cancel(f.ctx, "wh1", o.ID)
	require.ErrorIs(t, err, ErrConflict, "the store says shipped, whatever A's model held")
	f.svc.OrderChanged("wh1", o.ID)
	require.Equal(t, int64(9), f.ats("wh1", "A").Available)
	require.Equal(t, int64(9), b.ats("wh1", "A").Available)

	b.mu.Lock()
	require.Equal(t, []string{"created " + o.ID, "shipped " + o.ID}, b.events, "events stay with the writer")
	b.mu.Unlock()
	require.Empty(t, b.published(), "a passive replica publishes nothing")

	// a replay on A of the order B created
	again, created, err := f.svc.Create(f.ctx, newOrder("1", Line{SKU: "A", Qty: 4}))
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, StatusShipped, again.Status)

	// channels
	n := len(f.published())
	_, err = b.svc.PutChannel(f.ctx, Channel{Name: "market", SharePct: 50})
	require.NoError(t, err)
	f.svc.ChannelsChanged()
	f.svc.Flush(f.ctx)
	require.Len(t, f.svc.Channels(), 2)
	sn, ok := f.svc.Snapshot("market")
	require.True(t, ok)
	require.Equal(t, []Item{{SKU: "A", Available: 4}}, sn.Items)
	var market []Snapshot
	for _, sn := range f.published()[n:] {
		if sn.Channel == "market" {
			market = append(market, sn)
		}
	}
	require.Len(t, market, 1, "the active replica publishes the new allocation")
	require.Empty(t, b.published())
}

// TestOnlyTheActiveReplicaRaisesOversell: an order taken on a passive
// replica beyond stock is raised, and later cleared, by the active one.
func TestOnlyTheActiveReplicaRaisesOversell(t *testing.T) {
	f := newFixture(t, "", Config{})
	b := f.replica(Config{Passive: true})
	f.receive("wh1", "BIN-1", "A", 3)
	o, _, err := b.svc.Create(f.ctx, newOrder("9", Line{SKU: "A", Qty: 3}))
	require.NoError(t, err)
	f.pick("wh1", "BIN-1", "A", 1, "", 0) // a unit left for no order
	require.Equal(t, int64(-1), b.ats("wh1", "A").Available)
	require.Empty(t, b.conflictsSeen(), "the passive writer raises nothing")

	f.svc.OrderChanged("wh1", o.ID)
	require.Equal(t, int64(-1), f.ats("wh1", "A").Available)
	cs := f.oversells()
	require.Len(t, cs, 1)
	require.Equal(t, conflicts.StatusOpen, cs[0].Status)
	got, err := f.svc.Get(f.ctx, "wh1", o.ID)
	require.NoError(t, err)
	require.Equal(t, StatusOpen, got.Status, "the passive replica's order is the active one's too")

	f.receive("wh1", "BIN-2", "A", 5)
	f.ats("wh1", "A")
	b.ats("wh1", "A")
	cs = f.oversells()
	require.Equal(t, conflicts.StatusCleared, cs[0].Status)
	require.Len(t, f.conflictsSeen(), 2, "raised, then cleared, by the active replica")
	require.Empty(t, b.conflictsSeen())
}

// TestSwitchingTheActiveReplica: the replica that becomes active publishes
// every channel at once and takes over the oversell conflicts the other
// raised (clearing them, not raising them twice); the one that stops
// publishes nothing more.
func TestSwitchingTheActiveReplica(t *testing.T) {
	f := newFixture(t, "", Config{})
	b := f.replica(Config{Passive: true})
	f.receive("wh1", "BIN-1", "A", 3)
	f.receive("wh1", "BIN-1", "B", 7)
	o, _, err := f.svc.Create(f.ctx, newOrder("1", Line{SKU: "A", Qty: 3}))
	require.NoError(t, err)
	f.pick("wh1", "BIN-1", "A", 1, "", 0) // a unit left for no order
	_, err = f.svc.PutChannel(f.ctx, Channel{Name: "market", SharePct: 50})
	require.NoError(t, err)
	f.svc.Flush(f.ctx)
	require.Len(t, f.conflictsSeen(), 1)
	b.svc.OrderChanged("wh1", o.ID)
	b.svc.ChannelsChanged()
	require.Equal(t, int64(-1), b.ats("wh1", "A").Available)
	require.Empty(t, b.published())

	require.NoError(t, f.svc.SetActive(f.ctx, false))
	before := len(f.published())
	require.NoError(t, b.svc.SetActive(f.ctx, true))
	snaps := b.published()
	require.Len(t, snaps, 2, "every channel, at once")
	require.Equal(t, "market", snaps[0].Channel)
	require.Equal(t, []Item{{SKU: "A", Available: 0}, {SKU: "B", Available: 3}}, snaps[0].Items)
	require.Equal(t, "web", snaps[1].Channel)
	require.Equal(t, []Item{{SKU: "A", Available: 0}, {SKU: "B", Available: 7}}, snaps[1].Items)
	require.Empty(t, b.conflictsSeen(), "the open oversell is not raised again")
	_, _, seqA := f.svc.Availability("", "")
	require.GreaterOrEqual(t, snaps[0].Seq, seqA, "the sequence does not go back on a switch")

	f.receive("wh1", "BIN-2", "A", 5) // the oversell stops holding
	f.ats("wh1", "A")
	b.ats("wh1", "B")
	cs := f.oversells()
	require.Len(t, cs, 1)
	require.Equal(t, conflicts.StatusCleared, cs[0].Status)
	require.Len(t, b.conflictsSeen(), 1, "the new active replica cleared it")
	require.Len(t, f.conflictsSeen(), 1, "the old one did not")
	require.Len(t, f.published(), before, "the old one publishes nothing more")
	require.Greater(t, len(b.published()), 2)

	// and back: A takes over again
	require.NoError(t, b.svc.SetActive(f.ctx, false))
	require.NoError(t, f.svc.SetActive(f.ctx, true))
	require.Len(t, f.published(), before+2)
}

// TestTwoReplicasShareTheSequence: orders created concurrently on two
// replicas never get the same sequence, and every snapshot the active
// replica publishes accounts for every order with a sequence up to its own,
// whichever replica took it — even with no OrderChanged at all.
func TestTwoReplicasShareTheSequence(t *testing.T) {
	f := newFixture(t, "", Config{})
	b := f.replica(Config{Passive: true})
	const stock = 200
	f.receive("wh1", "BIN-1", "A", stock/2)
	f.receive("wh1", "BIN-2", "A", stock/2)

	type placed struct {
		seq uint64
		qty int64
		id  string
	}
	var mu sync.Mutex
	var orders []placed
	picks := make(chan placed, 256)
	var pickers sync.WaitGroup
	for g := 0; g < 2; g++ {
		pickers.Add(1)
		go func() {
			defer pickers.Done()
			for o := range picks {
				for q := o.qty; q > 0; q-- {
					f.pick("wh1", fmt.Sprintf("BIN-%d", 1+rand.IntN(2)), "A", 1, o.id, 0)
				}
			}
		}()
	}
	var writers sync.WaitGroup
	for w := 0; w < 4; w++ {
		svc := f.svc
		if w%2 == 1 {
			svc = b.svc
		}
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := 0; i < 15; i++ {
				qty := int64(1 + rand.IntN(3))
				o, created, err := svc.Create(f.ctx, newOrder(fmt.Sprintf("%d-%d", w, i), Line{SKU: "A", Qty: qty}))
				if !(err == nil && created && len(o.Short) == 0) {
					t.Errorf("create: %v %v %v", err, created, o.Short)
					return
				}
				mu.Lock()
				orders = append(orders, placed{o.Seq, qty, o.ID})
				mu.Unlock()
				picks <- placed{o.Seq, qty, o.ID}
			}
		}()
	}
	writers.Wait()
	close(picks)
	pickers.Wait()
	f.svc.Flush(f.ctx)
	f.svc.Flush(f.ctx)
	b.svc.Flush(f.ctx)

	seen := map[uint64]string{}
	var total int64
	for _, o := range orders {
		require.NotZero(t, o.seq)
		require.NotContains(t, seen, o.seq, "sequence %d handed out twice (%s and %s)", o.seq, seen[o.seq], o.id)
		seen[o.seq] = o.id
		total += o.qty
	}
	require.Len(t, seen, 60)

	snaps := f.published()
	require.NotEmpty(t, snaps)
	var prev uint64
	for _, sn := range snaps {
		require.GreaterOrEqual(t, sn.Seq, prev, "snapshots never go back")
		prev = sn.Seq
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
	require.Equal(t, stock-total, snaps[len(snaps)-1].Items[0].Available, "the last snapshot is exact")
	require.Equal(t, stock-total, f.ats("wh1", "A").Available)
	require.Equal(t, stock-total, b.ats("wh1", "A").Available)
	require.Empty(t, b.published())
	for _, k := range []conflicts.Kind{conflicts.KindOversell, conflicts.KindOverPick} {
		cs, err := f.st.Conflicts(f.ctx, conflicts.Query{Kind: k})
		require.NoError(t, err)
		require.Empty(t, cs, "no %s", k)
	}
}

// TestTheSequenceContinuesFromAnEarlierLease: a database written before
// the sequence was shared holds the upper bound of the last lease; numbers
// go on from there.
func TestTheSequenceContinuesFromAnEarlierLease(t *testing.T) {
	st, err := badger.Open(badger.Options{InMemory: true})
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.Update(func(tx store.Tx) error { return tx.Set([]byte(keySeq), u64(5000)) }))
	svc := New(Config{}, st)
	ctx := context.Background()
	require.NoError(t, svc.Start(ctx))
	_, _, seq := svc.Availability("", "")
	require.Equal(t, uint64(5000), seq)
	_, err = svc.PutChannel(ctx, Channel{Name: "web", SharePct: 100, Policy: PolicyBackorder})
	require.NoError(t, err)
	o, _, err := svc.Create(ctx, newOrder("1", Line{SKU: "A", Qty: 1}))
	require.NoError(t, err)
	require.Equal(t, uint64(5001), o.Seq)
}

// TestIntegrationOrdersOnPostgres runs the order model's tests, the
// replica ones included, on PostgreSQL (one schema per test; a directory
// names a schema, so a restart reopens the same state).
func TestIntegrationOrdersOnPostgres(t *testing.T) {
	pgtest.DSN(t)
	old := openStore
	t.Cleanup(func() { openStore = old })
	schemas := map[string]string{}
	openStore = func(t *testing.T, dir string) testStore {
		dsn, ok := schemas[dir]
		if !ok || dir == "" {
			dsn = pgtest.FreshSchema(t)
			schemas[dir] = dsn
		}
		st, err := postgres.Open(context.Background(), dsn, postgres.Options{MaxConns: 8})
		require.NoError(t, err)
		return st
	}
	for name, test := range map[string]func(*testing.T){
		"CreateReserves":      TestCreateReservesAtOnceAndIsIdempotent,
		"PicksConsume":        TestPicksConsumeTheReservationShipReleasesTheRest,
		"Oversell":            TestAReservationThatCannotBeMetRaisesAnOversell,
		"Sellable":            TestSellableLocationsAndSafetyStock,
		"ChannelAllocate":     TestChannelAllocate,
		"NeverOfferMore":      TestSnapshotsNeverOfferMoreThanCanBeShipped,
		"Restart":             TestRestartKeepsReservationsAndSequence,
		"OrderReachesReplica": TestAnOrderWrittenByAnotherReplicaReachesTheModel,
		"OnlyActiveOversell":  TestOnlyTheActiveReplicaRaisesOversell,
		"SwitchingActive":     TestSwitchingTheActiveReplica,
		"SharedSequence":      TestTwoReplicasShareTheSequence,
		"WebhookInOrderTx":    TestOrderWebhookIsQueuedInTheOrdersTransaction,
		"OversellNeedsRes":    TestOversellNeedsAReservation,
		"OldOversellCleared":  TestAnOversellWithoutReservationsRaisedBeforeIsCleared,
		"Reload":              TestReloadReadsKeysTheModelNeverHeardOf,
		"StockPerLocation":    TestStockIsSummedPerLocationNotPerKey,
		"SplitAcrossWHs":      TestAnOrderItsWarehouseCannotMeetIsSplitAcrossTheOwnersWarehouses,
		"Reallocate":          TestReallocateMovesALineOrBackordersIt,
		"ShipScanned":         TestShipScannedShipsOnceWithItsLabel,
	} {
		t.Run(name, test)
	}
}
