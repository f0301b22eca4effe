// Package storetest is the contract every store.Store backend meets: the
// sequence rule's verdicts (exactly once, duplicates, gaps, overlaps),
// quarantine, the merge rule against ledger.Fold under random batches and
// redeliveries from several gateways (also applied concurrently, as
// replicas do), the compacted downstream log and DownFrom's sparse and
// targeted reads, gateway records, and the epoch; and, for backends that
// implement store.Actions, server-origin ops, conflict resolution, stock
// history, orders and over-picks, tasks and quarantine decisions. Backends
// call Run from their tests.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Option adapts Run to what a backend can do.
type Option func(*config)

type config struct {
	reopen  func(t *testing.T, s store.Store) store.Store
	replica func(t *testing.T, s store.Store) store.Store
	opLog   func(t require.TestingT, s store.Store, wh, gw string, seq uint64) []byte
}

// WithReopen gives Run a way to close s and open its state again, for the
// durability checks (epoch, watermarks and stock survive a reopen).
// Without it those checks are skipped.
func WithReopen(f func(t *testing.T, s store.Store) store.Store) Option {
	return func(c *config) { c.reopen = f }
}

// WithReplica gives Run a second handle on s's state that may be used at
// the same time, as another server replica would. Without it the
// concurrent checks share s between goroutines.
func WithReplica(f func(t *testing.T, s store.Store) store.Store) Option {
	return func(c *config) { c.replica = f }
}

// Run runs the contract against stores from open, which returns a fresh,
// empty store for each subtest (and closes it in t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) store.Store, opts ...Option) {
	c := config{replica: func(_ *testing.T, s store.Store) store.Store { return s }}
	for _, o := range opts {
		o(&c)
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, open func(t *testing.T) store.Store, c config)
	}{
		{"Verdicts", testVerdicts},
		{"Quarantine", testQuarantine},
		{"ConflictsDetectedInApply", testConflicts},
		{"MergeEqualsFold", testMergeEqualsFold},
		{"ConcurrentRedeliveriesApplyOnce", testConcurrentExactlyOnce},
		{"GroupCommitEqualsOneByOne", testGroupCommit},
		{"StockQuery", testStockQuery},
		{"StockGroups", testStockGroups},
		{"OwnerAndStatusKeys", testOwnerStatus},
		{"DownstreamCompaction", testDownCompaction},
		{"DownstreamSparseAndTargeted", testDownSparse},
		{"DownstreamStockAndUpWM", testDownStock},
		{"Gateways", testGateways},
		{"Epoch", testEpoch},
		{"Actions", testActions},
		{"Records", testRecords},
		{"LostOps", testLostOps},                 // lostops.go
		{"OpLogAsReceived", testOpLogAsReceived}, // oplog.go
		{"OpLogDecodesToMerged", testOpLogDecodesToMerged},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open, c) })
	}
}

// Batch returns ops as one batch of wh/gw.
func Batch(wh, gw string, ops ...protocol.Op) *protocol.OpBatch {
	return &protocol.OpBatch{Header: protocol.Header{WH: wh, GW: gw}, First: ops[0].Seq, Last: ops[len(ops)-1].Seq, Ops: ops}
}

// Receive returns a receive op.
func Receive(seq uint64, ms int64, loc, sku string, qty int64) protocol.Op {
	return protocol.Op{Seq: seq, HLC: protocol.MakeHLC(ms, 0), Kind: protocol.OpReceive, Location: loc, SKU: sku, Qty: qty}
}

// Apply applies b, retrying while the store reports store.ErrConflict as
// the ingest does.
func Apply(t testing.TB, s store.Store, b *protocol.OpBatch) store.Result {
	t.Helper()
	res, err := apply(s, b)
	require.NoError(t, err)
	return res
}

func apply(s store.Store, b *protocol.OpBatch) (store.Result, error) {
	for attempt := 0; ; attempt++ {
		res, err := s.ApplyBatch(context.Background(), b.WH, b.GW, b)
		if errors.Is(err, store.ErrConflict) && attempt < 1000 {
			continue
		}
		return res, err
	}
}

func stockOf(t *testing.T, s store.Store, wh string) map[ledger.Key]int64 {
	t.Helper()
	rows, err := s.Stock(context.Background(), store.StockQuery{Warehouse: wh})
	require.NoError(t, err)
	got := map[ledger.Key]int64{}
	for _, r := range rows {
		got[r.Key()] = r.OnHand
	}
	return got
}

func testVerdicts(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	ctx := context.Background()
	wm, err := s.Watermark(ctx, "w", "g")
	require.NoError(t, err)
	require.Zero(t, wm, "an unknown gateway's watermark")

	b12 := Batch("w", "g", Receive(1, 1, "L", "s", 1), Receive(2, 2, "L", "s", 2))
	res := Apply(t, s, b12)
	require.Equal(t, protocol.Apply, res.Verdict)
	require.Equal(t, uint64(2), res.WM)
	require.Equal(t, 2, res.Applied)
	require.NotEmpty(t, res.Changes)

	res = Apply(t, s, b12) // delivered twice
	require.Equal(t, protocol.Duplicate, res.Verdict)
	require.Equal(t, uint64(2), res.WM)
	require.Zero(t, res.Applied)

	res = Apply(t, s, Batch("w", "g", Receive(4, 4, "L", "s", 100))) // gap
	require.Equal(t, protocol.Gap, res.Verdict)
	require.Equal(t, uint64(2), res.WM)
	require.Zero(t, res.Applied)

	res = Apply(t, s, Batch("w", "g", Receive(2, 2, "L", "s", 2), Receive(3, 3, "L", "s", 4))) // overlap
	require.Equal(t, protocol.Apply, res.Verdict)
	require.Equal(t, 1, res.Applied, "only seq 3 is new")
	require.Equal(t, uint64(3), res.WM)

	res = Apply(t, s, Batch("w", "other", Receive(1, 5, "L", "s", 10))) // watermarks are per gateway
	require.Equal(t, protocol.Apply, res.Verdict)

	require.Equal(t, map[ledger.Key]int64{{WH: "w", Location: "L", SKU: "s"}: 17}, stockOf(t, s, "w"))
	wm, err = s.Watermark(ctx, "w", "g")
	require.NoError(t, err)
	require.Equal(t, uint64(3), wm)
}

func testQuarantine(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	ctx := context.Background()
	bad := Receive(2, 2, "L", "", 1) // no sku
	res := Apply(t, s, Batch("w", "g", Receive(1, 1, "L", "s", 1), bad, Receive(3, 3, "L", "s", 1)))
	require.Equal(t, 2, res.Applied)
	require.Equal(t, 1, res.Quarantined)
	require.Equal(t, uint64(3), res.WM, "a quarantined op moves the watermark: it is kept, not lost")
	var kinds []conflicts.Kind
	for _, c := range res.Conflicts {
		kinds = append(kinds, c.Kind)
	}
	require.Contains(t, kinds, conflicts.KindQuarantinedOp)
	// NUL bytes (valid UTF-8, so they pass the wire decoder; text columns
	// cannot hold them) are quarantined too, never a batch that fails and
	// is resent forever.
	hostile := []protocol.Op{Receive(4, 4, "L", "s\x00x", 1), Receive(5, 5, "L\x00", "s", 1), Receive(6, 6, "L", "s", 1)}
	hostile[2].Lot = "a\x00"
	res = Apply(t, s, Batch("w", "g", hostile...))
	require.Equal(t, protocol.Apply, res.Verdict)
	require.Equal(t, 3, res.Quarantined)
	res = Apply(t, s, Batch("w", "g", hostile...)) // and redelivered
	require.Equal(t, protocol.Duplicate, res.Verdict)
	q, err := s.Quarantined(ctx, "w")
	require.NoError(t, err)
	require.Len(t, q, 4)
	require.Equal(t, hostile[0], q[1].Op, "the op is kept byte for byte")
	q = q[:1]
	require.Equal(t, "w", q[0].Warehouse)
	require.Equal(t, "g", q[0].Gateway)
	require.Equal(t, uint64(2), q[0].Seq)
	require.Equal(t, bad, q[0].Op)
	require.Contains(t, q[0].Reason, "sku is required")
	q, err = s.Quarantined(ctx, "elsewhere")
	require.NoError(t, err)
	require.Empty(t, q)
	require.Equal(t, map[ledger.Key]int64{{WH: "w", Location: "L", SKU: "s"}: 2}, stockOf(t, s, "w"))
}

func testConflicts(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	pick := protocol.Op{Seq: 1, HLC: protocol.MakeHLC(1000, 0), Kind: protocol.OpPick, Location: "L", SKU: "s", Qty: 2}
	res := Apply(t, s, Batch("w", "g", pick))
	require.Len(t, res.Conflicts, 1)
	require.Equal(t, conflicts.KindNegativeStock, res.Conflicts[0].Kind)
	require.Equal(t, int64(-2), res.Conflicts[0].Observed)
	// The same state again raises nothing new; stock back at 0 clears it.
	res = Apply(t, s, Batch("w", "g", Receive(2, 2000, "L", "s", 2)))
	require.Len(t, res.Conflicts, 1)
	require.Equal(t, conflicts.StatusCleared, res.Conflicts[0].Status)
}

