package conflicts_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/conflicts/conflictstest"
)

const wh = conflictstest.WH

// mk builds an op of gateway gw at wall second sec, at location A1.
func mk(gw string, seq uint64, sec int64, kind protocol.OpKind, sku string, qty int64) ledger.Sourced {
	return ledger.Sourced{WH: wh, GW: gw, Op: protocol.Op{Seq: seq, HLC: protocol.MakeHLC(sec*1000, 0), Kind: kind, Location: "A1", SKU: sku, Qty: qty}}
}

func withRefs(s ledger.Sourced, order string, line uint32) ledger.Sourced {
	s.Op.Refs = &protocol.Refs{Order: order, OrderLine: line}
	return s
}

func locCount(gw string, seq uint64, sec int64, lines ...protocol.CountLine) ledger.Sourced {
	s := mk(gw, seq, sec, protocol.OpCount, "", 0)
	s.Op.Scope, s.Op.Lines = protocol.ScopeLocation, lines
	return s
}

func ref(gw string, seq uint64, sec int64) conflicts.OpRef {
	return conflicts.OpRef{WH: wh, GW: gw, Seq: seq, HLC: protocol.MakeHLC(sec*1000, 0)}
}

func key(sku string) ledger.Key { return ledger.Key{WH: wh, Location: "A1", SKU: sku} }

func countOrder(gw string, seq uint64, sec int64) ledger.Order {
	return ref(gw, seq, sec).Order()
}

// permutations calls f with every order of ops.
func permutations(ops []ledger.Sourced, f func([]ledger.Sourced)) {
	var rec func(int)
	rec = func(i int) {
		if i == len(ops) {
			f(slices.Clone(ops))
			return
		}
		for j := i; j < len(ops); j++ {
			ops[i], ops[j] = ops[j], ops[i]
			rec(i + 1)
			ops[i], ops[j] = ops[j], ops[i]
		}
	}
	rec(0)
}

func sortByOrder(ops []ledger.Sourced) {
	slices.SortFunc(ops, func(a, b ledger.Sourced) int {
		return ledger.OrderOf(a.GW, &a.Op).Compare(ledger.OrderOf(b.GW, &b.Op))
	})
}

