package masterdata

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
)

// TestThresholdCSVCarriesSafetyStockAndSeasons: the thresholds CSV has
// every field of a threshold — safety_stock and the seasonal overrides in
// one cell — and exports what it imports.
func TestThresholdCSVCarriesSafetyStockAndSeasons(t *testing.T) {
	_, md := open(t)
	ctx := context.Background()
	in := "sku,reorder_point,reorder_qty,max,safety_stock,seasonal\n" +
		"TEA,5,10,40,2,2026-11-15..2026-12-24=50/100/200;2027-07-01..2027-08-31=20//\n" +
		"SOAP,3,6,,,\n" +
		"JAM,1,,,,2026-12-24..2026-11-15=5/5/5\n" + // to before from
		"OIL,1,,,,summer\n"
	p, err := md.Import(ctx, "w", Thresholds, strings.NewReader(in), nil)
	require.NoError(t, err)
	require.Equal(t, 2, p.Imported)
	require.Equal(t, 2, p.Errors)
	th, ok := md.Threshold("w", "TEA")
	require.True(t, ok)
	require.Equal(t, protocol.Threshold{SKU: "TEA", ReorderPoint: 5, ReorderQty: 10, Max: 40, SafetyStock: 2, Seasonal: []protocol.SeasonalThreshold{
		{From: "2026-11-15", To: "2026-12-24", ReorderPoint: 50, ReorderQty: 100, Max: 200},
		{From: "2027-07-01", To: "2027-08-31", ReorderPoint: 20},
	}}, th)
	var out bytes.Buffer
	require.NoError(t, md.Export(ctx, "w", Thresholds, &out))
	require.Equal(t, "sku,reorder_point,reorder_qty,max,safety_stock,seasonal\n"+
		"SOAP,3,6,0,0,\n"+
		"TEA,5,10,40,2,2026-11-15..2026-12-24=50/100/200;2027-07-01..2027-08-31=20/0/0\n", out.String())
	// What it exports imports again unchanged.
	_, err = md.Import(ctx, "w2", Thresholds, bytes.NewReader(out.Bytes()), nil)
	require.NoError(t, err)
	again, _ := md.Threshold("w2", "TEA")
	require.Equal(t, th, again)
}