// randomOps draws n ops per gateway over a small key space: receives,
// picks, moves, key and location counts, so that counts cover deltas in
// every order.
func randomOps(r *rand.Rand, wh string, gws []string, n int) map[string][]protocol.Op {
	out := map[string][]protocol.Op{}
	for _, gw := range gws {
		for seq := uint64(1); seq <= uint64(n); seq++ {
			op := protocol.Op{Seq: seq, HLC: protocol.MakeHLC(int64(r.IntN(30)), uint16(r.IntN(2))),
				Location: []string{"L1", "L2"}[r.IntN(2)], SKU: []string{"x", "y"}[r.IntN(2)], Lot: []string{"", "lot-1"}[r.IntN(2)], Qty: int64(1 + r.IntN(4)),
				Owner: []string{"", "", "acme"}[r.IntN(3)], Status: []protocol.StockStatus{protocol.StatusAvailable, protocol.StatusAvailable, protocol.StatusHold}[r.IntN(3)]}
			switch r.IntN(7) {
			case 6: // a status move: hold ↔ available
				op.Kind, op.ToStatus = protocol.OpStatus, protocol.StatusHold-op.Status
			case 0, 1:
				op.Kind = protocol.OpReceive
			case 2:
				op.Kind = protocol.OpPick
			case 3:
				op.Kind, op.To = protocol.OpMove, "L3"
			case 4:
				op.Kind = protocol.OpCount
			case 5:
				op.Kind, op.Scope, op.SKU, op.Lot, op.Qty, op.Owner, op.Status = protocol.OpCount, protocol.ScopeLocation, "", "", 0, "", protocol.StatusAvailable
				op.Lines = []protocol.CountLine{{SKU: "x", Qty: int64(r.IntN(5))}}
			}
			out[gw] = append(out[gw], op)
		}
	}
	return out
}

func sourced(wh string, perGW map[string][]protocol.Op) []ledger.Sourced {
	var all []ledger.Sourced
	for gw, ops := range perGW {
		for _, op := range ops {
			all = append(all, ledger.Sourced{WH: wh, GW: gw, Op: op})
		}
	}
	return all
}

// deliveries cuts each gateway's ops into batches as an agent would send
// them, with redeliveries of overlapping windows and stale duplicates, in
// a random interleaving of gateways (each gateway's batches in order).
func deliveries(r *rand.Rand, wh string, perGW map[string][]protocol.Op) []*protocol.OpBatch {
	gws := make([]string, 0, len(perGW))
	for gw := range perGW {
		gws = append(gws, gw)
	}
	slices.Sort(gws)
	next := map[string]int{}
	var out []*protocol.OpBatch
	for slices.ContainsFunc(gws, func(gw string) bool { return next[gw] < len(perGW[gw]) }) {
		gw := gws[r.IntN(len(gws))]
		ops, i := perGW[gw], next[gw]
		if i >= len(ops) {
			continue
		}
		n := min(1+r.IntN(6), len(ops)-i)
		start := i
		if r.IntN(4) == 0 && i > 0 { // redeliver an overlapping window
			start = r.IntN(i)
		}
		out = append(out, Batch(wh, gw, ops[start:i+n]...))
		if r.IntN(5) == 0 && i > 0 { // a stale duplicate
			a := r.IntN(i)
			out = append(out, Batch(wh, gw, ops[a:a+1+r.IntN(i-a)]...))
		}
		next[gw] = i + n
	}
	return out
}

func testMergeEqualsFold(t *testing.T, open func(*testing.T) store.Store, _ config) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			s := open(t)
			perGW := randomOps(r, "w", []string{"a", "b", "c"}, 40)
			for _, b := range deliveries(r, "w", perGW) {
				Apply(t, s, b)
			}
			require.Equal(t, ledger.Fold(sourced("w", perGW)), stockOf(t, s, "w"))
			for gw, ops := range perGW {
				wm, err := s.Watermark(context.Background(), "w", gw)
				require.NoError(t, err)
				require.Equal(t, uint64(len(ops)), wm, gw)
			}
		})
	}
}

// testGroupCommit applies the same deliveries (of two warehouses, with
// redeliveries, stale duplicates, gaps and invalid ops) one by one to one
// store and in random consecutive groups through ApplyBatches to another:
// every batch gets the same verdict, watermark and counts, and at every
// group boundary both stores hold the same watermarks, stock, conflicts
// and quarantine — what a crash between two groups would leave.
func testGroupCommit(t *testing.T, open func(*testing.T) store.Store, _ config) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 11))
			one, grouped := open(t), open(t)
			var all []*protocol.OpBatch
			for _, wh := range []string{"w", "v"} {
				perGW := randomOps(r, wh, []string{"a", "b"}, 30)
				for gw, ops := range perGW {
					for i := range ops {
						if r.IntN(15) == 0 {
							ops[i].SKU, ops[i].Lines = "", nil // invalid: quarantined
						}
					}
					perGW[gw] = ops
				}
				all = append(all, deliveries(r, wh, perGW)...)
			}
			r.Shuffle(len(all), func(i, j int) { // interleave the warehouses (a gateway's batches may change order too: more gaps and duplicates)
				if all[i].WH != all[j].WH {
					all[i], all[j] = all[j], all[i]
				}
			})
			for len(all) > 0 {
				n := min(1+r.IntN(12), len(all))
				if r.IntN(6) == 0 && n > 1 { // a batch lost on the way: the next ones of its gateway are gaps
					all = slices.Delete(all, n/2, n/2+1)
					n--
				}
				group := make([]store.Batch, n)
				want := make([]store.Result, n)
				for i, b := range all[:n] {
					group[i] = store.Batch{WH: b.WH, GW: b.GW, B: b}
					want[i] = Apply(t, one, b)
				}
				got, err := applyBatches(grouped, group)
				require.NoError(t, err)
				require.Len(t, got, n)
				for i := range want {
					require.Equal(t, want[i].Verdict, got[i].Verdict, "batch %d of the group", i)
					require.Equal(t, want[i].WM, got[i].WM, "batch %d of the group", i)
					require.Equal(t, want[i].Applied, got[i].Applied, "batch %d of the group", i)
					require.Equal(t, want[i].Quarantined, got[i].Quarantined, "batch %d of the group", i)
				}
				sameState(t, one, grouped)
				all = all[n:]
			}
		})
	}
}

func applyBatches(s store.Store, bs []store.Batch) ([]store.Result, error) {
	for attempt := 0; ; attempt++ {
		rs, err := s.ApplyBatches(context.Background(), bs)
		if errors.Is(err, store.ErrConflict) && attempt < 1000 {
			continue
		}
		return rs, err
	}
}

// sameState requires a and b to hold the same watermarks, stock,
// conflicts and quarantined ops.
func sameState(t *testing.T, a, b store.Store) {
	t.Helper()
	ctx := context.Background()
	for _, wh := range []string{"w", "v"} {
		require.Equal(t, stockOf(t, a, wh), stockOf(t, b, wh), "stock of %s", wh)
		for _, gw := range []string{"a", "b"} {
			wa, err := a.Watermark(ctx, wh, gw)
			require.NoError(t, err)
			wb, err := b.Watermark(ctx, wh, gw)
			require.NoError(t, err)
			require.Equal(t, wa, wb, "watermark of %s/%s", wh, gw)
		}
		qa, err := a.Quarantined(ctx, wh)
		require.NoError(t, err)
		qb, err := b.Quarantined(ctx, wh)
		require.NoError(t, err)
		require.Equal(t, len(qa), len(qb), "quarantined ops of %s", wh)
	}
	ca, err := a.Conflicts(ctx, conflicts.Query{})
	require.NoError(t, err)
	cb, err := b.Conflicts(ctx, conflicts.Query{})
	require.NoError(t, err)
	ids := func(cs []conflicts.Conflict) map[string]conflicts.Status {
		m := map[string]conflicts.Status{}
		for _, c := range cs {
			m[c.ID] = c.Status
		}
		return m
	}
	require.Equal(t, ids(ca), ids(cb), "conflicts")
}

