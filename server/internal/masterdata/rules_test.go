package masterdata

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
)

// TestPOImportIsWholeAndKnowsItsDocks: a PO whose dock the warehouse has
// not defined is refused (the scanner refuses the bin too), and a PO with
// one bad line row is not imported with its other lines (nothing
// half-applied); each refusal names its row.
func TestPOImportIsWholeAndKnowsItsDocks(t *testing.T) {
	_, md := open(t)
	ctx := context.Background()
	require.NoError(t, md.PutLocations(ctx, "w", []protocol.Location{{Code: "DOCK-1", Type: protocol.LocDock}}))
	csv := "id,dock,line,sku,qty\n" +
		"P1,DOCK-1,1,A,5\n" +
		"P1,DOCK-1,2,B,many\n" + // bad qty: P1 is refused whole
		"P2,DOCK-9,1,A,1\n" + // unknown dock
		"P3,DOCK-1,1,A,2\n"
	errs := map[int]string{}
	p, err := md.Import(ctx, "w", POs, strings.NewReader(csv), func(p Progress) {
		if p.Error != "" {
			errs[p.Row] = p.Error
		}
	})
	require.NoError(t, err)
	require.Equal(t, 1, p.Imported, "%v", errs)
	require.Contains(t, errs[3], "qty")
	require.Contains(t, errs[2], "id P1 not imported")
	require.Contains(t, errs[4], `unknown location "DOCK-9"`)
	for id, want := range map[string]bool{"P1": false, "P2": false, "P3": true} {
		_, err := md.Get(ctx, "w", POs, id)
		require.Equal(t, want, err == nil, "%s: %v", id, err)
	}
	// The API's PUT obeys the same rule.
	err = md.PutPOs(ctx, "w", []protocol.PurchaseOrder{{ID: "P4", Dock: "NOWHERE", Lines: []protocol.POLine{{SKU: "A", Qty: 1}}}})
	require.ErrorIs(t, err, ErrInvalid)
}

// TestStockRules: the scanner's rules as an import checks them.
func TestStockRules(t *testing.T) {
	_, md := open(t)
	ctx := context.Background()
	r, err := md.StockRules(ctx, "w")
	require.NoError(t, err)
	require.NoError(t, r.Location("ANY"), "a warehouse without locations takes any")
	require.NoError(t, md.PutLocations(ctx, "w", []protocol.Location{{Code: "A-1"}}))
	require.NoError(t, md.PutItems(ctx, "w", []protocol.Item{{SKU: "L", TrackLot: true}, {SKU: "E", TrackExpiry: true}}))
	r, err = md.StockRules(ctx, "w")
	require.NoError(t, err)
	require.NoError(t, r.Location("A-1"))
	require.ErrorIs(t, r.Location("B-1"), ErrInvalid)
	require.NoError(t, r.Line("UNLISTED", "", ""), "a catalog that is not strict takes any sku")
	require.ErrorContains(t, r.Line("L", "", ""), "lot-tracked")
	require.NoError(t, r.Line("L", "1", ""))
	require.ErrorContains(t, r.Line("E", "1", ""), "expiry-tracked")
	require.ErrorContains(t, r.Line("E", "", "2027-01-01"), "lot-tracked")
	require.ErrorContains(t, r.Line("E", "1", "2027-02-30"), "YYYY-MM-DD")
	require.NoError(t, r.Line("E", "1", "2027-01-01"))
	require.NoError(t, md.PutSettings(ctx, "w", protocol.Settings{StrictCatalog: true}))
	r, err = md.StockRules(ctx, "w")
	require.NoError(t, err)
	require.ErrorContains(t, r.Line("UNLISTED", "", ""), "strict catalog")
}

// TestStockRulesKeepOwnersApart: a stock line of one owner's item at
// another owner's location breaks the scanner's rule; the owner's own
// location, an unowned one, and an item without an owner pass.
func TestStockRulesKeepOwnersApart(t *testing.T) {
	_, md := open(t)
	ctx := context.Background()
	require.NoError(t, md.PutLocations(ctx, "w", []protocol.Location{{Code: "A-1", Owner: "acme"}, {Code: "G-1", Owner: "globex"}, {Code: "X-1"}}))
	require.NoError(t, md.PutItems(ctx, "w", []protocol.Item{{SKU: "ACME-TEA", Owner: "acme"}, {SKU: "PLAIN"}}))
	r, err := md.StockRules(ctx, "w")
	require.NoError(t, err)
	require.NoError(t, r.Owner("A-1", "ACME-TEA"))
	require.NoError(t, r.Owner("X-1", "ACME-TEA"))
	require.NoError(t, r.Owner("G-1", "PLAIN"))
	err = r.Owner("G-1", "ACME-TEA")
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, "G-1 holds globex's units")
}
