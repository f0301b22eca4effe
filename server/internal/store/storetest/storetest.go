// Package storetest is the contract every store.Store backend meets: the
// sequence rule's verdicts (exactly once, duplicates, gaps, overlaps),
// quarantine, the merge rule against ledger.Fold under random batches and
// redeliveries from several gateways (also applied concurrently, as
// replicas do), the compacted downstream log and DownFrom's sparse and
// targeted reads, gateway records, and the epoch. Backends call Run from
// their tests.
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
		{"StockQuery", testStockQuery},
		{"DownstreamCompaction", testDownCompaction},
		{"DownstreamSparseAndTargeted", testDownSparse},
		{"DownstreamStockAndUpWM", testDownStock},
		{"Gateways", testGateways},
		{"Epoch", testEpoch},
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
		got[ledger.Key{WH: r.Warehouse, Location: r.Location, SKU: r.SKU, Lot: r.Lot}] = r.OnHand
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
				Location: []string{"L1", "L2"}[r.IntN(2)], SKU: []string{"x", "y"}[r.IntN(2)], Lot: []string{"", "lot-1"}[r.IntN(2)], Qty: int64(1 + r.IntN(4))}
			switch r.IntN(6) {
			case 0, 1:
				op.Kind = protocol.OpReceive
			case 2:
				op.Kind = protocol.OpPick
			case 3:
				op.Kind, op.To = protocol.OpMove, "L3"
			case 4:
				op.Kind = protocol.OpCount
			case 5:
				op.Kind, op.Scope, op.SKU, op.Lot, op.Qty = protocol.OpCount, protocol.ScopeLocation, "", "", 0
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
	all, err := s.Stock(ctx, store.StockQuery{})
	require.NoError(t, err)
	require.Equal(t, []store.StockRow{
		{Warehouse: "w1", Location: "A", SKU: "s1", OnHand: 2},
		{Warehouse: "w1", Location: "A", SKU: "s1", Lot: "L9", OnHand: 4},
		{Warehouse: "w1", Location: "A", SKU: "s2", OnHand: 3},
		{Warehouse: "w1", Location: "B", SKU: "s2", OnHand: 1},
		{Warehouse: "w2", Location: "A", SKU: "s1", OnHand: 5},
	}, all, "sorted by warehouse, location, sku, lot")
	for _, tc := range []struct {
		q    store.StockQuery
		want int
	}{
		{store.StockQuery{Warehouse: "w1"}, 4},
		{store.StockQuery{Warehouse: "w1", Location: "A"}, 3},
		{store.StockQuery{Warehouse: "w1", Location: "A", SKU: "s1"}, 2},
		{store.StockQuery{Warehouse: "w1", Location: "A", SKU: "s1", Lot: "L9"}, 1},
		{store.StockQuery{SKU: "s1"}, 3},
		{store.StockQuery{Limit: 2}, 2},
		{store.StockQuery{Warehouse: "nope"}, 0},
	} {
		rows, err := s.Stock(ctx, tc.q)
		require.NoError(t, err)
		require.Len(t, rows, tc.want, "%+v", tc.q)
	}
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
