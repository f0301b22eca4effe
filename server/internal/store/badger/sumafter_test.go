package badger

import (
	"testing"

	bdb "github.com/dgraph-io/badger/v4"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// checkedLedger is the transaction ledger whose SumAfter also scans, and
// fails the test when the two differ.
type checkedLedger struct {
	*txnLedger
	t    *rapid.T
	fast *int
}

func (c checkedLedger) SumAfter(k ledger.Key, o ledger.Order) (int64, error) {
	got, err := c.txnLedger.SumAfter(k, o)
	require.NoError(c.t, err)
	want, err := c.sumAfterScan(k, o)
	require.NoError(c.t, err)
	require.Equal(c.t, want, got, "SumAfter(%v, %v)", k, o)
	if e, ok := c.keys[k]; ok && e.absent {
		*c.fast++
	}
	return got, nil
}

// TestSumAfterOfNewKeysEqualsTheScan: SumAfter of a key without state
// before the transaction, read from the deltas the transaction added,
// equals the range scan — for random ops merged in random transaction
// boundaries — and the merged stock equals the fold.
func TestSumAfterOfNewKeysEqualsTheScan(t *testing.T) {
	s, err := Open(Options{InMemory: true})
	require.NoError(t, err)
	defer s.Close()
	fast := 0 // SumAfter calls the added deltas answered
	rapid.Check(t, func(t *rapid.T) {
		require.NoError(t, s.db.DropAll())
		n := rapid.IntRange(1, 60).Draw(t, "n")
		var all []ledger.Sourced
		for i := 0; i < n; i++ {
			gw := rapid.SampledFrom([]string{"a", "b"}).Draw(t, "gw")
			op := protocol.Op{Seq: uint64(i + 1), HLC: protocol.MakeHLC(int64(rapid.IntRange(1, 20).Draw(t, "ms")), 0),
				Location: rapid.SampledFrom([]string{"L1", "L2"}).Draw(t, "loc"), SKU: rapid.SampledFrom([]string{"x", "y", "z"}).Draw(t, "sku"),
				Qty: int64(rapid.IntRange(1, 5).Draw(t, "qty"))}
			switch rapid.IntRange(0, 4).Draw(t, "kind") {
			case 0, 1:
				op.Kind = protocol.OpReceive
			case 2:
				op.Kind = protocol.OpPick
			case 3:
				op.Kind = protocol.OpCount
			case 4:
				op.Kind, op.Scope, op.SKU, op.Qty = protocol.OpCount, protocol.ScopeLocation, "", 0
				op.Lines = []protocol.CountLine{{SKU: "x", Qty: int64(rapid.IntRange(0, 5).Draw(t, "lq"))}}
			}
			all = append(all, ledger.Sourced{WH: "w", GW: gw, Op: op})
		}
		for i := 0; i < len(all); {
			end := min(len(all), i+rapid.IntRange(1, 8).Draw(t, "txn_ops"))
			require.NoError(t, s.db.Update(func(txn *bdb.Txn) error {
				l := checkedLedger{&txnLedger{txn: txn, deferKeys: true}, t, &fast}
				for _, o := range all[i:end] {
					if _, err := ledger.Apply(l, o.WH, o.GW, &o.Op); err != nil {
						return err
					}
				}
				return l.flushKeys()
			}))
			i = end
		}
		got := map[ledger.Key]int64{}
		require.NoError(t, s.db.View(func(txn *bdb.Txn) error {
			rows, err := stockIn(txn, store.StockQuery{Warehouse: "w"})
			for _, r := range rows {
				got[ledger.Key{WH: r.Warehouse, Location: r.Location, SKU: r.SKU, Lot: r.Lot}] = r.OnHand
			}
			return err
		}))
		require.Equal(t, ledger.Fold(all), got)
	})
	require.Positive(t, fast, "the fast path never ran")
}
