package routing

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/masterdata"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
	"github.com/shelfsync/shelfsync/server/internal/store/pgtest"
	"github.com/shelfsync/shelfsync/server/internal/store/postgres"
)

type fixture struct {
	st testStore
	md *masterdata.Service
	rt *Service
}

// testStore is a backend with records and actions.
type testStore interface {
	store.Store
	store.Records
	store.Actions
}

// openStore opens an empty store, closed at cleanup: Badger here,
// PostgreSQL under TestIntegrationRoutingOnPostgres.
var openStore = func(t *testing.T) testStore {
	st, err := badger.Open(badger.Options{InMemory: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return st
}

// TestIntegrationRoutingOnPostgres runs the routing tests on PostgreSQL.
func TestIntegrationRoutingOnPostgres(t *testing.T) {
	pgtest.DSN(t)
	old := openStore
	t.Cleanup(func() { openStore = old })
	openStore = func(t *testing.T) testStore {
		st, err := postgres.Open(context.Background(), pgtest.FreshSchema(t), postgres.Options{MaxConns: 8})
		require.NoError(t, err)
		t.Cleanup(func() { st.Close() })
		return st
	}
	t.Run("FEFOShortPickReroutes", TestRouteFEFOThenShortPickReroutes)
	t.Run("FIFOAndTargets", TestRouteFIFOAndTargets)
	t.Run("POCloseShorts", TestPOCloseRaisesShorts)
	t.Run("NoticeWaits", TestNoticeWaitsForItsOps)
	t.Run("RetrySafe", TestRouteOrderIsSafeToRetry)
	t.Run("CancelTasks", TestCancelledOrderCancelsItsPickTasks)
	t.Run("PackStations", TestClosedPickTasksReachThePackStations)
	t.Run("ShortRecorded", TestAShortPickIsRecordedUntilItsActionIsDone)
}

func setup(t *testing.T) *fixture {
	t.Helper()
	st := openStore(t)
	md, rt := Setup(st, masterdata.Options{})
	rt.SetClock(func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) })
	ctx := context.Background()
	require.NoError(t, md.PutLocations(ctx, "w", []protocol.Location{
		{Code: "RCV", Type: protocol.LocDock, Zone: "DOCK"},
		{Code: "A-01", Type: protocol.LocPick, Zone: "Z1", Rank: 1, Sellable: true},
		{Code: "A-02", Type: protocol.LocPick, Zone: "Z1", Rank: 2, Sellable: true},
		{Code: "B-01", Type: protocol.LocStorage, Zone: "Z2", Rank: 5, Sellable: true},
	}))
	require.NoError(t, md.PutZones(ctx, "w", []masterdata.Zone{{Zone: "Z1", Gateway: "pick1"}, {Zone: "Z2", Gateway: "pick2"}, {Zone: "DOCK", Gateway: "dock1"}}))
	require.NoError(t, md.PutItems(ctx, "w", []protocol.Item{
		{SKU: "MILK", TrackExpiry: true}, {SKU: "BOLT"}, {SKU: "YOGURT", TrackExpiry: true, MinShelfDays: 20},
	}))
	return &fixture{st: st, md: md, rt: rt}
}

// receive issues a server-origin receive at ms (the HLC orders FIFO).
func (f *fixture) receive(t *testing.T, ms int64, loc, sku, lot, expiry string, qty int64, refs *protocol.Refs) {
	t.Helper()
	_, _, err := f.st.IssueOp(context.Background(), "w", protocol.Op{HLC: protocol.MakeHLC(ms, 0), Kind: protocol.OpReceive,
		Location: loc, SKU: sku, Lot: lot, Expiry: expiry, Qty: qty, Refs: refs})
	require.NoError(t, err)
}

type taskKey struct {
	Loc, Lot string
	Qty      int64
}

func keys(ts []protocol.Task) []taskKey {
	var out []taskKey
	for _, t := range ts {
		out = append(out, taskKey{t.Location, t.Lot, t.Qty})
	}
	return out
}