func TestScenarios(t *testing.T) {
	type want struct {
		id                 string
		kind               conflicts.Kind
		ops                []conflicts.OpRef
		expected, observed int64
		action             string
	}
	tests := []struct {
		name string
		ops  []ledger.Sourced
		want []want
	}{
		{"two offline gateways pick the last unit: one negative-stock",
			[]ledger.Sourced{mk("gw-a", 1, 1, protocol.OpReceive, "s1", 1), mk("gw-a", 2, 10, protocol.OpPick, "s1", 1), mk("gw-b", 1, 10, protocol.OpPick, "s1", 1)},
			[]want{{conflicts.NegativeStockID(key("s1")), conflicts.KindNegativeStock, []conflicts.OpRef{ref("gw-b", 1, 10)}, 0, -1, "count task for location A1"}}},
		{"count and pick 2s apart from different gateways: count-race",
			[]ledger.Sourced{mk("gw-c", 1, 1, protocol.OpReceive, "s1", 5), mk("gw-a", 1, 10, protocol.OpCount, "s1", 5), mk("gw-b", 1, 12, protocol.OpPick, "s1", 1)},
			[]want{{conflicts.CountRaceID(wh, countOrder("gw-a", 1, 10)), conflicts.KindCountRace, []conflicts.OpRef{ref("gw-a", 1, 10), ref("gw-b", 1, 12)}, 0, 0, "recount"}}},
		{"count and pick 2s apart from the same gateway: no race",
			[]ledger.Sourced{mk("gw-c", 1, 1, protocol.OpReceive, "s1", 5), mk("gw-a", 1, 10, protocol.OpCount, "s1", 5), mk("gw-a", 2, 12, protocol.OpPick, "s1", 1)},
			nil},
		{"pick 6s after the count: no race",
			[]ledger.Sourced{mk("gw-c", 1, 1, protocol.OpReceive, "s1", 5), mk("gw-a", 1, 10, protocol.OpCount, "s1", 5), mk("gw-b", 1, 16, protocol.OpPick, "s1", 1)},
			nil},
		{"receive exactly 5s before a location count races, on a key the count does not list",
			[]ledger.Sourced{mk("gw-b", 1, 5, protocol.OpReceive, "s2", 2), locCount("gw-a", 1, 10), mk("gw-b", 2, 11, protocol.OpReceive, "s1", 1)},
			[]want{
				{conflicts.CountRaceID(wh, countOrder("gw-a", 1, 10)), conflicts.KindCountRace, []conflicts.OpRef{ref("gw-b", 1, 5), ref("gw-a", 1, 10), ref("gw-b", 2, 11)}, 0, 0, "recount"},
				{conflicts.VarianceID(countOrder("gw-a", 1, 10), key("s2")), conflicts.KindVariance, []conflicts.OpRef{ref("gw-a", 1, 10)}, 2, 0, "report ghost stock"},
			}},
		{"count found 3 where records said 5: variance, ghost stock",
			[]ledger.Sourced{mk("gw-a", 1, 1, protocol.OpReceive, "s1", 5), mk("gw-b", 1, 20, protocol.OpCount, "s1", 3)},
			[]want{{conflicts.VarianceID(countOrder("gw-b", 1, 20), key("s1")), conflicts.KindVariance, []conflicts.OpRef{ref("gw-b", 1, 20)}, 5, 3, "report ghost stock"}}},
		{"count found 7 where records said 5: variance, found stock",
			[]ledger.Sourced{mk("gw-a", 1, 1, protocol.OpReceive, "s1", 5), mk("gw-b", 1, 20, protocol.OpCount, "s1", 7)},
			[]want{{conflicts.VarianceID(countOrder("gw-b", 1, 20), key("s1")), conflicts.KindVariance, []conflicts.OpRef{ref("gw-b", 1, 20)}, 5, 7, "report found stock"}}},
		{"a late pick ordered before the count explains it: no variance",
			[]ledger.Sourced{mk("gw-a", 1, 1, protocol.OpReceive, "s1", 5), mk("gw-c", 1, 5, protocol.OpPick, "s1", 2), mk("gw-b", 1, 20, protocol.OpCount, "s1", 3)},
			nil},
		{"a location count observes an unlisted key as 0",
			[]ledger.Sourced{mk("gw-a", 1, 1, protocol.OpReceive, "s1", 5), mk("gw-a", 2, 1, protocol.OpReceive, "s2", 2), locCount("gw-b", 1, 20, protocol.CountLine{SKU: "s1", Qty: 5})},
			[]want{{conflicts.VarianceID(countOrder("gw-b", 1, 20), key("s2")), conflicts.KindVariance, []conflicts.OpRef{ref("gw-b", 1, 20)}, 2, 0, "report ghost stock"}}},
		{"the records of a count start at the previous count",
			[]ledger.Sourced{mk("gw-a", 1, 10, protocol.OpCount, "s1", 4), mk("gw-b", 1, 20, protocol.OpPick, "s1", 1), mk("gw-c", 1, 30, protocol.OpCount, "s1", 3)},
			[]want{{conflicts.VarianceID(countOrder("gw-a", 1, 10), key("s1")), conflicts.KindVariance, []conflicts.OpRef{ref("gw-a", 1, 10)}, 0, 4, "report found stock"}}},
		{"two gateways pick the only unit of an order line: over-pick",
			[]ledger.Sourced{mk("gw-c", 1, 1, protocol.OpReceive, "s1", 5), withRefs(mk("gw-a", 1, 10, protocol.OpPick, "s1", 1), "o2", 1), withRefs(mk("gw-b", 1, 30, protocol.OpPick, "s1", 1), "o2", 1)},
			[]want{{"overpick:wh1/o2/1", conflicts.KindOverPick, []conflicts.OpRef{ref("gw-a", 1, 10), ref("gw-b", 1, 30)}, 1, 2, "return-to-stock task or accept over-ship"}}},
		{"picks against an order line of unknown quantity: nothing",
			[]ledger.Sourced{mk("gw-c", 1, 1, protocol.OpReceive, "s1", 5), withRefs(mk("gw-a", 1, 10, protocol.OpPick, "s1", 3), "o2", 2), withRefs(mk("gw-b", 1, 30, protocol.OpPick, "s1", 1), "o2", 2)},
			nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			permutations(tc.ops, func(order []ledger.Sourced) {
				m := conflicts.NewMemStore()
				m.Lines = conflictstest.Lines()
				conflictstest.Feed(t, &conflicts.Detector{}, m, m, order)
				got := conflictstest.Open(t, m)
				require.Equal(t, conflictstest.Want(tc.ops), got, "Compute")
				require.Len(t, got, len(tc.want))
				for _, w := range tc.want {
					c, ok := got[w.id]
					require.True(t, ok, "missing %s in %v", w.id, got)
					require.Equal(t, w.kind, c.Kind)
					require.Equal(t, w.ops, c.Ops)
					require.Equal(t, w.expected, c.Expected)
					require.Equal(t, w.observed, c.Observed)
					require.Equal(t, w.action, c.SuggestedAction)
					require.NotEmpty(t, c.Detail)
				}
			})
		})
	}
}

