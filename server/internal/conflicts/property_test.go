package conflicts_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/conflicts/conflictstest"
)

func openMem(_ *rapid.T, lines map[conflicts.OrderLineKey]int64) (conflicts.Store, ledger.Store) {
	m := conflicts.NewMemStore()
	m.Lines = lines
	return m, m
}

func TestDetectorEqualsComputeAnyOrderWithRedeliveries(t *testing.T) {
	conflictstest.CheckStore(t, openMem)
}

func TestComputeIsAFunctionOfTheOpSet(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ops := conflictstest.GenOps(t)
		require.Equal(t, conflictstest.Want(ops), conflictstest.Want(conflictstest.Shuffle(t, ops)))
	})
}

// The open negative-stock conflicts are exactly the keys the merge rule
// leaves below zero, and a conflict that stopped holding is kept, cleared.
func TestOpenNegativeStockIsTheFoldBelowZero(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ops := conflictstest.GenOps(t)
		m := conflicts.NewMemStore()
		m.Lines = conflictstest.Lines()
		conflictstest.Feed(t, &conflicts.Detector{}, m, m, conflictstest.Shuffle(t, ops))
		want := map[string]int64{}
		for k, v := range ledger.Fold(ops) {
			if v < 0 {
				want[conflicts.NegativeStockID(k)] = v
			}
		}
		got := map[string]int64{}
		all, err := m.ListConflicts(conflicts.Query{Kind: conflicts.KindNegativeStock})
		require.NoError(t, err)
		for _, c := range all {
			if c.Status == conflicts.StatusOpen {
				got[c.ID] = c.Observed
				require.NotEmpty(t, c.Ops, c.ID)
			} else {
				require.NotContains(t, want, c.ID)
			}
		}
		require.Equal(t, want, got)
	})
}

// A store that merges ops in merge order never sees a count before a delta
// it follows, so no variance is ever cleared: the incremental path that
// revisits counts is only exercised by late ops.
func TestInMergeOrderNothingIsRevisited(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ops := conflictstest.GenOps(t)
		sorted := append([]ledger.Sourced(nil), ops...)
		sortByOrder(sorted)
		m := conflicts.NewMemStore()
		m.Lines = conflictstest.Lines()
		conflictstest.Feed(t, &conflicts.Detector{}, m, m, sorted)
		all, err := m.ListConflicts(conflicts.Query{Kind: conflicts.KindVariance, Status: conflicts.StatusCleared})
		require.NoError(t, err)
		require.Empty(t, all)
		require.Equal(t, conflictstest.Want(ops), conflictstest.Open(t, m))
	})
}

// BenchmarkObserve merges a shift's worth of ops from four gateways,
// slightly out of order, over 1000 keys, with a key count every 53 ops.
// The cost per op must not grow with history.
func BenchmarkObserve(b *testing.B) {
	d, m := &conflicts.Detector{}, conflicts.NewMemStore()
	gws := []string{"gw-a", "gw-b", "gw-c", "gw-d"}
	seqs := map[string]uint64{}
	b.ReportAllocs()
	for i := range b.N {
		gw := gws[i%len(gws)]
		seqs[gw]++
		op := protocol.Op{Seq: seqs[gw], HLC: protocol.MakeHLC(int64(i*10-(i%7)*30), 0), Location: fmt.Sprintf("L%d", i%100),
			SKU: fmt.Sprintf("s%d", i%10), Qty: 1, Refs: &protocol.Refs{Order: fmt.Sprintf("o%d", i/3), OrderLine: 1}}
		switch {
		case i%53 == 0:
			op.Kind, op.Qty, op.Refs = protocol.OpCount, 3, nil
		case i%2 == 0:
			op.Kind, op.Refs = protocol.OpReceive, nil
		default:
			op.Kind = protocol.OpPick
		}
		changes, err := ledger.Apply(m, wh, gw, &op)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := d.Observe(m, m, wh, gw, &op, changes); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCountRaceFastPathEqualsScan: the count-race check that skips the
// range scans of a key whose latest covering count lies before the race
// window finds exactly the conflicts the scans find, for any op set in any
// delivery order and skew window.
func TestCountRaceFastPathEqualsScan(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ops := conflictstest.Shuffle(t, conflictstest.GenOps(t))
		d := &conflicts.Detector{SkewWindow: time.Duration(rapid.IntRange(1, 8).Draw(t, "skew_s")) * time.Second}
		run := func(scan bool) []conflicts.Conflict {
			conflicts.SetScanAlways(scan)
			defer conflicts.SetScanAlways(false)
			m := conflicts.NewMemStore()
			m.Lines = conflictstest.Lines()
			conflictstest.Feed(t, d, m, m, ops)
			all, err := m.ListConflicts(conflicts.Query{})
			require.NoError(t, err)
			return all
		}
		require.Equal(t, run(true), run(false))
	})
}