func TestRouteFEFOThenShortPickReroutes(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.receive(t, 1000, "A-01", "MILK", "L2", "2026-06-01", 5, nil)
	f.receive(t, 2000, "B-01", "MILK", "L1", "2026-05-01", 3, nil) // later in, but expires first
	f.receive(t, 3000, "RCV", "MILK", "L0", "2026-04-01", 9, nil)  // at the dock: not pickable
	f.receive(t, 4000, "A-02", "MILK", "L1", "", 1, nil)           // L1's expiry comes from its receipt at B-01
	_, err := f.st.PutOrder(ctx, store.Order{Warehouse: "w", ID: "O1", Lines: []store.OrderLine{{Line: 1, SKU: "MILK", Qty: 8}}})
	require.NoError(t, err)

	res, err := f.rt.RouteOrder(ctx, "w", "O1")
	require.NoError(t, err)
	require.Equal(t, []taskKey{{"B-01", "L1", 3}, {"A-02", "L1", 1}, {"A-01", "L2", 4}}, keys(res.Tasks))
	require.Equal(t, "2026-05-01", res.Tasks[0].Expiry)
	require.Empty(t, res.Unrouted)

	again, err := f.rt.RouteOrder(ctx, "w", "O1")
	require.NoError(t, err)
	require.Empty(t, again.Tasks, "open tasks cover the line")
	require.Equal(t, int64(8), again.Open)

	// The gateway of zone Z2 closes its task short (1 of 3): the remainder
	// is routed again, away from B-01.
	_, err = f.md.HandleNotices(ctx, "w", "pick2", []protocol.Notice{{ID: "n1", Kind: protocol.NoticeTaskClose, Ref: res.Tasks[0].ID, Qty: 1}})
	require.NoError(t, err)
	var tasks []protocol.Task
	require.NoError(t, f.st.View(func(tx store.Tx) error { tasks, err = tx.Tasks("w"); return err }))
	status := map[string]string{}
	for _, t := range tasks {
		status[t.ID] = t.Status
	}
	require.Equal(t, "short", status[res.Tasks[0].ID])
	require.Len(t, tasks, 4, "A-01 still had 1 unit to give")
	var last protocol.Task
	for _, x := range tasks {
		if x.ID == "pick-O1-1-4" {
			last = x
		}
	}
	require.Equal(t, taskKey{"A-01", "L2", 1}, taskKey{last.Location, last.Lot, last.Qty}, "no picks were applied: 3 units still owed, 1 routable")
}

func TestRouteFIFOAndTargets(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.receive(t, 1000, "B-01", "BOLT", "", "", 4, nil) // first in
	f.receive(t, 2000, "A-01", "BOLT", "", "", 4, nil)
	_, err := f.st.PutOrder(ctx, store.Order{Warehouse: "w", ID: "O2", Lines: []store.OrderLine{{Line: 1, SKU: "BOLT", Qty: 6}, {Line: 2, SKU: "NONE", Qty: 1}}})
	require.NoError(t, err)
	res, err := f.rt.RouteOrder(ctx, "w", "O2")
	require.NoError(t, err)
	require.Equal(t, []taskKey{{"B-01", "", 4}, {"A-01", "", 2}}, keys(res.Tasks))
	require.Equal(t, map[uint32]int64{2: 1}, res.Unrouted)

	read, err := f.st.DownFrom(ctx, "w", "pick2", 0, 1000)
	require.NoError(t, err)
	var sawB, sawA bool
	for _, it := range read.Items {
		if it.Kind != protocol.DownTask {
			continue
		}
		var tk protocol.Task
		require.NoError(t, protocol.Unmarshal(it.Body, &tk))
		sawB = sawB || tk.Location == "B-01"
		sawA = sawA || tk.Location == "A-01"
	}
	require.True(t, sawB, "zone Z2's gateway gets B-01's task")
	require.False(t, sawA, "but not zone Z1's")

	_, err = f.rt.RouteOrder(ctx, "w", "nope")
	require.ErrorIs(t, err, ErrNoOrder)
}