func TestReceiptFlagsRaiseReceiptDiscrepancy(t *testing.T) {
	s := mk("gw-a", 1, 1, protocol.OpReceive, "s1", 5)
	s.Op.Flags = protocol.FlagLotMismatch | protocol.FlagExpired
	s.Op.Refs = &protocol.Refs{PO: "PO-7", POLine: 2}
	m := conflicts.NewMemStore()
	changes, err := ledger.Apply(m, wh, "gw-a", &s.Op)
	require.NoError(t, err)
	got, err := (&conflicts.Detector{}).Observe(m, m, wh, "gw-a", &s.Op, changes)
	require.NoError(t, err)
	require.Len(t, got, 1)
	c := got[0]
	require.Equal(t, "rcpt:wh1/gw-a/1", c.ID)
	require.Equal(t, conflicts.KindReceiptDiscrepancy, c.Kind)
	require.Equal(t, conflicts.StatusOpen, c.Status)
	require.Equal(t, "review with supplier", c.SuggestedAction)
	require.Contains(t, c.Detail, "lot mismatch, expired")
	require.Contains(t, c.Detail, "PO PO-7 line 2")
	require.Equal(t, conflictstest.Want([]ledger.Sourced{s}), conflictstest.Open(t, m))
}

// observe merges ops one by one and returns what the last one changed.
func observe(t *testing.T, d *conflicts.Detector, m *conflicts.MemStore, ops ...ledger.Sourced) []conflicts.Conflict {
	t.Helper()
	var got []conflicts.Conflict
	for i := range ops {
		changes, err := ledger.Apply(m, ops[i].WH, ops[i].GW, &ops[i].Op)
		require.NoError(t, err)
		got, err = d.Observe(m, m, ops[i].WH, ops[i].GW, &ops[i].Op, changes)
		require.NoError(t, err)
	}
	return got
}

func TestNegativeStockClearsAndReopens(t *testing.T) {
	d, m := &conflicts.Detector{}, conflicts.NewMemStore()
	id := conflicts.NegativeStockID(key("s1"))
	got := observe(t, d, m, mk("gw-a", 1, 10, protocol.OpPick, "s1", 2))
	require.Len(t, got, 1)
	require.Equal(t, conflicts.StatusOpen, got[0].Status)
	require.Equal(t, int64(-2), got[0].Observed)

	got = observe(t, d, m, mk("gw-b", 1, 20, protocol.OpCount, "s1", 1))
	require.Len(t, got, 2, "the count also found 1 where the records said -2")
	c := byID(t, got, id)
	require.Equal(t, conflicts.StatusCleared, c.Status, "kept for audit")
	require.Equal(t, []conflicts.OpRef{ref("gw-a", 1, 10)}, c.Ops)

	got = observe(t, d, m, mk("gw-a", 2, 30, protocol.OpPick, "s1", 3))
	c = byID(t, got, id)
	require.Equal(t, conflicts.StatusOpen, c.Status, "reopened")
	require.Equal(t, []conflicts.OpRef{ref("gw-a", 2, 30)}, c.Ops, "the new episode's ops")
	require.Equal(t, int64(-2), c.Observed)
}

func byID(t *testing.T, cs []conflicts.Conflict, id string) conflicts.Conflict {
	t.Helper()
	for _, c := range cs {
		if c.ID == id {
			return c
		}
	}
	require.Failf(t, "missing conflict", "%s not in %v", id, cs)
	return conflicts.Conflict{}
}

func TestWarehouseSkewWindowOverridesTheDetectors(t *testing.T) {
	ops := []ledger.Sourced{mk("gw-c", 1, 1, protocol.OpReceive, "s1", 5), mk("gw-a", 1, 10, protocol.OpCount, "s1", 5), mk("gw-b", 1, 12, protocol.OpPick, "s1", 1)}
	m := conflicts.NewMemStore()
	m.Skew = conflictstest.Skew / 5 // 1s
	conflictstest.Feed(t, &conflicts.Detector{}, m, m, ops)
	require.Empty(t, conflictstest.Open(t, m))
}

// A late op on a key long below zero walks the run back across pages; the
// conflict lists the op that crossed zero and the decrements after it, up
// to a bound.
func TestLongNegativeRunWithALateOp(t *testing.T) {
	ops := []ledger.Sourced{mk("gw-a", 1, 1, protocol.OpReceive, "s1", 10)}
	for i := range 300 {
		ops = append(ops, mk("gw-a", uint64(i+2), int64(i+2), protocol.OpPick, "s1", 1))
	}
	ops = append(ops, mk("gw-b", 1, 5, protocol.OpReceive, "s1", 3), mk("gw-b", 2, 200, protocol.OpPick, "s1", 1))
	m := conflicts.NewMemStore()
	conflictstest.Feed(t, &conflicts.Detector{}, m, m, ops)
	got := conflictstest.Open(t, m)
	require.Equal(t, conflictstest.Want(ops), got)
	c := got[conflicts.NegativeStockID(key("s1"))]
	require.Equal(t, int64(10+3-301), c.Observed)
	require.Len(t, c.Ops, 64)
	require.Equal(t, ref("gw-a", 15, 15), c.Ops[0], "the 14th pick took the 13 units below zero")
}
