package masterdata

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
)

// TestASNsByCSVAndDownstream: an ASN CSV groups the rows of one SSCC into
// one pallet; a bad SSCC, a lot-tracked line without a lot or an
// expiry-tracked line without an expiry refuses the pallet whole; each
// pallet goes downstream to the gateway of its PO's dock only, the export
// imports back, and a deletion sends a tombstone.
func TestASNsByCSVAndDownstream(t *testing.T) {
	st, md := open(t)
	ctx := context.Background()
	require.NoError(t, md.PutLocations(ctx, "w", []protocol.Location{{Code: "DOCK-1", Type: protocol.LocDock, Zone: "IN"}}))
	require.NoError(t, md.PutZones(ctx, "w", []Zone{{Zone: "IN", Gateway: "dock1"}}))
	require.NoError(t, md.PutItems(ctx, "w", []protocol.Item{{SKU: "MILK", TrackExpiry: true}, {SKU: "EGGS"}}))
	require.NoError(t, md.PutPOs(ctx, "w", []protocol.PurchaseOrder{{ID: "P1", Dock: "DOCK-1", Lines: []protocol.POLine{{SKU: "EGGS", Qty: 1}}}}))
	csv := "sscc,po,sku,lot,expiry,qty\n" +
		"106141412345678908,P1,MILK,L1,2027-01-31,10\n" +
		"106141412345678908,,EGGS,,,6\n" +
		"106141412345678907,P1,EGGS,,,1\n" + // check digit
		"006141411234567890,P1,EGGS,,,2\n" +
		"006141411234567890,P1,MILK,L2,,3\n" // expiry-tracked without expiry: the whole pallet is refused
	errs := map[int]string{}
	p, err := md.Import(ctx, "w", ASNs, strings.NewReader(csv), func(p Progress) {
		if p.Error != "" {
			errs[p.Row] = p.Error
		}
	})
	require.NoError(t, err)
	require.Equal(t, 1, p.Imported, "%v", errs)
	require.Contains(t, errs[4], "check digit")
	require.Contains(t, errs[5], "MILK is expiry-tracked")
	v, err := md.Get(ctx, "w", ASNs, "106141412345678908")
	require.NoError(t, err)
	require.Equal(t, protocol.ASN{SSCC: "106141412345678908", PO: "P1", Lines: []protocol.ASNLine{
		{SKU: "MILK", Lot: "L1", Expiry: "2027-01-31", Qty: 10}, {SKU: "EGGS", Qty: 6}}}, v)
	_, err = md.Get(ctx, "w", ASNs, "006141411234567890")
	require.ErrorIs(t, err, ErrNotFound)

	asnsFor := func(gw string) []protocol.ASN {
		read, err := st.DownFrom(ctx, "w", gw, 0, 100)
		require.NoError(t, err)
		var out []protocol.ASN
		for _, it := range read.Items {
			if it.Kind == protocol.DownASN {
				var a protocol.ASN
				require.NoError(t, protocol.Unmarshal(it.Body, &a))
				out = append(out, a)
			}
		}
		return out
	}
	require.Len(t, asnsFor("dock1"), 1)
	require.Empty(t, asnsFor("pick1"), "the ASN goes to the gateway of its PO's dock only")

	var out bytes.Buffer
	require.NoError(t, md.Export(ctx, "w", ASNs, &out))
	require.Equal(t, "sscc,po,sku,lot,expiry,qty\n106141412345678908,P1,MILK,L1,2027-01-31,10\n106141412345678908,P1,EGGS,,,6\n", out.String())
	p, err = md.Import(ctx, "w", ASNs, &out, nil)
	require.NoError(t, err)
	require.Equal(t, 1, p.Imported)

	require.ErrorIs(t, md.PutASNs(ctx, "w", []protocol.ASN{{SSCC: "106141412345678908", Lines: []protocol.ASNLine{{SKU: "MILK", Qty: 1}}}}), ErrInvalid)
	require.NoError(t, md.Delete(ctx, "w", ASNs, "106141412345678908"))
	got := asnsFor("dock1")
	require.Len(t, got, 1, "compacted per SSCC")
	require.True(t, got[0].Deleted)
}