// testConcurrentExactlyOnce applies every gateway's deliveries from
// several goroutines over two handles at once, as replicas sharing a
// subscription do: each receives some of the batches, in order per
// receiver but racing the others. Gaps are answered by resending from the
// watermark, as an agent would.
func testConcurrentExactlyOnce(t *testing.T, open func(*testing.T) store.Store, c config) {
	r := rand.New(rand.NewPCG(42, 1))
	s := open(t)
	handles := []store.Store{s, c.replica(t, s)}
	gws := []string{"a", "b", "c", "d"}
	perGW := randomOps(r, "w", gws, 60)
	batches := deliveries(r, "w", perGW)
	const workers = 4
	queues := make([][]*protocol.OpBatch, workers)
	for _, b := range batches {
		i := r.IntN(workers)
		queues[i] = append(queues[i], b)
	}
	var mu sync.Mutex
	applied := map[string]int{}
	var errs []error
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := handles[i%len(handles)]
			for _, b := range queues[i] {
				res, err := apply(h, b)
				mu.Lock()
				applied[b.GW] += res.Applied
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	// What the race left behind (gaps) is resent from the watermark.
	for _, gw := range gws {
		wm, err := s.Watermark(context.Background(), "w", gw)
		require.NoError(t, err)
		if int(wm) < len(perGW[gw]) {
			res := Apply(t, s, Batch("w", gw, perGW[gw][wm:]...))
			require.Equal(t, protocol.Apply, res.Verdict)
			applied[gw] += res.Applied
		}
	}
	for _, gw := range gws {
		require.Equal(t, len(perGW[gw]), applied[gw], "ops of %s applied exactly once", gw)
	}
	require.Equal(t, ledger.Fold(sourced("w", perGW)), stockOf(t, s, "w"))
}

func testStockQuery(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	ctx := context.Background()
	Apply(t, s, Batch("w1", "g", Receive(1, 1, "B", "s2", 1), Receive(2, 2, "A", "s1", 2), Receive(3, 3, "A", "s2", 3)))
	lot := Receive(4, 4, "A", "s1", 4)
	lot.Lot = "L9"
	Apply(t, s, Batch("w1", "g", lot))
	Apply(t, s, Batch("w2", "g", Receive(1, 1, "A", "s1", 5)))
	out := Receive(3, 3, "B", "s1", -3)
	out.Kind, out.Reason = protocol.OpAdjust, "damaged"
	Apply(t, s, Batch("w2", "g", Receive(2, 2, "B", "s1", 3), out)) // back to 0
	all, err := s.Stock(ctx, store.StockQuery{})
	require.NoError(t, err)
	require.Equal(t, []store.StockRow{
		{Warehouse: "w1", Location: "A", SKU: "s1", OnHand: 2},
		{Warehouse: "w1", Location: "A", SKU: "s1", Lot: "L9", OnHand: 4},
		{Warehouse: "w1", Location: "A", SKU: "s2", OnHand: 3},
		{Warehouse: "w1", Location: "B", SKU: "s2", OnHand: 1},
		{Warehouse: "w2", Location: "A", SKU: "s1", OnHand: 5},
		{Warehouse: "w2", Location: "B", SKU: "s1", OnHand: 0},
	}, all, "sorted by warehouse, location, sku, lot")
	for _, tc := range []struct {
		q    store.StockQuery
		want int
	}{
		{store.StockQuery{Warehouse: "w1"}, 4},
		{store.StockQuery{Warehouse: "w1", Location: "A"}, 3},
		{store.StockQuery{Warehouse: "w1", Location: "A", SKU: "s1"}, 2},
		{store.StockQuery{Warehouse: "w1", Location: "A", SKU: "s1", Lot: "L9"}, 1},
		{store.StockQuery{SKU: "s1"}, 4},
		{store.StockQuery{SKU: "s1", NonZero: true}, 3},
		{store.StockQuery{Warehouse: "w2", NonZero: true, Limit: 1}, 1},
		{store.StockQuery{Warehouse: "w2", Location: "B", NonZero: true}, 0},
		{store.StockQuery{Limit: 2}, 2},
		{store.StockQuery{Warehouse: "nope"}, 0},
	} {
		rows, err := s.Stock(ctx, tc.q)
		require.NoError(t, err)
		require.Len(t, rows, tc.want, "%+v", tc.q)
		var each []store.StockRow
		require.NoError(t, s.StockEach(ctx, tc.q, func(r store.StockRow) error { each = append(each, r); return nil }))
		require.Equal(t, append([]store.StockRow{}, rows...), append([]store.StockRow{}, each...), "StockEach gives Stock's rows in its order: %+v", tc.q)
	}
	stop := errors.New("stop")
	n := 0
	err = s.StockEach(ctx, store.StockQuery{}, func(store.StockRow) error { n++; return stop })
	require.ErrorIs(t, err, stop, "an error of fn stops StockEach and is returned")
	require.Equal(t, 1, n)
}

// testStockGroups: StockGroups lists exactly the keys of each group —
// every lot, owner and status — and none of a location or sku whose name
// starts with the group's, whatever the groups' order or repeats.
func testStockGroups(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	ops := []protocol.Op{
		Receive(1, 1, "A", "s1", 1), Receive(2, 2, "A", "s10", 2), Receive(3, 3, "AB", "s1", 3), Receive(4, 4, "B", "s1", 4),
		Receive(5, 5, "A", "s1", 5), Receive(6, 6, "A", "s1", 6), Receive(7, 7, "A", "s1", 7),
	}
	ops[4].Lot = "L9"
	ops[5].Owner = "acme"
	ops[6].Status = protocol.StatusHold
	Apply(t, s, Batch("w1", "g", ops...))
	Apply(t, s, Batch("w2", "g", Receive(1, 1, "A", "s1", 8)))
	Apply(t, s, Batch("w10", "g", Receive(1, 1, "A", "s1", 9)))
	var all []store.StockRow
	require.NoError(t, s.StockEach(context.Background(), store.StockQuery{}, func(r store.StockRow) error { all = append(all, r); return nil }))
	in := func(gs ...store.StockGroup) []store.StockRow {
		var out []store.StockRow
		for _, r := range all {
			if slices.Contains(gs, store.StockGroup{Warehouse: r.Warehouse, Location: r.Location, SKU: r.SKU}) {
				out = append(out, r)
			}
		}
		return out
	}
	g := func(wh, loc, sku string) store.StockGroup {
		return store.StockGroup{Warehouse: wh, Location: loc, SKU: sku}
	}
	for _, gs := range [][]store.StockGroup{
		{g("w1", "A", "s1")},
		{g("w1", "A", "s10"), g("w1", "AB", "s1")},
		{g("w2", "A", "s1"), g("w1", "B", "s1"), g("w1", "A", "s1"), g("w2", "A", "s1")},
		{g("w1", "A", "s"), g("w", "A", "s1"), g("w1", "C", "s1")},
		{g("w1", "A", "s1"), g("w1", "A", "s10"), g("w1", "AB", "s1"), g("w1", "B", "s1"), g("w2", "A", "s1"), g("w10", "A", "s1")},
		{},
	} {
		var got []store.StockRow
		require.NoError(t, s.View(func(tx store.Tx) error {
			var err error
			got, err = tx.StockGroups(gs)
			return err
		}))
		require.ElementsMatch(t, in(gs...), got, "%v", gs)
	}
	require.Len(t, in(store.StockGroup{Warehouse: "w1", Location: "A", SKU: "s1"}), 4, "lot, owner and status keys of one group")
}

type body struct {
	V int `cbor:"1,keyasint"`
}

func decode(t *testing.T, it protocol.DownItem) int {
	var b body
	require.NoError(t, protocol.Unmarshal(it.Body, &b))
	return b.V
}

func testDownCompaction(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	ctx := context.Background()
	require.NoError(t, s.AppendDown(ctx, "w", "", protocol.DownCatalog, "a", body{1}))
	require.NoError(t, s.AppendDown(ctx, "w", "", protocol.DownCatalog, "b", body{2}))
	require.NoError(t, s.AppendDown(ctx, "w", "", protocol.DownCatalog, "a", body{3}))     // replaces seq 1
	require.NoError(t, s.AppendDown(ctx, "w", "", protocol.DownThreshold, "a", body{4}))   // another kind: kept
	require.NoError(t, s.AppendDown(ctx, "other", "", protocol.DownCatalog, "a", body{9})) // another warehouse's log
	r, err := s.DownFrom(ctx, "w", "g", 0, 100)
	require.NoError(t, err)
	require.Equal(t, uint64(4), r.Head)
	require.Equal(t, uint64(1), r.First)
	require.Equal(t, uint64(4), r.Last)
	var seqs, vals []int
	for _, it := range r.Items {
		seqs, vals = append(seqs, int(it.Seq)), append(vals, decode(t, it))
	}
	require.Equal(t, []int{2, 3, 4}, seqs, "the compacted entry's old seq is gone")
	require.Equal(t, []int{2, 3, 4}, vals)
	require.Equal(t, protocol.DownCatalog, r.Items[1].Kind)
	require.Equal(t, protocol.DownThreshold, r.Items[2].Kind)

	r, err = s.DownFrom(ctx, "other", "g", 0, 100)
	require.NoError(t, err)
	require.Equal(t, uint64(1), r.Head)
	require.Len(t, r.Items, 1)

	r, err = s.DownFrom(ctx, "w", "g", 4, 100) // at the head
	require.NoError(t, err)
	require.Empty(t, r.Items)
	require.Equal(t, uint64(5), r.First)
	require.Equal(t, uint64(4), r.Last)
	require.Equal(t, uint64(4), r.Head)

	r, err = s.DownFrom(ctx, "empty", "g", 0, 100)
	require.NoError(t, err)
	require.Empty(t, r.Items)
	require.Zero(t, r.Head)
}

func testDownSparse(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	ctx := context.Background()
	// seq: 1 all, 2 g1, 3 g2, 4 g2, 5 all, 6 g1, 7 all
	for i, target := range []string{"", "g1", "g2", "g2", "", "g1", ""} {
		require.NoError(t, s.AppendDown(ctx, "w", target, protocol.DownTask, fmt.Sprint("t", i), body{i + 1}))
	}
	read := func(gw string, after uint64, max int) store.DownRead {
		r, err := s.DownFrom(ctx, "w", gw, after, max)
		require.NoError(t, err)
		return r
	}
	seqs := func(r store.DownRead) []uint64 {
		var out []uint64
		for _, it := range r.Items {
			out = append(out, it.Seq)
		}
		return out
	}
	r := read("g1", 0, 100)
	require.Equal(t, []uint64{1, 2, 5, 6, 7}, seqs(r), "g1 sees its own and the shared entries only")
	require.Equal(t, uint64(7), r.Last)
	r = read("g2", 0, 100)
	require.Equal(t, []uint64{1, 3, 4, 5, 7}, seqs(r))
	require.Equal(t, uint64(7), r.Last)
	r = read("g3", 2, 100)
	require.Equal(t, []uint64{5, 7}, seqs(r), "a batch may be sparse")
	require.Equal(t, uint64(3), r.First)
	require.Equal(t, uint64(7), r.Last)

	// Paging with max: every page covers what it skipped, no entry of gw
	// is lost, and no page ends after an entry it did not return.
	for _, gw := range []string{"g1", "g2", "g3"} {
		for max := 1; max <= 3; max++ {
			var got []uint64
			after := uint64(0)
			for pages := 0; after < 7; pages++ {
				require.Less(t, pages, 20, "paging does not progress")
				r := read(gw, after, max)
				require.Equal(t, after+1, r.First)
				require.LessOrEqual(t, len(r.Items), max)
				require.GreaterOrEqual(t, r.Last, r.First-1)
				for _, it := range r.Items {
					require.LessOrEqual(t, it.Seq, r.Last)
				}
				got = append(got, seqs(r)...)
				after = r.Last
			}
			require.Equal(t, seqs(read(gw, 0, 100)), got, "%s max %d", gw, max)
		}
	}
}

func testDownStock(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	ctx := context.Background()
	Apply(t, s, Batch("w", "g", Receive(1, 1, "L", "a", 1), Receive(2, 2, "L", "b", 2)))
	Apply(t, s, Batch("w", "g", Receive(3, 3, "L", "a", 5)))
	Apply(t, s, Batch("w", "h", Receive(1, 4, "L", "c", 7)))
	r, err := s.DownFrom(ctx, "w", "g", 0, 100)
	require.NoError(t, err)
	got := map[string]int64{}
	for _, it := range r.Items {
		require.Equal(t, protocol.DownStock, it.Kind)
		var v protocol.StockValue
		require.NoError(t, protocol.Unmarshal(it.Body, &v))
		_, dup := got[v.SKU]
		require.False(t, dup, "stock of %s appears once: the log is compacted per key", v.SKU)
		got[v.SKU] = v.OnHand
	}
	require.Equal(t, map[string]int64{"a": 6, "b": 2, "c": 7}, got)
	require.Equal(t, r.Head, r.Last)
	require.Equal(t, uint64(3), r.UpWM, "a read that reaches the head carries the gateway's watermark")

	r, err = s.DownFrom(ctx, "w", "g", 0, 1)
	require.NoError(t, err)
	require.Less(t, r.Last, r.Head)
	require.Zero(t, r.UpWM, "a read that stops short of the head does not")
}

func testGateways(t *testing.T, open func(*testing.T) store.Store, c config) {
	s := open(t)
	ctx := context.Background()
	gws, err := s.Gateways(ctx, "")
	require.NoError(t, err)
	require.Empty(t, gws)
	require.NoError(t, s.UpdateGateway(ctx, "w2", "z", func(g *store.Gateway) { g.Online = true }))
	require.NoError(t, s.UpdateGateway(ctx, "w1", "b", func(g *store.Gateway) {
		require.Equal(t, "w1", g.Warehouse)
		require.Equal(t, "b", g.Gateway)
		g.Online, g.LastSeen, g.ReportedSeq, g.OutboxDepth, g.AgentVersion, g.Protocol, g.DownAcked, g.LastApplied = true, 1234, 9, 3, "1.2.3", 1, 7, 99
	}))
	require.NoError(t, s.UpdateGateway(ctx, "w1", "a", func(g *store.Gateway) { g.AgentVersion = "0.9" }))
	require.NoError(t, s.UpdateGateway(ctx, "w1", "b", func(g *store.Gateway) {
		require.Equal(t, "1.2.3", g.AgentVersion, "f sees the stored record")
		g.Online = false
	}))
	Apply(t, s, Batch("w1", "b", Receive(1, 1, "L", "s", 1), Receive(2, 2, "L", "s", 1)))
	gws, err = s.Gateways(ctx, "w1")
	require.NoError(t, err)
	require.Equal(t, []store.Gateway{
		{Warehouse: "w1", Gateway: "a", AgentVersion: "0.9"},
		{Warehouse: "w1", Gateway: "b", LastSeen: 1234, ReportedSeq: 9, OutboxDepth: 3, AgentVersion: "1.2.3", Protocol: 1, DownAcked: 7, LastApplied: 99, WM: 2},
	}, gws)
	gws, err = s.Gateways(ctx, "")
	require.NoError(t, err)
	require.Len(t, gws, 3)
	require.Equal(t, "w2", gws[2].Warehouse)

	// Concurrent read-modify-writes, also from another replica, lose nothing.
	h := c.replica(t, s)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := []store.Store{s, h}[i%2]
			for range 10 {
				for {
					err := st.UpdateGateway(ctx, "w3", "n", func(g *store.Gateway) { g.ReportedSeq++ })
					if !errors.Is(err, store.ErrConflict) {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	gws, err = s.Gateways(ctx, "w3")
	require.NoError(t, err)
	require.Len(t, gws, 1)
	require.Equal(t, uint64(80), gws[0].ReportedSeq)
}

func testEpoch(t *testing.T, open func(*testing.T) store.Store, c config) {
	s := open(t)
	e := s.Epoch()
	require.NotEmpty(t, e)
	require.Equal(t, e, s.Epoch())
	require.Equal(t, e, c.replica(t, s).Epoch(), "replicas of one state share its epoch")
	other := open(t)
	require.NotEqual(t, e, other.Epoch(), "another state has another epoch")
	if c.reopen == nil {
		t.Log("no reopen option: durability across reopen not checked")
		return
	}
	Apply(t, s, Batch("w", "g", Receive(1, 1, "L", "s", 3)))
	s = c.reopen(t, s)
	require.Equal(t, e, s.Epoch(), "the epoch survives a reopen")
	wm, err := s.Watermark(context.Background(), "w", "g")
	require.NoError(t, err)
	require.Equal(t, uint64(1), wm)
	require.Equal(t, map[ledger.Key]int64{{WH: "w", Location: "L", SKU: "s"}: 3}, stockOf(t, s, "w"))
}

// testActions runs the store.Actions contract on backends that have it.
func testActions(t *testing.T, open func(*testing.T) store.Store, c config) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store, a store.Actions, c config)
	}{
		{"IssueOp", testIssueOp},
		{"IssueOpConcurrent", testIssueOpConcurrent},
		{"IssueOps", testIssueOps},
		{"IssueOpsConcurrent", testIssueOpsConcurrent},                       // issueops.go
		{"IssueOpsKnownByOwnerAndStatus", testIssueOpsKnownByOwnerAndStatus}, // issueops.go
		{"ActionsDuringIngest", testActionsDuringIngest},
		{"ResolveAdjust", testResolveAdjust},
		{"ResolveRecount", testResolveRecount},
		{"CountClosesCountTasks", testCountClosesCountTasks},
		{"History", testHistory},
		{"OrdersOverPick", testOrdersOverPick},
		{"QuarantineAction", testQuarantineAction},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			a, ok := s.(store.Actions)
			if !ok {
				t.Skipf("%T does not implement store.Actions", s)
			}
			tc.fn(t, s, a, c)
		})
	}
}

