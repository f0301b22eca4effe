// Package conflictstest checks a conflicts.Store implementation, and the
// Detector over it, against conflicts.Compute: random op sets from several
// gateways, merged in random orders with redeliveries, must leave exactly the
// conflicts Compute finds open. Backends run CheckStore from their tests.
package conflictstest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
)

// Skew is the race window the checks use; stores under test must return 0
// from SkewWindow so that the Detector's applies.
const Skew = 5 * time.Second

// WH is the warehouse of the generated ops.
const WH = "wh1"

// Lines returns the order-line quantities GenOps's picks refer to; line 2
// of order o2 is deliberately unknown.
func Lines() map[conflicts.OrderLineKey]int64 {
	return map[conflicts.OrderLineKey]int64{
		{WH: WH, Order: "o1", Line: 1}: 2,
		{WH: WH, Order: "o1", Line: 2}: 3,
		{WH: WH, Order: "o2", Line: 1}: 1,
	}
}

// GenOps draws a set of ops from three gateways over a small key space so
// that negative stock, races (HLC wall times on whole seconds, so that
// differences of exactly the window occur), HLC ties, variances and
// over-picks are common. Seqs per gateway are 1..n.
func GenOps(t *rapid.T) []ledger.Sourced {
	locs := []string{"A1", "A2"}
	skus := []string{"s1", "s2"}
	lots := []string{"", "L/1"}
	var out []ledger.Sourced
	for _, gw := range []string{"gw-a", "gw-b", "gw-c"} {
		n := rapid.IntRange(0, 10).Draw(t, "n_"+gw)
		for seq := 1; seq <= n; seq++ {
			op := protocol.Op{
				Seq:      uint64(seq),
				HLC:      protocol.MakeHLC(int64(rapid.IntRange(1, 14).Draw(t, "s"))*1000, uint16(rapid.IntRange(0, 1).Draw(t, "l"))),
				Location: rapid.SampledFrom(locs).Draw(t, "loc"),
				SKU:      rapid.SampledFrom(skus).Draw(t, "sku"),
				Lot:      rapid.SampledFrom(lots).Draw(t, "lot"),
				Qty:      int64(rapid.IntRange(1, 3).Draw(t, "qty")),
			}
			if rapid.IntRange(0, 3).Draw(t, "held") == 0 { // a key on hold: status moves, counts of held units
				op.Status = protocol.StatusHold
			}
			switch rapid.IntRange(0, 9).Draw(t, "kind") {
			case 9:
				op.Kind = protocol.OpStatus
				op.ToStatus = protocol.StatusHold - op.Status // hold ↔ available
			case 0:
				op.Kind = protocol.OpReceive
				if rapid.IntRange(0, 3).Draw(t, "flagged") == 0 {
					op.Flags = protocol.FlagOverReceipt << rapid.IntRange(0, 3).Draw(t, "flag")
				}
			case 1, 2:
				op.Kind = protocol.OpPick
				if o := rapid.IntRange(0, 4).Draw(t, "order"); o > 0 {
					op.Refs = &protocol.Refs{Order: fmt.Sprintf("o%d", (o+1)/2), OrderLine: uint32(1 + o%2)}
				}
			case 3:
				op.Kind = protocol.OpAdjust
				op.Qty = int64(rapid.SampledFrom([]int{-2, -1, 1, 2}).Draw(t, "adj"))
			case 4:
				op.Kind = protocol.OpMove
				// A move to its own location is invalid (protocol.Op.Validate)
				// and never reaches the ledger.
				op.To = rapid.SampledFrom(locs).Filter(func(l string) bool { return l != op.Location }).Draw(t, "to")
			case 5, 6:
				op.Kind = protocol.OpCount
				op.Qty = int64(rapid.IntRange(0, 4).Draw(t, "cnt"))
			case 7, 8:
				op.Kind = rapid.SampledFrom([]protocol.OpKind{protocol.OpCount, protocol.OpRFIDSweep}).Draw(t, "ckind")
				op.Scope = protocol.ScopeLocation
				op.SKU, op.Lot, op.Qty, op.Status = "", "", 0, protocol.StatusAvailable
				for range rapid.IntRange(0, 3).Draw(t, "lines") {
					op.Lines = append(op.Lines, protocol.CountLine{
						SKU:    rapid.SampledFrom(skus).Draw(t, "lsku"),
						Lot:    rapid.SampledFrom(lots).Draw(t, "llot"),
						Qty:    int64(rapid.IntRange(0, 4).Draw(t, "lqty")),
						Status: rapid.SampledFrom([]protocol.StockStatus{protocol.StatusAvailable, protocol.StatusHold}).Draw(t, "lstatus"),
					})
				}
			}
			out = append(out, ledger.Sourced{WH: WH, GW: gw, Op: op})
		}
	}
	return out
}

