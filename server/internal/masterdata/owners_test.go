package masterdata

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// TestOwnerColumnsRoundTrip: the items CSV carries owner and
// min_shelf_days, the locations CSV owner; the export imports again
// unchanged, and a location's owner goes downstream with the location.
func TestOwnerColumnsRoundTrip(t *testing.T) {
	st, md := open(t)
	ctx := context.Background()
	items := "sku,gtins,owner,min_shelf_days\n" +
		"ACME-MILK,4012345678901,acme,10\n" +
		"GLOBEX-MILK,4012345678901,globex,\n" +
		"TEA,,bad\towner,\n" + // control character in the owner
		"JAM,,,-3\n"
	p, err := md.Import(ctx, "w", Items, strings.NewReader(items), nil)
	require.NoError(t, err)
	require.Equal(t, 2, p.Imported)
	require.Equal(t, 2, p.Errors)
	it, ok, err := md.Item(ctx, "w", "ACME-MILK")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, protocol.Item{SKU: "ACME-MILK", GTINs: []string{"04012345678901"}, Owner: "acme", MinShelfDays: 10}, it)

	var out bytes.Buffer
	require.NoError(t, md.Export(ctx, "w", Items, &out))
	require.Equal(t, "sku,gtins,description,track_lot,track_expiry,velocity,serialized,owner,min_shelf_days\n"+
		"ACME-MILK,04012345678901,,false,false,,false,acme,10\n"+
		"GLOBEX-MILK,04012345678901,,false,false,,false,globex,0\n", out.String())
	p, err = md.Import(ctx, "w2", Items, bytes.NewReader(out.Bytes()), nil)
	require.NoError(t, err)
	require.Equal(t, 2, p.Imported)
	again, _, _ := md.Item(ctx, "w2", "ACME-MILK")
	require.Equal(t, it, again)

	locs := "code,type,owner\nA-01,storage,acme\nB-01,storage,\n"
	p, err = md.Import(ctx, "w", Locations, strings.NewReader(locs), nil)
	require.NoError(t, err)
	require.Equal(t, 2, p.Imported)
	out.Reset()
	require.NoError(t, md.Export(ctx, "w", Locations, &out))
	require.Equal(t, "code,zone,type,sellable,rank,owner\nA-01,,storage,false,0,acme\nB-01,,storage,false,0,\n", out.String())

	read, err := st.DownFrom(ctx, "w", "g1", 0, 100)
	require.NoError(t, err)
	owners := map[string]string{}
	for _, d := range read.Items {
		if d.Kind == protocol.DownLocation {
			var l protocol.Location
			require.NoError(t, protocol.Unmarshal(d.Body, &l))
			owners[l.Code] = l.Owner
		}
	}
	require.Equal(t, map[string]string{"A-01": "acme", "B-01": ""}, owners, "the gateways get each location's owner")
	require.ErrorIs(t, md.PutLocations(ctx, "w", []protocol.Location{{Code: "C", Owner: strings.Repeat("x", 65)}}), ErrInvalid)
}