func pick(seq uint64, ms int64, loc, sku string, qty int64) protocol.Op {
	return protocol.Op{Seq: seq, HLC: protocol.MakeHLC(ms, 0), Kind: protocol.OpPick, Location: loc, SKU: sku, Qty: qty}
}

// issueOp issues op, retrying while the store reports store.ErrConflict.
func issueOp(a store.Actions, wh string, op protocol.Op) (protocol.Op, store.Result, error) {
	for attempt := 0; ; attempt++ {
		out, res, err := a.IssueOp(context.Background(), wh, op)
		if errors.Is(err, store.ErrConflict) && attempt < 1000 {
			continue
		}
		return out, res, err
	}
}

func issue(t *testing.T, a store.Actions, wh string, op protocol.Op) (protocol.Op, store.Result) {
	t.Helper()
	out, res, err := issueOp(a, wh, op)
	require.NoError(t, err)
	return out, res
}

// downstream is a warehouse's downstream log as gateway "g" reads it,
// decoded by kind.
type downstream struct {
	ops   []protocol.Op
	stock map[ledger.Key]int64
	tasks []protocol.Task
}

func readDown(t *testing.T, s store.Store, wh string) downstream {
	t.Helper()
	r, err := s.DownFrom(context.Background(), wh, "g", 0, 1000)
	require.NoError(t, err)
	require.Equal(t, r.Head, r.Last)
	d := downstream{stock: map[ledger.Key]int64{}}
	for _, it := range r.Items {
		switch it.Kind {
		case protocol.DownOp:
			var op protocol.Op
			require.NoError(t, protocol.Unmarshal(it.Body, &op))
			d.ops = append(d.ops, op)
		case protocol.DownStock:
			var v protocol.StockValue
			require.NoError(t, protocol.Unmarshal(it.Body, &v))
			d.stock[ledger.Key{WH: wh, Location: v.Location, SKU: v.SKU, Lot: v.Lot, Owner: v.Owner, Status: v.Status}] = v.OnHand
		case protocol.DownTask:
			var task protocol.Task
			require.NoError(t, protocol.Unmarshal(it.Body, &task))
			d.tasks = append(d.tasks, task)
		}
	}
	return d
}

