package ledger

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/shelfsync/shelfsync/protocol"
)

// genOps draws a set of ops from a few gateways over a small key space so
// that counts, location counts and deltas collide often. Seqs per gateway
// are 1..n; HLCs are drawn from a narrow range so ties happen.
func genOps(t *rapid.T) []Sourced {
	gws := []string{"gw-a", "gw-b", "gw-c"}
	locs := []string{"A1", "A2"}
	skus := []string{"s1", "s2"}
	lots := []string{"", "L1"}
	owners := []string{"", "o1"}
	statuses := []protocol.StockStatus{protocol.StatusAvailable, protocol.StatusHold, protocol.StatusExpired}
	var out []Sourced
	for _, gw := range gws {
		n := rapid.IntRange(0, 12).Draw(t, "n_"+gw)
		for seq := 1; seq <= n; seq++ {
			op := protocol.Op{
				Seq:      uint64(seq),
				HLC:      protocol.MakeHLC(int64(rapid.IntRange(1, 6).Draw(t, "ms")), uint16(rapid.IntRange(0, 1).Draw(t, "l"))),
				Location: rapid.SampledFrom(locs).Draw(t, "loc"),
				SKU:      rapid.SampledFrom(skus).Draw(t, "sku"),
				Lot:      rapid.SampledFrom(lots).Draw(t, "lot"),
				Qty:      int64(rapid.IntRange(1, 5).Draw(t, "qty")),
				Owner:    rapid.SampledFrom(owners).Draw(t, "owner"),
				Status:   rapid.SampledFrom(statuses).Draw(t, "status"),
			}
			switch rapid.IntRange(0, 8).Draw(t, "kind") {
			case 7, 8: // a status move: hold, release, expire
				op.Kind = protocol.OpStatus
				op.ToStatus = rapid.SampledFrom(statuses).Filter(func(s protocol.StockStatus) bool { return s != op.Status }).Draw(t, "to_status")
			case 0:
				op.Kind = protocol.OpReceive
			case 1:
				op.Kind = protocol.OpPick
			case 2:
				op.Kind = protocol.OpAdjust
				op.Qty = int64(rapid.IntRange(-3, 3).Filter(func(v int) bool { return v != 0 }).Draw(t, "adj"))
			case 3:
				op.Kind = protocol.OpMove
				op.To = rapid.SampledFrom(locs).Draw(t, "to")
			case 4:
				op.Kind = protocol.OpCount
				op.Qty = int64(rapid.IntRange(0, 9).Draw(t, "cnt"))
			case 5, 6:
				op.Kind = protocol.OpCount
				op.Scope = protocol.ScopeLocation
				op.SKU, op.Lot, op.Qty, op.Owner, op.Status = "", "", 0, "", protocol.StatusAvailable
				nl := rapid.IntRange(0, 3).Draw(t, "lines")
				for i := 0; i < nl; i++ {
					op.Lines = append(op.Lines, protocol.CountLine{
						SKU:    rapid.SampledFrom(skus).Draw(t, "lsku"),
						Lot:    rapid.SampledFrom(lots).Draw(t, "llot"),
						Qty:    int64(rapid.IntRange(0, 9).Draw(t, "lqty")),
						Owner:  rapid.SampledFrom(owners).Draw(t, "lowner"),
						Status: rapid.SampledFrom(statuses).Draw(t, "lstatus"),
					})
				}
			}
			out = append(out, Sourced{WH: "wh1", GW: gw, Op: op})
		}
	}
	return out
}

// applyAll feeds ops through Apply, skipping (gw, seq) already applied as
// the server's watermark does.
func applyAll(t require.TestingT, ops []Sourced) map[Key]int64 {
	st := NewMemStore()
	seen := map[string]bool{}
	for i := range ops {
		id := fmt.Sprintf("%s/%d", ops[i].GW, ops[i].Op.Seq)
		if seen[id] {
			continue
		}
		seen[id] = true
		_, err := Apply(st, ops[i].WH, ops[i].GW, &ops[i].Op)
		require.NoError(t, err)
	}
	return st.OnHand()
}

func TestApplyEqualsFoldAnyOrderWithDuplicates(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ops := genOps(t)
		want := Fold(ops)
		// Any permutation, with random duplicates (redeliveries) mixed in.
		perm := rapid.Permutation(ops).Draw(t, "perm")
		ndup := rapid.IntRange(0, len(ops)).Draw(t, "ndup")
		for i := 0; i < ndup && len(ops) > 0; i++ {
			perm = append(perm, ops[rapid.IntRange(0, len(ops)-1).Draw(t, "dup")])
		}
		perm = rapid.Permutation(perm).Draw(t, "perm2")
		require.Equal(t, want, applyAll(t, perm))
		require.Equal(t, want, Fold(perm), "Fold must ignore order and duplicates")
	})
}