// TestGTINSharedOnlyAcrossOwners: a GTIN names one sku, except between
// items of different owners; re-listing, moving and deleting an item
// keeps the map right, entries written before owners included.
func TestGTINSharedOnlyAcrossOwners(t *testing.T) {
	st, md := open(t)
	ctx := context.Background()
	const g = "04012345678901"
	put := func(sku, owner string, gtins ...string) error {
		return md.PutItems(ctx, "w", []protocol.Item{{SKU: sku, GTINs: gtins, Owner: owner}})
	}
	require.NoError(t, put("ACME-MILK", "acme", g))
	require.NoError(t, put("GLOBEX-MILK", "globex", g), "two owners share the GTIN")
	require.ErrorContains(t, put("ACME-MILK2", "acme", g), "same owner acme")
	require.ErrorContains(t, put("PLAIN", "", g), "different owners")
	require.NoError(t, put("ACME-MILK", "acme", g), "re-listing an item is no clash with itself")

	skus := func() []string {
		var out []string
		require.NoError(t, st.View(func(tx store.Tx) error {
			var err error
			out, err = gtinSKUs(tx, "w", g)
			return err
		}))
		return out
	}
	require.ElementsMatch(t, []string{"ACME-MILK", "GLOBEX-MILK"}, skus())
	require.NoError(t, put("GLOBEX-MILK", "globex"), "the GTIN dropped from the item")
	require.Equal(t, []string{"ACME-MILK"}, skus())
	require.NoError(t, md.Delete(ctx, "w", Items, "ACME-MILK"))
	require.Empty(t, skus())
	require.NoError(t, put("PLAIN", "", g), "free again")

	// A map entry written before owners (md/g/, one sku per GTIN) is read
	// and still guards its GTIN, and goes when its item is re-listed.
	const g2 = "04006381333931"
	require.NoError(t, st.Update(func(tx store.Tx) error {
		if err := putItemLegacy(tx, "w", protocol.Item{SKU: "OLD", GTINs: []string{g2}}); err != nil {
			return err
		}
		return nil
	}))
	require.ErrorContains(t, put("NEW", "acme", g2), "already belongs to sku OLD")
	require.NoError(t, put("OLD", "", g2))
	require.NoError(t, st.View(func(tx store.Tx) error {
		ok, err := exists(tx, key(pGTIN, "w", g2))
		require.False(t, ok, "the old entry was replaced by the new layout")
		return err
	}))
	require.NoError(t, st.View(func(tx store.Tx) error {
		got, err := gtinSKUs(tx, "w", g2)
		require.Equal(t, []string{"OLD"}, got)
		return err
	}))
}

// putItemLegacy writes an item as a server of the version before owners
// did: its GTINs under md/g/ with the sku as the value.
func putItemLegacy(tx store.Tx, wh string, it protocol.Item) error {
	for _, g := range it.GTINs {
		if err := tx.Set(key(pGTIN, wh, g), []byte(it.SKU)); err != nil {
			return err
		}
	}
	return putCBOR(tx, key(pItem, wh, it.SKU), it)
}

// TestOwnerIDsFollowTheIDRules: an item's or location's owner is an id of
// [A-Za-z0-9._-] (1-64, not only dots), as on the MQTT topics it names;
// anything else is refused at write time, by the API and the CSV import,
// and nothing is stored.
func TestOwnerIDsFollowTheIDRules(t *testing.T) {
	_, md := open(t)
	ctx := context.Background()
	for _, o := range []string{"acme", "acme.eu_2-x", strings.Repeat("a", 64)} {
		require.NoError(t, md.PutItems(ctx, "w", []protocol.Item{{SKU: "OK-" + o[:4], Owner: o}}), o)
		require.NoError(t, md.PutLocations(ctx, "w", []protocol.Location{{Code: "L-" + o[:4], Owner: o}}), o)
	}
	for _, o := range []string{"acme corp", "acme/eu", "acme+", "ac#me", "..", "é", strings.Repeat("a", 65)} {
		err := md.PutItems(ctx, "w", []protocol.Item{{SKU: "BAD", Owner: o}})
		require.ErrorIs(t, err, ErrInvalid, o)
		require.ErrorContains(t, err, "owner", o)
		require.ErrorIs(t, md.PutLocations(ctx, "w", []protocol.Location{{Code: "BAD", Owner: o}}), ErrInvalid, o)
	}
	_, ok, err := md.Item(ctx, "w", "BAD")
	require.NoError(t, err)
	require.False(t, ok, "a refused item is not stored")
	p, err := md.Import(ctx, "w", Items, strings.NewReader("sku,owner\nCSV-OK,acme\nCSV-BAD,acme corp\n"), nil)
	require.NoError(t, err)
	require.Equal(t, 1, p.Imported)
	require.Equal(t, 1, p.Errors)
}
