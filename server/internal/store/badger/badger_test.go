package badger

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(Options{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func batch(wh, gw string, ops ...protocol.Op) *protocol.OpBatch {
	return &protocol.OpBatch{Header: protocol.Header{WH: wh, GW: gw}, First: ops[0].Seq, Last: ops[len(ops)-1].Seq, Ops: ops}
}

func recv(seq uint64, ms int64, loc, sku string, qty int64) protocol.Op {
	return protocol.Op{Seq: seq, HLC: protocol.MakeHLC(ms, 0), Kind: protocol.OpReceive, Location: loc, SKU: sku, Qty: qty}
}

func TestApplyBatchDuplicateGapOverlap(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	b12 := batch("w", "g", recv(1, 1, "L", "s", 1), recv(2, 2, "L", "s", 2))
	res, err := s.ApplyBatch(ctx, "w", "g", b12)
	require.NoError(t, err)
	require.Equal(t, protocol.Apply, res.Verdict)
	require.Equal(t, uint64(2), res.WM)

	res, err = s.ApplyBatch(ctx, "w", "g", b12) // delivered twice
	require.NoError(t, err)
	require.Equal(t, protocol.Duplicate, res.Verdict)

	res, err = s.ApplyBatch(ctx, "w", "g", batch("w", "g", recv(4, 4, "L", "s", 100))) // gap
	require.NoError(t, err)
	require.Equal(t, protocol.Gap, res.Verdict)
	require.Equal(t, uint64(2), res.WM)

	res, err = s.ApplyBatch(ctx, "w", "g", batch("w", "g", recv(2, 2, "L", "s", 2), recv(3, 3, "L", "s", 4))) // overlap
	require.NoError(t, err)
	require.Equal(t, protocol.Apply, res.Verdict)
	require.Equal(t, 1, res.Applied, "only seq 3 is new")

	rows, err := s.Stock(ctx, store.StockQuery{Warehouse: "w"})
	require.NoError(t, err)
	require.Equal(t, []store.StockRow{{Warehouse: "w", Location: "L", SKU: "s", OnHand: 7}}, rows)
	wm, err := s.Watermark(ctx, "w", "g")
	require.NoError(t, err)
	require.Equal(t, uint64(3), wm)
}

func TestInvalidOpIsQuarantinedNotDropped(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	bad := recv(2, 2, "L", "", 1) // no sku
	res, err := s.ApplyBatch(ctx, "w", "g", batch("w", "g", recv(1, 1, "L", "s", 1), bad))
	require.NoError(t, err)
	require.Equal(t, 1, res.Applied)
	require.Equal(t, 1, res.Quarantined)
	require.Equal(t, uint64(2), res.WM)
	q, err := s.Quarantined(ctx, "w")
	require.NoError(t, err)
	require.Len(t, q, 1)
	require.Equal(t, uint64(2), q[0].Seq)
	require.Contains(t, q[0].Reason, "sku is required")
}

// TestBadgerLedgerEqualsFold applies random ops from several gateways in
// random batch interleavings, with redeliveries, and compares the stored
// ledger with the reference fold.
func TestBadgerLedgerEqualsFold(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		s := openTest(t)
		ctx := context.Background()
		var all []ledger.Sourced
		perGW := map[string][]protocol.Op{}
		for _, gw := range []string{"a", "b", "c"} {
			for seq := uint64(1); seq <= 40; seq++ {
				op := protocol.Op{Seq: seq, HLC: protocol.MakeHLC(int64(r.IntN(30)), 0), Location: []string{"L1", "L2"}[r.IntN(2)], SKU: []string{"x", "y"}[r.IntN(2)], Qty: int64(1 + r.IntN(4))}
				switch r.IntN(5) {
				case 0:
					op.Kind = protocol.OpReceive
				case 1:
					op.Kind = protocol.OpPick
				case 2:
					op.Kind, op.To = protocol.OpMove, "L3"
				case 3:
					op.Kind = protocol.OpCount
				case 4:
					op.Kind, op.Scope, op.SKU = protocol.OpCount, protocol.ScopeLocation, ""
					op.Lines = []protocol.CountLine{{SKU: "x", Qty: int64(r.IntN(5))}}
					op.Qty = 0
				}
				perGW[gw] = append(perGW[gw], op)
				all = append(all, ledger.Sourced{WH: "w", GW: gw, Op: op})
			}
		}
		next := map[string]int{"a": 0, "b": 0, "c": 0}
		for done := 0; done < 3; {
			gw := []string{"a", "b", "c"}[r.IntN(3)]
			i := next[gw]
			if i >= len(perGW[gw]) {
				done = len(filterDone(next, perGW))
				continue
			}
			n := 1 + r.IntN(6)
			if i+n > len(perGW[gw]) {
				n = len(perGW[gw]) - i
			}
			start := i
			if r.IntN(4) == 0 && i > 0 { // redeliver an overlapping window
				start = r.IntN(i)
			}
			_, err := s.ApplyBatch(ctx, "w", gw, batch("w", gw, perGW[gw][start:i+n]...))
			require.NoError(t, err)
			next[gw] = i + n
			done = len(filterDone(next, perGW))
		}
		want := ledger.Fold(all)
		rows, err := s.Stock(ctx, store.StockQuery{Warehouse: "w"})
		require.NoError(t, err)
		got := map[ledger.Key]int64{}
		for _, row := range rows {
			got[ledger.Key{WH: row.Warehouse, Location: row.Location, SKU: row.SKU, Lot: row.Lot}] = row.OnHand
		}
		require.Equal(t, want, got, "seed %d", seed)
	}
}

func filterDone(next map[string]int, per map[string][]protocol.Op) []string {
	var out []string
	for gw, i := range next {
		if i >= len(per[gw]) {
			out = append(out, gw)
		}
	}
	return out
}

func TestEpochPersistsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	require.NoError(t, err)
	e := s.Epoch()
	require.NotEmpty(t, e)
	require.NoError(t, s.Close())
	s, err = Open(Options{Dir: dir})
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, e, s.Epoch())
}

// TestBatchesAreSynced guards the setting that makes an applied batch
// durable before its ack: Badger's SyncWrites on a store on disk.
func TestBatchesAreSynced(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir()})
	require.NoError(t, err)
	defer s.Close()
	require.True(t, s.db.Opts().SyncWrites, "batches must be fsynced before they are acknowledged")
}