func TestMergeRuleExamples(t *testing.T) {
	op := func(gw string, seq uint64, ms int64, kind protocol.OpKind, qty int64) Sourced {
		return Sourced{WH: "w", GW: gw, Op: protocol.Op{Seq: seq, HLC: protocol.MakeHLC(ms, 0), Kind: kind, Location: "L", SKU: "s", Qty: qty}}
	}
	k := Key{WH: "w", Location: "L", SKU: "s"}
	tests := []struct {
		name string
		ops  []Sourced
		want int64
	}{
		{"deltas only", []Sourced{op("a", 1, 1, protocol.OpReceive, 5), op("b", 1, 2, protocol.OpPick, 2)}, 3},
		{"count then later delta", []Sourced{op("a", 1, 1, protocol.OpReceive, 5), op("a", 2, 2, protocol.OpCount, 10), op("b", 1, 3, protocol.OpPick, 1)}, 9},
		{"late delta before count is covered", []Sourced{op("a", 1, 5, protocol.OpCount, 10), op("b", 1, 3, protocol.OpPick, 4)}, 10},
		{"tie on hlc breaks by gateway", []Sourced{op("a", 1, 5, protocol.OpCount, 10), op("b", 1, 5, protocol.OpPick, 4)}, 6},
		{"two gateways pick the last unit", []Sourced{op("a", 1, 1, protocol.OpReceive, 1), op("a", 2, 2, protocol.OpPick, 1), op("b", 1, 2, protocol.OpPick, 1)}, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Fold(tc.ops)[k])
			require.Equal(t, tc.want, applyAll(t, tc.ops)[k])
		})
	}
}

func TestLocationCountZeroesUnlistedKeys(t *testing.T) {
	ops := []Sourced{
		{WH: "w", GW: "a", Op: protocol.Op{Seq: 1, HLC: 1 << 16, Kind: protocol.OpReceive, Location: "L", SKU: "x", Qty: 4}},
		{WH: "w", GW: "a", Op: protocol.Op{Seq: 2, HLC: 1 << 16, Kind: protocol.OpReceive, Location: "L", SKU: "y", Qty: 3}},
		{WH: "w", GW: "b", Op: protocol.Op{Seq: 1, HLC: 2 << 16, Kind: protocol.OpCount, Scope: protocol.ScopeLocation, Location: "L",
			Lines: []protocol.CountLine{{SKU: "x", Qty: 2}}}},
	}
	got := applyAll(t, ops)
	require.Equal(t, int64(2), got[Key{WH: "w", Location: "L", SKU: "x"}])
	require.Equal(t, int64(0), got[Key{WH: "w", Location: "L", SKU: "y"}])
	require.Equal(t, Fold(ops), got)
}

// TestStatusMovesConserveUnits: with no counts, status ops only move units
// between the statuses of one (location, sku, lot, owner), so the sum over
// statuses — on_hand — is the sum of the other deltas, whatever the order
// and redeliveries; and each status op counts exactly once.
func TestStatusMovesConserveUnits(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ops := genOps(t)
		var kept []Sourced
		for _, o := range ops {
			if !o.Op.Kind.IsCount() {
				kept = append(kept, o)
			}
		}
		perm := rapid.Permutation(append(kept, kept...)).Draw(t, "perm")
		got := applyAll(t, perm)
		onHand, want := map[Key]int64{}, map[Key]int64{}
		for k, v := range got {
			onHand[k.Available()] += v
		}
		for _, o := range kept {
			if o.Op.Kind == protocol.OpStatus {
				continue
			}
			for _, e := range Deltas(o.WH, &o.Op) {
				want[e.Key.Available()] += e.Qty
			}
		}
		for k, v := range want {
			require.Equal(t, v, onHand[k], "on_hand of %v", k)
		}
		for k, v := range onHand {
			require.Equal(t, want[k], v, "on_hand of %v", k)
		}
		require.Equal(t, Fold(perm), got)
	})
}

func TestStatusMoveAndLocationCount(t *testing.T) {
	op := func(seq uint64, ms int64, o protocol.Op) Sourced {
		o.Seq, o.HLC, o.Location, o.SKU = seq, protocol.MakeHLC(ms, 0), "L", "s"
		return Sourced{WH: "w", GW: "a", Op: o}
	}
	avail := Key{WH: "w", Location: "L", SKU: "s", Owner: "c1"}
	hold := avail
	hold.Status = protocol.StatusHold
	ops := []Sourced{
		op(1, 1, protocol.Op{Kind: protocol.OpReceive, Qty: 10, Owner: "c1"}),
		op(2, 2, protocol.Op{Kind: protocol.OpStatus, Qty: 4, Owner: "c1", ToStatus: protocol.StatusHold}),
		// A later shelf count of the location sees 5 available units; the
		// 4 on hold are not covered by it.
		op(3, 3, protocol.Op{Kind: protocol.OpCount, Scope: protocol.ScopeLocation, Lines: []protocol.CountLine{{SKU: "s", Owner: "c1", Qty: 5}}}),
		op(4, 4, protocol.Op{Kind: protocol.OpStatus, Qty: 1, Owner: "c1", Status: protocol.StatusHold}),
	}
	for _, got := range []map[Key]int64{Fold(ops), applyAll(t, ops)} {
		require.Equal(t, int64(6), got[avail])
		require.Equal(t, int64(3), got[hold])
	}
}