// Feed merges ops in the given order through ledger.Apply and d.Observe,
// skipping a (gateway, seq) already merged as the server's watermark does.
func Feed(t require.TestingT, d *conflicts.Detector, st conflicts.Store, ls ledger.Store, ops []ledger.Sourced) {
	seen := map[string]bool{}
	for i := range ops {
		s := &ops[i]
		id := fmt.Sprintf("%s/%d", s.GW, s.Op.Seq)
		if seen[id] {
			continue
		}
		seen[id] = true
		changes, err := ledger.Apply(ls, s.WH, s.GW, &s.Op)
		require.NoError(t, err, "apply %s", id)
		_, err = d.Observe(st, ls, s.WH, s.GW, &s.Op, changes)
		require.NoError(t, err, "observe %s", id)
	}
}

// Open returns the open conflicts of st by ID, after checking the
// lifecycle: a conflict is open exactly when its condition holds (nothing
// was resolved) and cleared otherwise.
func Open(t require.TestingT, st conflicts.Store) map[string]conflicts.Conflict {
	all, err := st.ListConflicts(conflicts.Query{})
	require.NoError(t, err)
	out := map[string]conflicts.Conflict{}
	for _, c := range all {
		require.Equal(t, c.Holds, c.Status == conflicts.StatusOpen, "status of %s", c.ID)
		require.Contains(t, []conflicts.Status{conflicts.StatusOpen, conflicts.StatusCleared}, c.Status, c.ID)
		if c.Status == conflicts.StatusOpen {
			out[c.ID] = Normal(c)
		}
	}
	return out
}

// Normal returns c with an empty Ops list as nil, so that stores that
// round-trip through an encoding compare equal.
func Normal(c conflicts.Conflict) conflicts.Conflict {
	if len(c.Ops) == 0 {
		c.Ops = nil
	}
	return c
}

// Want returns Compute's conflicts for ops, normalised as Open's.
func Want(ops []ledger.Sourced) map[string]conflicts.Conflict {
	out := map[string]conflicts.Conflict{}
	for id, c := range conflicts.Compute(ops, Lines(), Skew) {
		out[id] = Normal(c)
	}
	return out
}

// Shuffle returns ops in a random order with random redeliveries mixed in.
func Shuffle(t *rapid.T, ops []ledger.Sourced) []ledger.Sourced {
	perm := rapid.Permutation(ops).Draw(t, "perm")
	for range rapid.IntRange(0, len(ops)).Draw(t, "ndup") {
		perm = append(perm, ops[rapid.IntRange(0, len(ops)-1).Draw(t, "dup")])
	}
	return rapid.Permutation(perm).Draw(t, "perm2")
}

// CheckStore runs the property against fresh stores from open, which must
// know the order lines it is given. The conflicts.Store and ledger.Store
// may be one value, as on the server.
func CheckStore(t *testing.T, open func(t *rapid.T, lines map[conflicts.OrderLineKey]int64) (conflicts.Store, ledger.Store)) {
	rapid.Check(t, func(t *rapid.T) {
		ops := GenOps(t)
		want := Want(ops)
		st, ls := open(t, Lines())
		Feed(t, &conflicts.Detector{SkewWindow: Skew}, st, ls, Shuffle(t, ops))
		got := Open(t, st)
		require.Equal(t, sortedIDs(want), sortedIDs(got))
		require.Equal(t, want, got)
	})
}

func sortedIDs(m map[string]conflicts.Conflict) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
