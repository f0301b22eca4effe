package masterdata

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
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
