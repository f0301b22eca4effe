package masterdata

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
)

// testStore is a backend with records, actions and the op check.
type testStore interface {
	store.Store
	store.Records
	store.Actions
	SetOpCheck(func(store.Tx, string, *protocol.Op) error)
}

// openStore opens an empty store, closed at cleanup; a second call in the
// same test with again=true opens another handle on the same database (a
// second replica): Badger here (the same handle), PostgreSQL under
// TestIntegrationMasterDataOnPostgres (its own pool).
var openStore = func(t *testing.T, again bool) testStore {
	t.Helper()
	if again {
		return lastStore[t.Name()]
	}
	st, err := badger.Open(badger.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	lastStore[t.Name()] = st
	return st
}

var lastStore = map[string]testStore{}

func open(t *testing.T) (testStore, *Service) {
	t.Helper()
	st := openStore(t, false)
	return st, New(st, Options{})
}

func TestImportStreamsProgressAndSkipsBadRows(t *testing.T) {
	st, md := open(t)
	ctx := context.Background()
	csv := "sku,gtins,track_expiry,velocity\n" +
		"MILK,4012345678901,true,fast\n" +
		"JAM,4012345678902,,\n" + // bad check digit
		"BREAD,,no,slow\n" +
		"TEA,4012345678901,,\n" + // GTIN of MILK
		"\"unterminated,\n"
	var lines []Progress
	p, err := md.Import(ctx, "w", Items, strings.NewReader(csv), func(p Progress) { lines = append(lines, p) })
	require.NoError(t, err)
	require.True(t, p.Done)
	require.Equal(t, 2, p.Imported)
	require.Equal(t, 3, p.Errors)
	var errRows []int
	for _, l := range lines {
		if l.Error != "" {
			errRows = append(errRows, l.Row)
		}
	}
	require.Equal(t, []int{3, 6, 5}, errRows, "a batch refuses its GTIN clash when it is written")
	require.Contains(t, lines[len(lines)-2].Error+lines[1].Error+lines[0].Error, "check digit")

	it, ok, err := md.Item(ctx, "w", "MILK")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, protocol.Item{SKU: "MILK", GTINs: []string{"04012345678901"}, TrackLot: true, TrackExpiry: true, Velocity: "fast"}, it)

	var out bytes.Buffer
	require.NoError(t, md.Export(ctx, "w", Items, &out))
	require.Equal(t, "sku,gtins,description,track_lot,track_expiry,velocity,serialized,owner,min_shelf_days\n"+
		"BREAD,,,false,false,slow,false,,0\nMILK,04012345678901,,true,true,fast,false,,0\n", out.String())

	// Re-importing the export changes nothing and is accepted.
	p, err = md.Import(ctx, "w", Items, &out, nil)
	require.NoError(t, err)
	require.Equal(t, 2, p.Imported)

	read, err := st.DownFrom(ctx, "w", "g", 0, 100)
	require.NoError(t, err)
	require.Len(t, read.Items, 2, "compacted: one catalog item per sku")

	_, err = md.Import(ctx, "w", Items, strings.NewReader("sku,colour\nX,red\n"), nil)
	require.ErrorIs(t, err, ErrInvalid)
}

func TestDeleteSendsTombstoneAndPOsGoToTheDocksGateway(t *testing.T) {
	st, md := open(t)
	ctx := context.Background()
	require.NoError(t, md.PutLocations(ctx, "w", []protocol.Location{{Code: "DOCK-1", Type: protocol.LocDock, Zone: "IN"}}))
	require.NoError(t, md.PutZones(ctx, "w", []Zone{{Zone: "IN", Gateway: "dock1"}}))
	require.NoError(t, md.PutPOs(ctx, "w", []protocol.PurchaseOrder{{ID: "P1", Dock: "DOCK-1", Lines: []protocol.POLine{{SKU: "A", Qty: 1}}}}))
	require.NoError(t, md.Delete(ctx, "w", Locations, "DOCK-1"))
	require.ErrorIs(t, md.Delete(ctx, "w", Locations, "DOCK-1"), ErrNotFound)

	kinds := func(gw string) map[protocol.DownKind]int {
		read, err := st.DownFrom(ctx, "w", gw, 0, 100)
		require.NoError(t, err)
		out := map[protocol.DownKind]int{}
		for _, it := range read.Items {
			out[it.Kind]++
			if it.Kind == protocol.DownLocation {
				var l protocol.Location
				require.NoError(t, protocol.Unmarshal(it.Body, &l))
				require.True(t, l.Deleted)
			}
		}
		return out
	}
	require.Equal(t, map[protocol.DownKind]int{protocol.DownLocation: 1, protocol.DownPO: 1}, kinds("dock1"))
	require.Equal(t, map[protocol.DownKind]int{protocol.DownLocation: 1}, kinds("pick1"))
}

func TestValidation(t *testing.T) {
	_, md := open(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"po without lines", md.PutPOs(ctx, "w", []protocol.PurchaseOrder{{ID: "P"}})},
		{"location type", md.PutLocations(ctx, "w", []protocol.Location{{Code: "X", Type: "shelf"}})},
		{"velocity", md.PutItems(ctx, "w", []protocol.Item{{SKU: "X", Velocity: "warp"}})},
		{"zone gateway", md.PutZones(ctx, "w", []Zone{{Zone: "Z", Gateway: "bad gw"}})},
		{"seasonal dates", md.PutThresholds(ctx, "w", []protocol.Threshold{{SKU: "X", Seasonal: []protocol.SeasonalThreshold{{From: "2026-02-01", To: "2026-01-01"}}}})},
	} {
		require.ErrorIs(t, tc.err, ErrInvalid, tc.name)
	}
	g, err := NormalizeGTIN("4006381333931")
	require.NoError(t, err)
	require.Equal(t, "04006381333931", g)
}
