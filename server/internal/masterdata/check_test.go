package masterdata

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// TestUnknownSkuAndLocationAreQuarantinedThenReapplied: with a strict
// catalog and defined locations, ops naming an unknown sku or location are
// kept aside with the reason, not applied and not dropped; once the master
// data is fixed they re-apply.
func TestUnknownSkuAndLocationAreQuarantinedThenReapplied(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, false)
	st.SetOpCheck(CheckOp)
	md := For(st, Options{})
	require.NoError(t, md.PutSettings(ctx, "w", protocol.Settings{StrictCatalog: true}))
	require.NoError(t, md.PutItems(ctx, "w", []protocol.Item{{SKU: "KNOWN"}}))
	require.NoError(t, md.PutLocations(ctx, "w", []protocol.Location{{Code: "A-1"}}))

	ops := []protocol.Op{
		{Seq: 1, HLC: 1 << 16, Kind: protocol.OpReceive, Location: "A-1", SKU: "KNOWN", Qty: 2},
		{Seq: 2, HLC: 2 << 16, Kind: protocol.OpReceive, Location: "A-1", SKU: "NEW", Qty: 3},
		{Seq: 3, HLC: 3 << 16, Kind: protocol.OpReceive, Location: "B-9", SKU: "KNOWN", Qty: 4},
	}
	res, err := st.ApplyBatch(ctx, "w", "g", &protocol.OpBatch{First: 1, Last: 3, Ops: ops})
	require.NoError(t, err)
	require.Equal(t, 1, res.Applied)
	require.Equal(t, 2, res.Quarantined)
	require.Equal(t, uint64(3), res.WM, "quarantined ops still move the watermark: they are kept, not lost")
	q, err := st.Quarantined(ctx, "w")
	require.NoError(t, err)
	require.Len(t, q, 2)
	require.Contains(t, q[0].Reason, `unknown sku "NEW"`)
	require.Contains(t, q[1].Reason, `unknown location "B-9"`)

	_, err = st.QuarantineAction(ctx, "w", "g", 2, "reapply", "lead")
	require.ErrorContains(t, err, "still invalid", "re-applying before the fix keeps it aside")
	require.NoError(t, md.PutItems(ctx, "w", []protocol.Item{{SKU: "NEW"}}))
	_, err = st.QuarantineAction(ctx, "w", "g", 2, "reapply", "lead")
	require.NoError(t, err)
	_, err = st.QuarantineAction(ctx, "w", "g", 3, "reject", "lead")
	require.NoError(t, err)
	rows, err := st.Stock(ctx, store.StockQuery{Warehouse: "w"})
	require.NoError(t, err)
	require.Equal(t, []store.StockRow{{Warehouse: "w", Location: "A-1", SKU: "KNOWN", OnHand: 2}, {Warehouse: "w", Location: "A-1", SKU: "NEW", OnHand: 3}}, rows)
}

// TestOpsOfAGatewayWithoutOwnersLandAsTheItemsOwnersAvailableStock: a
// gateway of the version before owners and statuses sends ops without keys
// 20–22 (their bytes are SPEC.md's unchanged "ops" example); in a warehouse
// whose items have owners they land as available stock of the item's owner,
// count lines included, and the op logged for the audit trail names the
// owner. An op naming its owner keeps it; a sku without an owner stays "".
func TestOpsOfAGatewayWithoutOwnersLandAsTheItemsOwnersAvailableStock(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, false)
	st.SetOpCheck(CheckOp)
	md := For(st, Options{})
	require.NoError(t, md.PutItems(ctx, "w", []protocol.Item{{SKU: "MILK", Owner: "acme"}, {SKU: "TEA", Owner: "zeta"}, {SKU: "HOUSE"}}))

	old := &protocol.OpBatch{Header: protocol.Header{WH: "w", GW: "old"}, First: 1, Last: 3, Ops: []protocol.Op{
		{Seq: 1, HLC: 1 << 16, Kind: protocol.OpReceive, Location: "A-1", SKU: "MILK", Qty: 2},
		{Seq: 2, HLC: 2 << 16, Kind: protocol.OpReceive, Location: "A-1", SKU: "HOUSE", Qty: 1},
		{Seq: 3, HLC: 3 << 16, Kind: protocol.OpCount, Scope: protocol.ScopeLocation, Location: "B-1", Lines: []protocol.CountLine{{SKU: "TEA", Qty: 4}}},
	}}
	raw, err := protocol.Encode(old)
	require.NoError(t, err)
	for _, k := range []byte{0x14, 0x15, 0x16} { // keys 20, 21, 22 as CBOR map keys
		require.NotContains(t, hexOps(t, raw), k, "the batch carries no owner or status keys")
	}
	msg, err := protocol.Decode(raw)
	require.NoError(t, err)
	_, err = st.ApplyBatch(ctx, "w", "old", msg.(*protocol.OpBatch))
	require.NoError(t, err)
	newer := protocol.Op{Seq: 1, HLC: 4 << 16, Kind: protocol.OpReceive, Location: "A-1", SKU: "MILK", Qty: 1, Owner: "other"}
	_, err = st.ApplyBatch(ctx, "w", "new", &protocol.OpBatch{First: 1, Last: 1, Ops: []protocol.Op{newer}})
	require.NoError(t, err)

	rows, err := st.Stock(ctx, store.StockQuery{Warehouse: "w"})
	require.NoError(t, err)
	require.Equal(t, []store.StockRow{
		{Warehouse: "w", Location: "A-1", SKU: "HOUSE", OnHand: 1},
		{Warehouse: "w", Location: "A-1", SKU: "MILK", Owner: "acme", OnHand: 2},
		{Warehouse: "w", Location: "A-1", SKU: "MILK", Owner: "other", OnHand: 1},
		{Warehouse: "w", Location: "B-1", SKU: "TEA", Owner: "zeta", OnHand: 4},
	}, rows)
	hs, err := st.History(ctx, ledger.Key{WH: "w", Location: "A-1", SKU: "MILK", Owner: "acme"})
	require.NoError(t, err)
	require.Len(t, hs, 1)
	require.Equal(t, "old", hs[0].Gateway)

	// The op log keeps each op as merged: stamped where the owner was
	// stamped (the server encodes those again), as received where not.
	logged := map[uint64]protocol.Op{}
	require.NoError(t, st.View(func(tx store.Tx) error {
		return tx.ScanOps("w", func(gw string, op *protocol.Op) error {
			if gw == "old" {
				logged[op.Seq] = *op
			}
			return nil
		})
	}))
	stamped := old.Ops[0]
	stamped.Owner = "acme"
	counted := old.Ops[2]
	counted.Lines = []protocol.CountLine{{SKU: "TEA", Qty: 4, Owner: "zeta"}}
	require.Equal(t, map[uint64]protocol.Op{1: stamped, 2: old.Ops[1], 3: counted}, logged)
}

// hexOps returns the map keys of every op in an encoded batch.
func hexOps(t *testing.T, raw []byte) []byte {
	t.Helper()
	var m map[int]any
	require.NoError(t, protocol.Unmarshal(raw, &m))
	var keys []byte
	for _, op := range m[6].([]any) {
		for k := range op.(map[any]any) {
			keys = append(keys, byte(k.(uint64)))
		}
	}
	return keys
}