func conflictByID(t *testing.T, a store.Actions, wh, id string) conflicts.Conflict {
	t.Helper()
	cs, err := a.Conflicts(context.Background(), conflicts.Query{Warehouse: wh})
	require.NoError(t, err)
	for _, c := range cs {
		if c.ID == id {
			return c
		}
	}
	require.Failf(t, "no such conflict", "%s in %s", id, wh)
	return conflicts.Conflict{}
}

func serverWM(t *testing.T, s store.Store, wh string) uint64 {
	t.Helper()
	wm, err := s.Watermark(context.Background(), wh, protocol.ServerOrigin)
	require.NoError(t, err)
	return wm
}

func testIssueOp(t *testing.T, s store.Store, a store.Actions, _ config) {
	ctx := context.Background()
	k := ledger.Key{WH: "w", Location: "L", SKU: "s"}
	op1, res := issue(t, a, "w", protocol.Op{HLC: protocol.MakeHLC(1000, 0), Kind: protocol.OpReceive, Location: "L", SKU: "s", Qty: 5, Operator: "lead"})
	require.Equal(t, uint64(1), op1.Seq, "the server's own seq")
	require.Equal(t, protocol.ServerOrigin, op1.GW)
	require.Equal(t, 1, res.Applied)
	require.Equal(t, uint64(1), res.WM)
	require.Len(t, res.Changes, 1)
	require.Equal(t, int64(5), res.Changes[0].After)

	// Gateway ops merge beside the server's, each origin with its seqs.
	Apply(t, s, Batch("w", "g", Receive(1, 2000, "L", "s", 1)))
	op2, _ := issue(t, a, "w", pick(0, 3000, "L", "s", 2))
	require.Equal(t, uint64(2), op2.Seq, "a seq given by the caller is replaced")
	require.Equal(t, map[ledger.Key]int64{k: 4}, stockOf(t, s, "w"))
	require.Equal(t, uint64(2), serverWM(t, s, "w"))

	// An invalid op is refused and changes nothing.
	_, _, err := a.IssueOp(ctx, "w", protocol.Op{HLC: protocol.MakeHLC(4000, 0), Kind: protocol.OpReceive, Location: "L", Qty: 1})
	require.ErrorContains(t, err, "sku is required")
	require.Equal(t, uint64(2), serverWM(t, s, "w"))
	require.Equal(t, map[ledger.Key]int64{k: 4}, stockOf(t, s, "w"))

	// Every gateway of the warehouse gets the ops and the stock values.
	d := readDown(t, s, "w")
	require.Equal(t, []protocol.Op{op1, op2}, d.ops)
	require.Equal(t, map[ledger.Key]int64{k: 4}, d.stock)

	// Each warehouse numbers its server ops from 1.
	op3, _ := issue(t, a, "w2", Receive(0, 1000, "L", "s", 1))
	require.Equal(t, uint64(1), op3.Seq)
	require.Equal(t, uint64(2), serverWM(t, s, "w"))
}

// testIssueOps: a chunk of server ops applies in one call; an invalid op
// is refused alone (no seq, nothing written) with its reason; the shape
// sees whether a key has records (including the chunk's own earlier ops)
// and may rewrite or drop an op.
func testIssueOps(t *testing.T, s store.Store, a store.Actions, _ config) {
	ctx := context.Background()
	issue(t, a, "w", protocol.Op{HLC: protocol.MakeHLC(1000, 0), Kind: protocol.OpReceive, Location: "L", SKU: "old", Qty: 5})
	count := func(ms int64, sku string, qty int64) protocol.Op {
		return protocol.Op{HLC: protocol.MakeHLC(ms, 0), Kind: protocol.OpCount, Scope: protocol.ScopeKey, Location: "L", SKU: sku, Qty: qty, Reason: "IMPORT"}
	}
	ops := []protocol.Op{
		count(2000, "old", 7),   // known: a count
		count(2001, "new", 3),   // unknown: the shape makes it an adjust
		count(2002, "", 1),      // invalid: refused alone
		count(2003, "new", 4),   // known by now (the chunk's own write)
		count(2004, "zero", 0),  // unknown and 0: dropped
		count(2005, "other", 2), // unknown: an adjust
	}
	var seen []bool
	out, res, err := a.IssueOps(ctx, "w", ops, func(op *protocol.Op, known bool) bool {
		seen = append(seen, known)
		if !known {
			op.Kind, op.Scope = protocol.OpAdjust, 0
		}
		return known || op.Qty != 0
	})
	require.NoError(t, err)
	require.Len(t, out, len(ops))
	require.Equal(t, []bool{true, false, false, true, false, false}, seen)
	require.NoError(t, out[0].Err)
	require.Equal(t, uint64(2), out[0].Op.Seq)
	require.Equal(t, protocol.OpCount, out[0].Op.Kind)
	require.Equal(t, protocol.OpAdjust, out[1].Op.Kind)
	require.Equal(t, uint64(3), out[1].Op.Seq)
	require.ErrorContains(t, out[2].Err, "sku is required")
	require.Equal(t, uint64(4), out[3].Op.Seq, "a refused op takes no seq")
	require.Equal(t, protocol.OpCount, out[3].Op.Kind)
	require.True(t, out[4].Skipped)
	require.Equal(t, uint64(5), out[5].Op.Seq)
	require.Equal(t, 4, res.Applied)
	require.Equal(t, uint64(5), res.WM)
	require.Equal(t, uint64(5), serverWM(t, s, "w"))
	require.Equal(t, map[ledger.Key]int64{
		{WH: "w", Location: "L", SKU: "old"}:   7,
		{WH: "w", Location: "L", SKU: "new"}:   4,
		{WH: "w", Location: "L", SKU: "other"}: 2,
	}, stockOf(t, s, "w"))
	d := readDown(t, s, "w")
	require.Len(t, d.ops, 5, "every applied op goes downstream, the refused and the dropped do not")
}

// testIssueOpConcurrent issues ops from several goroutines over two
// handles: every op gets its own seq, none is lost.
func testIssueOpConcurrent(t *testing.T, s store.Store, a store.Actions, c config) {
	h, ok := c.replica(t, s).(store.Actions)
	require.True(t, ok, "the replica implements store.Actions too")
	handles := []store.Actions{a, h}
	const workers, each = 4, 10
	var mu sync.Mutex
	seqs := map[uint64]bool{}
	var errs []error
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				op, _, err := issueOp(handles[i%len(handles)], "w", Receive(0, int64(1000+100*i+j), "L", "s", 1))
				mu.Lock()
				errs = append(errs, err)
				seqs[op.Seq] = err == nil
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	for seq := uint64(1); seq <= workers*each; seq++ {
		require.True(t, seqs[seq], "seq %d issued", seq)
	}
	require.Equal(t, uint64(workers*each), serverWM(t, s, "w"))
	require.Equal(t, map[ledger.Key]int64{{WH: "w", Location: "L", SKU: "s"}: workers * each}, stockOf(t, s, "w"))
}

