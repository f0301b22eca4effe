package store

import (
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
)

// TestGTINOfTwoOwners: the local catalog maps one GTIN to the items of
// two owners; dropping it from one item, or deleting the item, leaves the
// other's; a map entry written by an agent of the version before owners
// (md/g/, one sku per GTIN) is read, and replaced when its item comes
// again.
func TestGTINOfTwoOwners(t *testing.T) {
	s := openMD(t)
	const g = "04006381333931"
	skus := func(gtin string) []string {
		var out []string
		for _, it := range s.Lookup().ItemsByGTIN(gtin) {
			out = append(out, it.SKU+"/"+it.Owner)
		}
		return out
	}
	require.NoError(t, s.ApplyDownItems(Down{Items: []protocol.Item{
		{SKU: "ACME-BOLT", GTINs: []string{g}, Owner: "acme"},
		{SKU: "GLOBEX-BOLT", GTINs: []string{g}, Owner: "globex"},
	}, Locations: []protocol.Location{{Code: "A-01", Owner: "acme"}}}, 0, 2))
	require.ElementsMatch(t, []string{"ACME-BOLT/acme", "GLOBEX-BOLT/globex"}, skus(g))
	loc, ok := s.Lookup().Location("A-01")
	require.True(t, ok)
	require.Equal(t, "acme", loc.Owner, "the location's owner is kept")

	require.NoError(t, s.ApplyDownItems(Down{Items: []protocol.Item{{SKU: "ACME-BOLT", Owner: "acme"}}}, 0, 3))
	require.Equal(t, []string{"GLOBEX-BOLT/globex"}, skus(g))
	require.NoError(t, s.ApplyDownItems(Down{Items: []protocol.Item{{SKU: "GLOBEX-BOLT", Deleted: true}}}, 0, 4))
	require.Empty(t, skus(g))

	const g2 = "04012345678901"
	require.NoError(t, s.db.Update(func(txn *badger.Txn) error {
		b, err := protocol.Marshal(protocol.Item{SKU: "OLD", GTINs: []string{g2}})
		if err != nil {
			return err
		}
		if err := txn.Set([]byte(mdItem+"OLD"), b); err != nil {
			return err
		}
		return txn.Set([]byte(mdGTIN+g2), []byte("OLD"))
	}))
	require.Equal(t, []string{"OLD/"}, skus(g2), "the old layout is read")
	require.NoError(t, s.ApplyDownItems(Down{Items: []protocol.Item{{SKU: "OLD", GTINs: []string{g2}, Owner: "acme"}}}, 0, 5))
	require.Equal(t, []string{"OLD/acme"}, skus(g2), "one entry, not two")
	require.NoError(t, s.db.View(func(txn *badger.Txn) error {
		_, ok, err := getString(txn, mdGTIN+g2)
		require.False(t, ok, "the old entry is gone")
		return err
	}))
}
