package badger

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/apply"
	"github.com/shelfsync/shelfsync/server/internal/store/storetest"
)

// TestApplyStopsAtTheKeyBound is a property of the apply core on Badger:
// a key is put next to +10^15 or −10^15 (reaching it through ops would take
// a million of the largest), then random gateway ops — receives, picks,
// adjusts up to ±protocol.MaxOpQty and key counts, in merge order, in
// batches of 1 to 4 — are applied. Each batch applies exactly the ops a
// model with unbounded integers accepts and quarantines the others (those
// whose merge would take the key's delta sum or on-hand past ±10^15); the
// on-hand equals the model's after every batch and never passes the bound
// (nothing wraps).
func TestApplyStopsAtTheKeyBound(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		s, err := Open(Options{InMemory: true})
		require.NoError(rt, err)
		defer s.Close()
		ctx := context.Background()
		const B = ledger.MaxKeyQty
		k := ledger.Key{WH: "w", Location: "L", SKU: "S"}
		sign := rapid.SampledFrom([]int64{1, -1}).Draw(rt, "side")
		sum := sign * (B - rapid.Int64Range(0, 3*protocol.MaxOpQty).Draw(rt, "gap"))
		require.NoError(rt, backend{s.db, nil}.Update(ctx, apply.Scope{}, func(tx apply.Tx) error {
			return tx.PutKey(k, ledger.KeyState{Sum: sum})
		}))
		countQty := int64(0)
		within := func(v int64) bool { return v <= B && v >= -B }

		seq, ms := uint64(0), int64(1000)
		for b := range rapid.IntRange(1, 12).Draw(rt, "batches") {
			var ops []protocol.Op
			wantApplied, wantQuarantined := 0, 0
			for range rapid.IntRange(1, 4).Draw(rt, "ops") {
				seq++
				ms++
				op := protocol.Op{Seq: seq, HLC: protocol.MakeHLC(ms, 0), Location: k.Location, SKU: k.SKU}
				near := rapid.Bool().Draw(rt, "large") // most ops large, to cross the bound
				qty := rapid.Int64Range(1, protocol.MaxOpQty).Draw(rt, "qty")
				if near {
					qty = protocol.MaxOpQty - rapid.Int64Range(0, 10).Draw(rt, "below max")
				}
				var delta int64
				switch rapid.IntRange(0, 3).Draw(rt, "kind") {
				case 0:
					op.Kind, op.Qty, delta = protocol.OpReceive, qty, qty
				case 1:
					op.Kind, op.Qty, delta = protocol.OpPick, qty, -qty
				case 2:
					qty *= rapid.SampledFrom([]int64{1, -1}).Draw(rt, "adjust sign")
					op.Kind, op.Qty, op.Reason, delta = protocol.OpAdjust, qty, "TEST", qty
				case 3:
					op.Kind, op.Scope, op.Qty = protocol.OpCount, protocol.ScopeKey, qty
				}
				ops = append(ops, op)
				if op.Kind == protocol.OpCount {
					countQty, sum = qty, 0
					wantApplied++
					continue
				}
				if within(sum+delta) && within(countQty+sum+delta) {
					sum += delta
					wantApplied++
				} else {
					wantQuarantined++
				}
			}
			res, err := s.ApplyBatch(ctx, "w", "g", storetest.Batch("w", "g", ops...))
			require.NoError(rt, err)
			require.Equal(rt, protocol.Apply, res.Verdict, "batch %d", b)
			require.Equal(rt, wantApplied, res.Applied, "batch %d: applied", b)
			require.Equal(rt, wantQuarantined, res.Quarantined, "batch %d: quarantined", b)
			rows, err := s.Stock(ctx, store.StockQuery{Warehouse: "w"})
			require.NoError(rt, err)
			require.Len(rt, rows, 1)
			require.Equal(rt, countQty+sum, rows[0].OnHand, "batch %d: on-hand", b)
			require.True(rt, within(rows[0].OnHand), "on-hand %d passed the bound", rows[0].OnHand)
		}
	})
}