// testActionsDuringIngest issues server ops, resolves conflicts and puts
// orders through one handle while another applies gateways' batches: no
// call fails or deadlocks, and the ledger ends as the fold of every op,
// the gateways' and the server's.
func testActionsDuringIngest(t *testing.T, s store.Store, a store.Actions, c config) {
	r := rand.New(rand.NewPCG(9, 3))
	h, ok := c.replica(t, s).(store.Actions)
	require.True(t, ok, "the replica implements store.Actions too")
	perGW := randomOps(r, "w", []string{"a", "b"}, 40)
	batches := deliveries(r, "w", perGW)
	var server []protocol.Op
	for range 20 {
		op := protocol.Op{HLC: protocol.MakeHLC(int64(r.IntN(30)), 2), Kind: protocol.OpReceive,
			Location: []string{"L1", "L2"}[r.IntN(2)], SKU: []string{"x", "y"}[r.IntN(2)], Qty: int64(1 + r.IntN(4))}
		if r.IntN(2) == 0 {
			op.Kind = protocol.OpPick
		}
		server = append(server, op)
	}
	ctx := context.Background()
	var mu sync.Mutex
	var errs []error
	var issued []ledger.Sourced
	record := func(err error, ops ...protocol.Op) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
		for _, op := range ops {
			issued = append(issued, ledger.Sourced{WH: "w", GW: protocol.ServerOrigin, Op: op})
		}
	}
	retry := func(f func() error) error {
		for attempt := 0; ; attempt++ {
			if err := f(); !errors.Is(err, store.ErrConflict) || attempt >= 1000 {
				return err
			}
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, b := range batches {
			_, err := apply(s, b)
			record(err)
		}
	})
	wg.Go(func() {
		for _, op := range server {
			out, _, err := issueOp(h, "w", op)
			if err != nil {
				record(err)
				continue
			}
			record(nil, out)
		}
	})
	wg.Go(func() {
		for i := range 10 {
			o := store.Order{Warehouse: "w", ID: fmt.Sprint("O", i%3), Lines: []store.OrderLine{{Line: 1, SKU: "x", Qty: int64(i)}}}
			record(retry(func() error { _, err := h.PutOrder(ctx, o); return err }))
			cs, err := h.Conflicts(ctx, conflicts.Query{Warehouse: "w", Kind: conflicts.KindNegativeStock, Status: conflicts.StatusOpen})
			record(err)
			for _, c := range cs {
				var out store.ResolveResult
				err := retry(func() error {
					var err error
					out, err = h.ResolveConflict(ctx, c.ID, store.Resolution{Action: conflicts.ResolutionAdjust, Qty: 1, By: "lead", HLC: protocol.MakeHLC(15, 3)})
					return err
				})
				if err != nil {
					record(err)
					continue
				}
				record(nil, *out.Op)
			}
		}
	})
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	require.Equal(t, uint64(len(issued)), serverWM(t, s, "w"), "every issued op has its own seq")
	t.Logf("%d server ops, %d of them adjusts resolving conflicts", len(issued), len(issued)-len(server))
	require.Equal(t, ledger.Fold(append(sourced("w", perGW), issued...)), stockOf(t, s, "w"))
}

func testResolveAdjust(t *testing.T, s store.Store, a store.Actions, _ config) {
	ctx := context.Background()
	ks, kt := ledger.Key{WH: "w", Location: "L", SKU: "s"}, ledger.Key{WH: "w", Location: "L", SKU: "t"}
	Apply(t, s, Batch("w", "g", pick(1, 1000, "L", "s", 3), pick(2, 1100, "L", "t", 1)))
	id, idT := conflicts.NegativeStockID(ks), conflicts.NegativeStockID(kt)
	cs, err := a.Conflicts(ctx, conflicts.Query{Warehouse: "w", Kind: conflicts.KindNegativeStock})
	require.NoError(t, err)
	require.Len(t, cs, 2)
	require.Equal(t, []string{id, idT}, []string{cs[0].ID, cs[1].ID}, "sorted by ID")
	require.Equal(t, conflicts.StatusOpen, cs[0].Status)

	// By default, adjust brings the key back to 0.
	out, err := a.ResolveConflict(ctx, id, store.Resolution{Action: conflicts.ResolutionAdjust, By: "lead", HLC: protocol.MakeHLC(5000, 0)})
	require.NoError(t, err)
	require.NotNil(t, out.Op)
	require.Nil(t, out.Task)
	require.Equal(t, protocol.Op{Seq: 1, GW: protocol.ServerOrigin, HLC: protocol.MakeHLC(5000, 0), Kind: protocol.OpAdjust, Location: "L", SKU: "s", Qty: 3,
		Reason: "CONFLICT-RESOLUTION", Operator: "lead", Refs: &protocol.Refs{Conflict: id}}, *out.Op)
	require.Equal(t, 1, out.Result.Applied)
	require.Equal(t, conflicts.StatusResolved, out.Conflict.Status)
	require.Equal(t, conflicts.ResolutionAdjust, out.Conflict.Resolution)
	require.Equal(t, "lead", out.Conflict.ResolvedBy)
	require.False(t, out.Conflict.Holds, "the adjust cleared the condition")
	require.Equal(t, map[ledger.Key]int64{ks: 0, kt: -1}, stockOf(t, s, "w"))
	require.Equal(t, out.Conflict, conflictByID(t, a, "w", id))
	d := readDown(t, s, "w")
	require.Equal(t, []protocol.Op{*out.Op}, d.ops)
	require.Equal(t, int64(0), d.stock[ks])

	// Resolving twice fails and writes nothing, the adjust op included.
	_, err = a.ResolveConflict(ctx, id, store.Resolution{Action: conflicts.ResolutionAccept, By: "other"})
	require.ErrorIs(t, err, conflicts.ErrResolved)
	_, err = a.ResolveConflict(ctx, id, store.Resolution{Action: conflicts.ResolutionAdjust, Qty: 1, By: "other", HLC: protocol.MakeHLC(6000, 0)})
	require.ErrorIs(t, err, conflicts.ErrResolved)
	require.Equal(t, map[ledger.Key]int64{ks: 0, kt: -1}, stockOf(t, s, "w"))
	require.Equal(t, uint64(1), serverWM(t, s, "w"))
	require.Equal(t, "lead", conflictByID(t, a, "w", id).ResolvedBy)

	_, err = a.ResolveConflict(ctx, idT, store.Resolution{Action: "shrug", By: "lead"})
	require.ErrorIs(t, err, conflicts.ErrResolution)
	require.Equal(t, conflicts.StatusOpen, conflictByID(t, a, "w", idT).Status)

	// An explicit quantity is the signed adjustment.
	out, err = a.ResolveConflict(ctx, idT, store.Resolution{Action: conflicts.ResolutionAdjust, Qty: 4, By: "lead", HLC: protocol.MakeHLC(7000, 0)})
	require.NoError(t, err)
	require.Equal(t, uint64(2), out.Op.Seq)
	require.Equal(t, int64(4), out.Op.Qty)
	require.Equal(t, map[ledger.Key]int64{ks: 0, kt: 3}, stockOf(t, s, "w"))

	_, err = a.ResolveConflict(ctx, "neg:w/nowhere/x", store.Resolution{Action: conflicts.ResolutionAccept})
	require.ErrorIs(t, err, conflicts.ErrNotFound)
}

