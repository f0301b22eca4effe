package masterdata

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/pgtest"
	"github.com/shelfsync/shelfsync/server/internal/store/postgres"
	"github.com/shelfsync/shelfsync/server/internal/store/storetest"
)

// TestTwoServicesOverOneStoreSeeEachOthersWrites: two services over one
// store (two server replicas over one database) keep no cache, so each
// sees the other's committed master data at once: records, thresholds,
// sellable flags, on-order quantities and the op checks.
func TestTwoServicesOverOneStoreSeeEachOthersWrites(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, false)
	a, b := For(st, Options{}), For(openStore(t, true), Options{})
	require.NotNil(t, a)
	require.NotNil(t, b)

	check := func(op protocol.Op) error {
		return st.View(func(tx store.Tx) error { return CheckOp(tx, "w", &op) })
	}
	require.NoError(t, check(protocol.Op{Kind: protocol.OpReceive, Location: "A-1", SKU: "MILK", Qty: 1}), "nothing defined yet")

	// Read on b before a writes: a cache in b would now hold "absent".
	_, ok := b.Threshold("w", "MILK")
	require.False(t, ok)
	require.True(t, b.Sellable("w", "Q-1"), "an unlisted location counts as sellable")
	require.Zero(t, b.OnOrder("w", "MILK"))

	require.NoError(t, a.PutSettings(ctx, "w", protocol.Settings{StrictCatalog: true}))
	require.NoError(t, a.PutItems(ctx, "w", []protocol.Item{{SKU: "MILK", Velocity: protocol.VelocityFast}}))
	require.NoError(t, a.PutLocations(ctx, "w", []protocol.Location{{Code: "A-1", Type: protocol.LocPick, Sellable: true}, {Code: "Q-1", Type: protocol.LocQuarantine}}))
	require.NoError(t, a.PutThresholds(ctx, "w", []protocol.Threshold{{SKU: "MILK", ReorderPoint: 5, ReorderQty: 20}}))
	require.NoError(t, a.PutPOs(ctx, "w", []protocol.PurchaseOrder{{ID: "P1", Lines: []protocol.POLine{{SKU: "MILK", Qty: 12}}}}))

	v, err := b.Get(ctx, "w", Items, "MILK")
	require.NoError(t, err)
	require.Equal(t, protocol.Item{SKU: "MILK", Velocity: protocol.VelocityFast}, v)
	th, ok := b.Threshold("w", "MILK")
	require.True(t, ok)
	require.Equal(t, int64(5), th.ReorderPoint)
	require.False(t, b.Sellable("w", "Q-1"))
	require.True(t, b.Sellable("w", "A-1"))
	require.Equal(t, int64(12), b.OnOrder("w", "MILK"))
	set, err := b.Settings(ctx, "w")
	require.NoError(t, err)
	require.True(t, set.StrictCatalog)
	require.NoError(t, check(protocol.Op{Kind: protocol.OpReceive, Location: "A-1", SKU: "MILK", Qty: 1}))
	require.ErrorContains(t, check(protocol.Op{Kind: protocol.OpReceive, Location: "A-1", SKU: "JAM", Qty: 1}), `unknown sku "JAM"`)
	require.ErrorContains(t, check(protocol.Op{Kind: protocol.OpReceive, Location: "B-9", SKU: "MILK", Qty: 1}), `unknown location "B-9"`)

	// And the other way round: b changes and deletes, a sees it.
	require.NoError(t, b.PutThresholds(ctx, "w", []protocol.Threshold{{SKU: "MILK", ReorderPoint: 9}}))
	require.NoError(t, b.PutLocations(ctx, "w", []protocol.Location{{Code: "Q-1", Type: protocol.LocQuarantine, Sellable: true}}))
	_, _, err = b.ClosePO(ctx, "w", "P1", "lead")
	require.NoError(t, err)
	require.NoError(t, b.Delete(ctx, "w", Items, "MILK"))
	th, ok = a.Threshold("w", "MILK")
	require.True(t, ok)
	require.Equal(t, int64(9), th.ReorderPoint)
	require.True(t, a.Sellable("w", "Q-1"))
	require.Zero(t, a.OnOrder("w", "MILK"), "closed on b")
	_, err = a.Get(ctx, "w", Items, "MILK")
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorContains(t, check(protocol.Op{Kind: protocol.OpReceive, Location: "A-1", SKU: "MILK", Qty: 1}), `unknown sku "MILK"`)
}