func TestPOCloseRaisesShorts(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	require.NoError(t, f.md.PutPOs(ctx, "w", []protocol.PurchaseOrder{{ID: "P1", Dock: "RCV", Lines: []protocol.POLine{{SKU: "MILK", Qty: 5}, {SKU: "BOLT", Qty: 2}}}}))
	f.receive(t, 1000, "RCV", "MILK", "L1", "2026-06-01", 3, &protocol.Refs{PO: "P1", POLine: 1})
	f.receive(t, 1001, "RCV", "JAM", "", "", 1, &protocol.Refs{PO: "P1"})
	_, err := f.md.HandleNotices(ctx, "w", "dock1", []protocol.Notice{{ID: "c1", Kind: protocol.NoticePOClose, Ref: "P1", Seq: 0}})
	require.NoError(t, err)
	v, err := f.md.Get(ctx, "w", masterdata.POs, "P1")
	require.NoError(t, err)
	po := v.(masterdata.PO)
	require.Equal(t, "closed", po.Status)
	require.Equal(t, "dock1", po.ClosedBy)
	require.Equal(t, map[uint32]int64{1: 3, 2: 0}, po.Received)
	require.Equal(t, map[string]int64{"JAM": 1}, po.Unexpected)
	cs, err := f.st.Conflicts(ctx, conflicts.Query{Warehouse: "w", Kind: conflicts.KindReceiptDiscrepancy})
	require.NoError(t, err)
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	require.Equal(t, []string{"rcpt-short:w/P1/1", "rcpt-short:w/P1/2"}, ids)

	// The notice is taken once, however often the gateway repeats it.
	grew, err := f.md.HandleNotices(ctx, "w", "dock1", []protocol.Notice{{ID: "c1", Kind: protocol.NoticePOClose, Ref: "P1"}})
	require.NoError(t, err)
	require.False(t, grew)
	read, err := f.st.DownFrom(ctx, "w", "dock1", 0, 1000)
	require.NoError(t, err)
	acks := 0
	for _, it := range read.Items {
		if it.Kind == protocol.DownNoticeAck {
			acks++
		}
	}
	require.Equal(t, 1, acks)
}

func TestNoticeWaitsForItsOps(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	require.NoError(t, f.md.PutPOs(ctx, "w", []protocol.PurchaseOrder{{ID: "P1", Lines: []protocol.POLine{{SKU: "MILK", Qty: 1}}}}))
	grew, err := f.md.HandleNotices(ctx, "w", "g", []protocol.Notice{{ID: "c1", Kind: protocol.NoticePOClose, Ref: "P1", Seq: 1}})
	require.NoError(t, err)
	require.False(t, grew, "op 1 of g is not applied yet")
	_, err = f.st.ApplyBatch(ctx, "w", "g", &protocol.OpBatch{First: 1, Last: 1, Ops: []protocol.Op{{Seq: 1, HLC: 5, Kind: protocol.OpReceive, Location: "RCV", SKU: "MILK", Qty: 1, Refs: &protocol.Refs{PO: "P1", POLine: 1}}}})
	require.NoError(t, err)
	grew, err = f.md.Applied(ctx, "w", "g", 1)
	require.NoError(t, err)
	require.True(t, grew)
	cs, err := f.st.Conflicts(ctx, conflicts.Query{Warehouse: "w", Kind: conflicts.KindReceiptDiscrepancy})
	require.NoError(t, err)
	require.Empty(t, cs, "complete receipt")
}

// TestRouteNeverAnExpiredOrShortLivedLot: FEFO skips a lot past its expiry
// (the clock says 2026-03-01) and one expiring within the item's minimum
// remaining shelf life (20 days: before 2026-03-21), even though each
// would come first; a lot on hold is not routed either.
func TestRouteNeverAnExpiredOrShortLivedLot(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.receive(t, 1000, "A-01", "YOGURT", "OLD", "2026-02-27", 5, nil)
	f.receive(t, 2000, "A-02", "YOGURT", "SOON", "2026-03-15", 5, nil)
	f.receive(t, 3000, "B-01", "YOGURT", "GOOD", "2026-04-30", 5, nil)
	_, _, err := f.st.IssueOp(ctx, "w", protocol.Op{HLC: protocol.MakeHLC(4000, 0), Kind: protocol.OpReceive, Location: "A-01", SKU: "YOGURT",
		Lot: "HELD", Expiry: "2026-04-01", Qty: 5, Status: protocol.StatusHold})
	require.NoError(t, err)
	_, err = f.st.PutOrder(ctx, store.Order{Warehouse: "w", ID: "O9", Lines: []store.OrderLine{{Line: 1, SKU: "YOGURT", Qty: 8}}})
	require.NoError(t, err)
	res, err := f.rt.RouteOrder(ctx, "w", "O9")
	require.NoError(t, err)
	require.Equal(t, []taskKey{{"B-01", "GOOD", 5}}, keys(res.Tasks))
	require.NotEmpty(t, res.Unrouted, "3 units have no routable lot")
}