func testResolveRecount(t *testing.T, s store.Store, a store.Actions, _ config) {
	ctx := context.Background()
	k := ledger.Key{WH: "w", Location: "L-1", SKU: "s"}
	Apply(t, s, Batch("w", "g", pick(1, 1000, "L-1", "s", 2)))
	id := conflicts.NegativeStockID(k)
	out, err := a.ResolveConflict(ctx, id, store.Resolution{Action: conflicts.ResolutionRecount, By: "lead", HLC: protocol.MakeHLC(2000, 0)})
	require.NoError(t, err)
	require.Nil(t, out.Op)
	require.NotNil(t, out.Task)
	require.Regexp(t, "^recount-", out.Task.ID)
	want := protocol.Task{ID: out.Task.ID, Kind: "count", Location: "L-1", Conflict: id, Reason: "recount: negative-stock", Status: "open"}
	require.Equal(t, want, *out.Task)
	require.Equal(t, conflicts.StatusAcknowledged, out.Conflict.Status, "a recount asked for is not done")
	require.Equal(t, conflicts.ResolutionRecount, out.Conflict.Resolution)
	require.Equal(t, out.Task.ID, out.Conflict.RecountTask)
	require.Equal(t, map[ledger.Key]int64{k: -2}, stockOf(t, s, "w"), "a recount changes no stock")

	tasks, err := a.Tasks(ctx, "w")
	require.NoError(t, err)
	require.Equal(t, []protocol.Task{want}, tasks)
	tasks, err = a.Tasks(ctx, "other")
	require.NoError(t, err)
	require.Empty(t, tasks)
	require.Equal(t, []protocol.Task{want}, readDown(t, s, "w").tasks, "the task goes to every gateway")

	// A conflict that names no location cannot be recounted.
	Apply(t, s, Batch("w", "g", Receive(2, 3000, "L-1", "", 1)))
	qid := conflicts.Quarantined("w", "g", 2, "").ID
	_, err = a.ResolveConflict(ctx, qid, store.Resolution{Action: conflicts.ResolutionRecount, By: "lead"})
	require.ErrorContains(t, err, "no location")
	require.Equal(t, conflicts.StatusOpen, conflictByID(t, a, "w", qid).Status)
	tasks, err = a.Tasks(ctx, "w")
	require.NoError(t, err)
	require.Len(t, tasks, 1)

	// A count of the bin stamped before the recount was asked for (a
	// gateway that was offline) is not the recount: the task stays open,
	// the conflict acknowledged. It finds 0 where the records said −2: no
	// variance (a shelf cannot hold −2), and the negative stock clears.
	locCount := func(seq uint64, ms int64, qty int64) protocol.Op {
		return protocol.Op{Seq: seq, HLC: protocol.MakeHLC(ms, 0), Kind: protocol.OpCount, Scope: protocol.ScopeLocation,
			Location: "L-1", Lines: []protocol.CountLine{{SKU: "s", Qty: qty}}}
	}
	Apply(t, s, Batch("w", "h", locCount(1, 1500, 0)))
	require.Equal(t, map[ledger.Key]int64{k: 0}, stockOf(t, s, "w"))
	c := conflictByID(t, a, "w", id)
	require.Equal(t, conflicts.StatusAcknowledged, c.Status)
	require.False(t, c.Holds)
	tasks, err = a.Tasks(ctx, "w")
	require.NoError(t, err)
	require.Equal(t, "open", tasks[0].Status)
	vars, err := a.Conflicts(ctx, conflicts.Query{Warehouse: "w", Kind: conflicts.KindVariance})
	require.NoError(t, err)
	require.Empty(t, vars, "a count that confirms what a shelf can hold of the records raises nothing")

	// The recount, a free count of the bin (no task scanned): it closes the
	// task and resolves the conflict; 0 confirms 0.
	Apply(t, s, Batch("w", "h", locCount(2, 4000, 0)))
	c = conflictByID(t, a, "w", id)
	require.Equal(t, conflicts.StatusResolved, c.Status, "the recount is scanned")
	require.Equal(t, "lead", c.ResolvedBy)
	tasks, err = a.Tasks(ctx, "w")
	require.NoError(t, err)
	want.Status = "done"
	require.Equal(t, []protocol.Task{want}, tasks)
	require.Equal(t, []protocol.Task{want}, readDown(t, s, "w").tasks, "the closed task goes downstream")
	vars, err = a.Conflicts(ctx, conflicts.Query{Warehouse: "w", Kind: conflicts.KindVariance})
	require.NoError(t, err)
	require.Empty(t, vars)
}