// TestNoticesAreSafeToRetry: an Update that runs twice takes a notice
// once and calls OnReorder once, after the commit.
func TestNoticesAreSafeToRetry(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, false)
	var alerts []ReorderAlert
	r := &storetest.Retrying{Records: st}
	md := New(r, Options{OnReorder: func(_ string, a ReorderAlert) { alerts = append(alerts, a) }})
	require.NoError(t, md.PutThresholds(ctx, "w", []protocol.Threshold{{SKU: "MILK", ReorderPoint: 5, ReorderQty: 20}}))
	require.NoError(t, md.PutPOs(ctx, "w", []protocol.PurchaseOrder{{ID: "P1", Lines: []protocol.POLine{{SKU: "MILK", Qty: 2}}}}))

	grew, err := md.HandleNotices(ctx, "w", "g", []protocol.Notice{
		{ID: "r1", Kind: protocol.NoticeReorder, SKU: "MILK", Qty: 3, Threshold: 5, At: 1000},
		{ID: "c1", Kind: protocol.NoticePOClose, Ref: "P1", At: 1000},
	})
	require.NoError(t, err)
	require.True(t, grew)
	require.Greater(t, r.Runs, 2)
	require.Len(t, alerts, 1)
	require.Equal(t, int64(20), alerts[0].SuggestedQty)
	as, err := md.ReorderAlerts(ctx, "w")
	require.NoError(t, err)
	require.Len(t, as, 1)
	require.Equal(t, []string{"g/r1"}, as[0].RaisedBy)
	ns, taken, err := md.Notices(ctx, "w")
	require.NoError(t, err)
	require.Len(t, ns, 2)
	require.Equal(t, map[string]bool{"r1": true, "c1": true}, taken)

	_, cs, err := md.ClosePO(ctx, "w", "P1", "lead")
	require.NoError(t, err)
	require.Empty(t, cs, "already closed by the notice")

	grew, err = md.HandleNotices(ctx, "w", "g", []protocol.Notice{{ID: "r1", Kind: protocol.NoticeReorder, SKU: "MILK", Qty: 3, Threshold: 5}})
	require.NoError(t, err)
	require.False(t, grew, "taken once")
	require.Len(t, alerts, 1)
}

// TestIntegrationMasterDataOnPostgres runs the master-data tests on
// PostgreSQL, each replica of the replica test on its own pool.
func TestIntegrationMasterDataOnPostgres(t *testing.T) {
	pgtest.DSN(t)
	old := openStore
	t.Cleanup(func() { openStore = old })
	dsns := map[string]string{}
	openStore = func(t *testing.T, again bool) testStore {
		t.Helper()
		dsn := dsns[t.Name()]
		if !again || dsn == "" {
			dsn = pgtest.FreshSchema(t)
			dsns[t.Name()] = dsn
		}
		st, err := postgres.Open(context.Background(), dsn, postgres.Options{MaxConns: 8})
		require.NoError(t, err)
		t.Cleanup(func() { st.Close() })
		return st
	}
	t.Run("Import", TestImportStreamsProgressAndSkipsBadRows)
	t.Run("DeleteAndPOs", TestDeleteSendsTombstoneAndPOsGoToTheDocksGateway)
	t.Run("Validation", TestValidation)
	t.Run("QuarantinedThenReapplied", TestUnknownSkuAndLocationAreQuarantinedThenReapplied)
	t.Run("TwoReplicas", TestTwoServicesOverOneStoreSeeEachOthersWrites)
	t.Run("NoticesRetry", TestNoticesAreSafeToRetry)
	t.Run("ShipNotice", TestShipNoticeWaitsForItsOpsAndShipsOnce)
	t.Run("OwnerColumns", TestOwnerColumnsRoundTrip)
	t.Run("GTINOfOwners", TestGTINSharedOnlyAcrossOwners)
	t.Run("StockRulesOwners", TestStockRulesKeepOwnersApart)
}