// TestRouteChannelMinimumShelfLife: an order of a channel with its own
// minimum shelf life (stricter than the item's) is routed only to lots
// with that much life left; another channel's order takes FEFO's first.
func TestRouteChannelMinimumShelfLife(t *testing.T) {
	f := setup(t) // today is 2026-03-01
	ctx := context.Background()
	f.rt.SetChannelShelfDays(func(channel string) int {
		if channel == "fresh" {
			return 60
		}
		return 0
	})
	f.receive(t, 1000, "A-01", "MILK", "L1", "2026-04-01", 5, nil) // 31 days left
	f.receive(t, 2000, "A-02", "MILK", "L2", "2026-06-01", 5, nil) // 92 days left
	for _, o := range []store.Order{
		{Warehouse: "w", ID: "F1", Channel: "fresh", Lines: []store.OrderLine{{Line: 1, SKU: "MILK", Qty: 7}}},
		{Warehouse: "w", ID: "W1", Channel: "web", Lines: []store.OrderLine{{Line: 1, SKU: "MILK", Qty: 2}}},
	} {
		_, err := f.st.PutOrder(ctx, o)
		require.NoError(t, err)
	}
	res, err := f.rt.RouteOrder(ctx, "w", "F1")
	require.NoError(t, err)
	require.Equal(t, []taskKey{{"A-02", "L2", 5}}, keys(res.Tasks), "only the lot with 60 days left")
	require.Equal(t, map[uint32]int64{1: 2}, res.Unrouted, "the short-dated lot does not make up the rest")
	res, err = f.rt.RouteOrder(ctx, "w", "W1")
	require.NoError(t, err)
	require.Equal(t, []taskKey{{"A-01", "L1", 2}}, keys(res.Tasks), "FEFO for a channel without a minimum")
}

// The notice that closes a pick task short records the short pick in the
// transaction that takes it; the action marks its units taken once, and
// the record stays until the action says it is done (so a server that
// died in between acts on it at its next start).
func TestAShortPickIsRecordedUntilItsActionIsDone(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.receive(t, 1000, "A-01", "BOLT", "", "", 5, nil)
	_, err := f.st.PutOrder(ctx, store.Order{Warehouse: "w", ID: "O1", Lines: []store.OrderLine{{Line: 1, SKU: "BOLT", Qty: 4}}})
	require.NoError(t, err)
	res, err := f.rt.RouteOrder(ctx, "w", "O1")
	require.NoError(t, err)
	require.Len(t, res.Tasks, 1)
	_, err = f.md.HandleNotices(ctx, "w", "pick1", []protocol.Notice{
		{ID: "n1", Kind: protocol.NoticeTaskClose, Ref: res.Tasks[0].ID, Qty: 1},
	})
	require.NoError(t, err)
	sps, err := f.md.PendingShorts(ctx)
	require.NoError(t, err)
	require.Len(t, sps, 1)
	require.Equal(t, "w", sps[0].Warehouse)
	require.Equal(t, res.Tasks[0].ID, sps[0].Task.ID)
	require.Equal(t, int64(1), sps[0].Task.Picked)
	require.Equal(t, "short", sps[0].Task.Status)
	require.False(t, sps[0].Taken)

	first, err := f.md.ShortTaken(ctx, "w", res.Tasks[0].ID)
	require.NoError(t, err)
	require.True(t, first)
	first, err = f.md.ShortTaken(ctx, "w", res.Tasks[0].ID)
	require.NoError(t, err)
	require.False(t, first, "the units are taken off at most once")
	require.NoError(t, f.md.ShortDone(ctx, "w", res.Tasks[0].ID))
	sps, err = f.md.PendingShorts(ctx)
	require.NoError(t, err)
	require.Empty(t, sps)

	// A task closed in full records nothing.
	_, err = f.st.PutOrder(ctx, store.Order{Warehouse: "w", ID: "O2", Lines: []store.OrderLine{{Line: 1, SKU: "BOLT", Qty: 2}}})
	require.NoError(t, err)
	res, err = f.rt.RouteOrder(ctx, "w", "O2")
	require.NoError(t, err)
	require.Len(t, res.Tasks, 1)
	_, err = f.md.HandleNotices(ctx, "w", "pick1", []protocol.Notice{
		{ID: "n2", Kind: protocol.NoticeTaskClose, Ref: res.Tasks[0].ID, Qty: res.Tasks[0].Qty},
	})
	require.NoError(t, err)
	sps, err = f.md.PendingShorts(ctx)
	require.NoError(t, err)
	require.Empty(t, sps)
}