func testCountClosesCountTasks(t *testing.T, s store.Store, a store.Actions, _ config) {
	ctx := context.Background()
	put := func(ts ...protocol.Task) {
		require.NoError(t, s.(store.Records).Update(func(tx store.Tx) error {
			for _, task := range ts {
				if err := tx.PutTask("w", "", task); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	put(protocol.Task{ID: "c-bin", Kind: "count", Location: "B", Status: "open"},
		protocol.Task{ID: "c-bin-s", Kind: "count", Location: "B", SKU: "s", Status: "open"},
		protocol.Task{ID: "c-bin-t", Kind: "count", Location: "B", SKU: "t", Status: "open"},
		protocol.Task{ID: "c-other", Kind: "count", Location: "C", Status: "open"},
		protocol.Task{ID: "p-bin", Kind: "pick", Location: "B", SKU: "s", Qty: 1, Status: "open"})
	status := func() map[string]string {
		ts, err := a.Tasks(ctx, "w")
		require.NoError(t, err)
		out := map[string]string{}
		for _, task := range ts {
			out[task.ID] = task.Status
		}
		return out
	}
	// A count of one key closes the tasks naming its sku, not the bin's.
	Apply(t, s, Batch("w", "g", Receive(1, 1000, "B", "s", 3),
		protocol.Op{Seq: 2, HLC: protocol.MakeHLC(2000, 0), Kind: protocol.OpCount, Location: "B", SKU: "s", Qty: 3}))
	require.Equal(t, map[string]string{"c-bin": "open", "c-bin-s": "done", "c-bin-t": "open", "c-other": "open", "p-bin": "open"}, status())
	// A free count of the whole bin closes every count task of the bin.
	Apply(t, s, Batch("w", "g", protocol.Op{Seq: 3, HLC: protocol.MakeHLC(3000, 0), Kind: protocol.OpCount, Scope: protocol.ScopeLocation,
		Location: "B", Lines: []protocol.CountLine{{SKU: "s", Qty: 3}}}))
	require.Equal(t, map[string]string{"c-bin": "done", "c-bin-s": "done", "c-bin-t": "done", "c-other": "open", "p-bin": "open"}, status())
	cs, err := a.Conflicts(ctx, conflicts.Query{Warehouse: "w"})
	require.NoError(t, err)
	require.Empty(t, cs, "counts that confirm the records raise nothing")
}

func testHistory(t *testing.T, s store.Store, a store.Actions, _ config) {
	ctx := context.Background()
	k := ledger.Key{WH: "w", Location: "L", SKU: "s"}
	// h's pick arrives first; merge order puts it between g's ops.
	Apply(t, s, Batch("w", "h", pick(1, 2500, "L", "s", 1)))
	recv := Receive(1, 1000, "L", "s", 10)
	recv.Operator, recv.Device, recv.Raw = "ann", "scan-1", []string{"]C1S"}
	count := protocol.Op{Seq: 3, HLC: protocol.MakeHLC(3000, 0), Kind: protocol.OpCount, Location: "L", SKU: "s", Qty: 5}
	Apply(t, s, Batch("w", "g", recv, pick(2, 2000, "L", "s", 3), count, Receive(4, 4000, "L", "s", 2)))
	// A location count that does not list the key observes 0.
	Apply(t, s, Batch("w", "h", protocol.Op{Seq: 2, HLC: protocol.MakeHLC(5000, 0), Kind: protocol.OpCount, Scope: protocol.ScopeLocation,
		Location: "L", Lines: []protocol.CountLine{{SKU: "x", Qty: 2}}}))
	issue(t, a, "w", protocol.Op{HLC: protocol.MakeHLC(6000, 0), Kind: protocol.OpAdjust, Location: "L", SKU: "s", Qty: 1, Reason: "FOUND"})
	// Other keys' ops are not part of it.
	lot := Receive(6, 1200, "L", "s", 7)
	lot.Lot = "A"
	Apply(t, s, Batch("w", "g", Receive(5, 1100, "L", "t", 7), lot))

	hs, err := a.History(ctx, k)
	require.NoError(t, err)
	type row struct {
		GW     string
		Seq    uint64
		Kind   string
		Qty    int64
		Count  bool
		OnHand int64
	}
	var got []row
	for _, h := range hs {
		got = append(got, row{h.Gateway, h.Seq, h.Kind, h.Qty, h.Count, h.OnHand})
	}
	require.Equal(t, []row{
		{"g", 1, "receive", 10, false, 10},
		{"g", 2, "pick", -3, false, 7},
		{"h", 1, "pick", -1, false, 6},
		{"g", 3, "count", 5, true, 5},
		{"g", 4, "receive", 2, false, 7},
		{"h", 2, "count", 0, true, 0},
		{protocol.ServerOrigin, 1, "adjust", 1, false, 1},
	}, got)
	require.Equal(t, protocol.MakeHLC(1000, 0), hs[0].HLC)
	require.Equal(t, "1970-01-01T00:00:01.000Z", hs[0].At)
	require.Equal(t, "ann", hs[0].Operator)
	require.Equal(t, "scan-1", hs[0].Device)
	require.Equal(t, []string{"]C1S"}, hs[0].Raw)
	require.Equal(t, "FOUND", hs[6].Reason)
	require.Equal(t, stockOf(t, s, "w")[k], hs[len(hs)-1].OnHand, "the history ends at the on-hand")

	hs, err = a.History(ctx, ledger.Key{WH: "w", Location: "L", SKU: "s", Lot: "A"})
	require.NoError(t, err)
	require.Len(t, hs, 2, "the lot's receive and the location count")
	hs, err = a.History(ctx, ledger.Key{WH: "w", Location: "nowhere", SKU: "s"})
	require.NoError(t, err)
	require.Empty(t, hs)
}

func testOrdersOverPick(t *testing.T, s store.Store, a store.Actions, _ config) {
	ctx := context.Background()
	Apply(t, s, Batch("w", "g", Receive(1, 1000, "L", "s", 20), Receive(2, 1000, "L", "t", 20)))
	// A pick against an order the server does not know yet raises nothing.
	p := pick(3, 2000, "L", "s", 3)
	p.Refs = &protocol.Refs{Order: "O1", OrderLine: 1}
	res := Apply(t, s, Batch("w", "g", p))
	require.Empty(t, res.Conflicts)

	// The order comes: its lines' picks are checked again.
	o := store.Order{Warehouse: "w", ID: "O1", Channel: "web", Status: "open",
		Lines: []store.OrderLine{{Line: 1, SKU: "s", Qty: 2}, {Line: 2, SKU: "t", Qty: 5}}}
	cs, err := a.PutOrder(ctx, o)
	require.NoError(t, err)
	l1 := conflicts.OverPickID(conflicts.OrderLineKey{WH: "w", Order: "O1", Line: 1})
	l2 := conflicts.OverPickID(conflicts.OrderLineKey{WH: "w", Order: "O1", Line: 2})
	require.Len(t, cs, 1)
	require.Equal(t, l1, cs[0].ID)
	require.Equal(t, conflicts.KindOverPick, cs[0].Kind)
	require.Equal(t, conflicts.StatusOpen, cs[0].Status)
	require.Equal(t, int64(2), cs[0].Expected)
	require.Equal(t, int64(3), cs[0].Observed)
	require.Equal(t, "O1", cs[0].Order)
	require.Equal(t, uint32(1), cs[0].OrderLine)
	got, picked, err := a.GetOrder(ctx, "w", "O1")
	require.NoError(t, err)
	require.Equal(t, o, got)
	require.Equal(t, map[uint32]int64{1: 3, 2: 0}, picked)

	// Picks after the order are checked as they merge.
	p = pick(4, 3000, "L", "t", 6)
	p.Refs = &protocol.Refs{Order: "O1", OrderLine: 2}
	res = Apply(t, s, Batch("w", "g", p))
	var ids []string
	for _, c := range res.Conflicts {
		ids = append(ids, c.ID)
	}
	require.Equal(t, []string{l2}, ids)
	require.Equal(t, int64(6), res.Conflicts[0].Observed)

	// A larger line quantity clears the line's over-pick.
	o.Lines[0].Qty = 10
	cs, err = a.PutOrder(ctx, o)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.Equal(t, l1, cs[0].ID)
	require.Equal(t, conflicts.StatusCleared, cs[0].Status)
	got, picked, err = a.GetOrder(ctx, "w", "O1")
	require.NoError(t, err)
	require.Equal(t, o, got)
	require.Equal(t, map[uint32]int64{1: 3, 2: 6}, picked)
	all, err := a.Conflicts(ctx, conflicts.Query{Warehouse: "w", Kind: conflicts.KindOverPick})
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Equal(t, conflicts.StatusCleared, all[0].Status)
	require.Equal(t, conflicts.StatusOpen, all[1].Status)

	_, _, err = a.GetOrder(ctx, "w", "O2")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, _, err = a.GetOrder(ctx, "other", "O1")
	require.ErrorIs(t, err, store.ErrNotFound)
}

// opChecker is a backend whose master-data check can be changed (the
// Badger store's SetOpCheck), so that a quarantined op can become valid.
type opChecker interface {
	SetOpCheck(func(tx store.Tx, wh string, op *protocol.Op) error)
}

func testQuarantineAction(t *testing.T, s store.Store, a store.Actions, _ config) {
	ctx := context.Background()
	k := ledger.Key{WH: "w", Location: "L", SKU: "s"}
	Apply(t, s, Batch("w", "g", Receive(1, 1000, "L", "s", 1), Receive(2, 2000, "L", "", 1), Receive(3, 3000, "L", "", 2)))
	qid := conflicts.Quarantined("w", "g", 2, "").ID
	status := func(seq uint64) (string, string) {
		t.Helper()
		qs, err := s.Quarantined(ctx, "w")
		require.NoError(t, err)
		for _, q := range qs {
			if q.Gateway == "g" && q.Seq == seq {
				return q.Status, q.By
			}
		}
		require.Failf(t, "not quarantined", "seq %d", seq)
		return "", ""
	}

	// An op that is still invalid stays aside.
	_, err := a.QuarantineAction(ctx, "w", "g", 2, "reapply", "lead")
	require.ErrorContains(t, err, "still invalid")
	st, _ := status(2)
	require.Empty(t, st)
	_, err = a.QuarantineAction(ctx, "w", "g", 2, "shred", "lead")
	require.ErrorContains(t, err, "want reapply or reject")
	st, _ = status(2)
	require.Empty(t, st)
	require.Equal(t, conflicts.StatusOpen, conflictByID(t, a, "w", qid).Status)

	res, err := a.QuarantineAction(ctx, "w", "g", 2, "reject", "lead")
	require.NoError(t, err)
	require.Zero(t, res.Applied)
	st, by := status(2)
	require.Equal(t, "rejected", st)
	require.Equal(t, "lead", by)
	st, _ = status(3)
	require.Empty(t, st, "only that op")
	c := conflictByID(t, a, "w", qid)
	require.Equal(t, conflicts.StatusResolved, c.Status)
	require.Equal(t, conflicts.ResolutionAccept, c.Resolution)
	require.Equal(t, "lead", c.ResolvedBy)
	require.Equal(t, map[ledger.Key]int64{k: 1}, stockOf(t, s, "w"))

	_, err = a.QuarantineAction(ctx, "w", "g", 2, "reject", "lead")
	require.ErrorContains(t, err, "already rejected")
	_, err = a.QuarantineAction(ctx, "w", "g", 9, "reject", "lead")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = a.QuarantineAction(ctx, "other", "g", 2, "reject", "lead")
	require.ErrorIs(t, err, store.ErrNotFound)

	oc, ok := s.(opChecker)
	if !ok {
		t.Log("no op check to change: re-applying a fixed op not checked here")
		return
	}
	// An op the master data refused applies once the data is fixed.
	oc.SetOpCheck(func(_ store.Tx, _ string, op *protocol.Op) error {
		if op.SKU == "NEW" {
			return errors.New("sku NEW is not in the catalog")
		}
		return nil
	})
	res = Apply(t, s, Batch("w", "g", Receive(4, 4000, "L", "NEW", 5)))
	require.Equal(t, 1, res.Quarantined)
	_, err = a.QuarantineAction(ctx, "w", "g", 4, "reapply", "lead")
	require.ErrorContains(t, err, "still invalid")
	oc.SetOpCheck(nil)
	res, err = a.QuarantineAction(ctx, "w", "g", 4, "reapply", "lead")
	require.NoError(t, err)
	require.Equal(t, 1, res.Applied)
	require.Len(t, res.Changes, 1)
	kn := ledger.Key{WH: "w", Location: "L", SKU: "NEW"}
	require.Equal(t, map[ledger.Key]int64{k: 1, kn: 5}, stockOf(t, s, "w"))
	require.Equal(t, int64(5), readDown(t, s, "w").stock[kn])
	st, by = status(4)
	require.Equal(t, "reapplied", st)
	require.Equal(t, "lead", by)
	require.Equal(t, conflicts.StatusResolved, conflictByID(t, a, "w", conflicts.Quarantined("w", "g", 4, "").ID).Status)
	_, err = a.QuarantineAction(ctx, "w", "g", 4, "reapply", "lead")
	require.ErrorContains(t, err, "already reapplied")
}

// testOwnerStatus: keys that differ only in owner or status are distinct
// stock rows, read back with both fields, filtered by owner, sent
// downstream with both, and a status op moves units between two of them.
func testOwnerStatus(t *testing.T, open func(*testing.T) store.Store, _ config) {
	s := open(t)
	ctx := context.Background()
	rcv := func(seq uint64, owner string, st protocol.StockStatus, qty int64) protocol.Op {
		return protocol.Op{Seq: seq, HLC: protocol.MakeHLC(int64(seq), 0), Kind: protocol.OpReceive, Location: "L", SKU: "s", Lot: "A", Qty: qty, Owner: owner, Status: st}
	}
	release := protocol.Op{Seq: 4, HLC: protocol.MakeHLC(4, 0), Kind: protocol.OpStatus, Location: "L", SKU: "s", Lot: "A", Qty: 2,
		Owner: "acme", Status: protocol.StatusHold, ToStatus: protocol.StatusAvailable, Reason: "QA-OK"}
	res := Apply(t, s, Batch("w", "g", rcv(1, "", protocol.StatusAvailable, 1), rcv(2, "acme", protocol.StatusAvailable, 2), rcv(3, "acme", protocol.StatusHold, 5), release))
	require.Equal(t, 4, res.Applied)
	k := ledger.Key{WH: "w", Location: "L", SKU: "s", Lot: "A"}
	ka := k
	ka.Owner = "acme"
	kh := ka
	kh.Status = protocol.StatusHold
	want := map[ledger.Key]int64{k: 1, ka: 4, kh: 3}
	require.Equal(t, want, stockOf(t, s, "w"))
	rows, err := s.Stock(ctx, store.StockQuery{Warehouse: "w", Owner: "acme"})
	require.NoError(t, err)
	require.Len(t, rows, 2)
	for _, r := range rows {
		require.Equal(t, "acme", r.Owner)
	}
	require.Equal(t, want, readDown(t, s, "w").stock)
	if a, ok := s.(store.Actions); ok {
		hs, err := a.History(ctx, kh)
		require.NoError(t, err)
		require.Len(t, hs, 2)
		require.Equal(t, "status", hs[1].Kind)
		require.Equal(t, "QA-OK", hs[1].Reason)
		require.Equal(t, int64(3), hs[1].OnHand)
	}
}
