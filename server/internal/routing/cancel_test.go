package routing

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/masterdata"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// TestCancelledOrderCancelsItsPickTasks: cancelling an order's tasks
// marks each of them cancelled — the open one and the one already picked,
// which keeps what was picked — and sends each to its zone's gateway; a
// short pick reported afterwards changes nothing more, and another
// order's task is left alone.
func TestCancelledOrderCancelsItsPickTasks(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.receive(t, 1000, "B-01", "BOLT", "", "", 2, nil)
	f.receive(t, 2000, "A-01", "BOLT", "", "", 4, nil)
	for _, id := range []string{"O1", "O2"} {
		_, err := f.st.PutOrder(ctx, store.Order{Warehouse: "w", ID: id, Lines: []store.OrderLine{{Line: 1, SKU: "BOLT", Qty: 3}}})
		require.NoError(t, err)
	}
	res, err := f.rt.RouteOrder(ctx, "w", "O1")
	require.NoError(t, err)
	require.Equal(t, []taskKey{{"B-01", "", 2}, {"A-01", "", 1}}, keys(res.Tasks))
	_, err = f.rt.RouteOrder(ctx, "w", "O2")
	require.NoError(t, err)
	_, err = f.md.HandleNotices(ctx, "w", "pick2", []protocol.Notice{{ID: "n1", Kind: protocol.NoticeTaskClose, Ref: res.Tasks[0].ID, Qty: 2}})
	require.NoError(t, err)

	n, err := f.rt.CancelOrderTasks(ctx, "w", "O1")
	require.NoError(t, err)
	require.Equal(t, 2, n)
	n, err = f.rt.CancelOrderTasks(ctx, "w", "O1")
	require.NoError(t, err)
	require.Zero(t, n, "once")

	_, err = f.md.HandleNotices(ctx, "w", "pick1", []protocol.Notice{{ID: "n2", Kind: protocol.NoticeTaskClose, Ref: res.Tasks[1].ID, Qty: 0}})
	require.NoError(t, err)
	var tasks []protocol.Task
	require.NoError(t, f.st.View(func(tx store.Tx) error { tasks, err = tx.Tasks("w"); return err }))
	got := map[string]protocol.Task{}
	for _, tk := range tasks {
		got[tk.ID] = tk
	}
	require.Equal(t, "cancelled", got[res.Tasks[0].ID].Status)
	require.Equal(t, int64(2), got[res.Tasks[0].ID].Picked, "what was picked stays on the task")
	require.Equal(t, "cancelled", got[res.Tasks[1].ID].Status, "a close after the cancel does not reopen or short it")
	for _, tk := range tasks {
		if tk.Order == "O2" {
			require.Equal(t, "open", tk.Status, "another order's task")
		}
	}

	for gw, loc := range map[string]string{"pick2": "B-01", "pick1": "A-01"} {
		read, err := f.st.DownFrom(ctx, "w", gw, 0, 1000)
		require.NoError(t, err)
		var last protocol.Task
		for _, it := range read.Items {
			var tk protocol.Task
			if it.Kind == protocol.DownTask && protocol.Unmarshal(it.Body, &tk) == nil && tk.Order == "O1" && tk.Location == loc {
				last = tk
			}
		}
		require.Equal(t, "cancelled", last.Status, "%s gets its task cancelled", gw)
	}
}

// TestClosedPickTasksReachThePackStations: a pick task goes to its zone's
// gateway only while open; once closed (done, short, cancelled) it also
// goes to the gateways serving pack locations, so a pack station knows
// what every zone picked for an order — and the zone's gateway keeps
// getting its own copy.
func TestClosedPickTasksReachThePackStations(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	require.NoError(t, f.md.PutLocations(ctx, "w", []protocol.Location{{Code: "PACK-1", Type: protocol.LocPack, Zone: "PACK"}}))
	require.NoError(t, f.md.PutZones(ctx, "w", []masterdata.Zone{{Zone: "PACK", Gateway: "pack1"}}))
	f.receive(t, 1000, "B-01", "BOLT", "", "", 2, nil)
	f.receive(t, 2000, "A-01", "BOLT", "", "", 4, nil)
	_, err := f.st.PutOrder(ctx, store.Order{Warehouse: "w", ID: "O1", Lines: []store.OrderLine{{Line: 1, SKU: "BOLT", Qty: 3}}})
	require.NoError(t, err)
	res, err := f.rt.RouteOrder(ctx, "w", "O1")
	require.NoError(t, err)
	require.Len(t, res.Tasks, 2)
	tasksAt := func(gw string) map[string]protocol.Task {
		read, err := f.st.DownFrom(ctx, "w", gw, 0, 1000)
		require.NoError(t, err)
		out := map[string]protocol.Task{}
		for _, it := range read.Items {
			var tk protocol.Task
			if it.Kind == protocol.DownTask && protocol.Unmarshal(it.Body, &tk) == nil {
				out[tk.ID] = tk
			}
		}
		return out
	}
	require.Empty(t, tasksAt("pack1"), "open tasks are not for the pack station")

	_, err = f.md.HandleNotices(ctx, "w", "pick2", []protocol.Notice{{ID: "n1", Kind: protocol.NoticeTaskClose, Ref: res.Tasks[0].ID, Qty: 2}})
	require.NoError(t, err)
	at := tasksAt("pack1")
	require.Len(t, at, 1)
	require.Equal(t, "done", at[res.Tasks[0].ID].Status)
	require.Equal(t, int64(2), at[res.Tasks[0].ID].Picked)
	require.Equal(t, "done", tasksAt("pick2")[res.Tasks[0].ID].Status, "the zone's gateway keeps its copy")

	_, err = f.rt.CancelOrderTasks(ctx, "w", "O1")
	require.NoError(t, err)
	at = tasksAt("pack1")
	require.Len(t, at, 2)
	for _, tk := range at {
		require.Equal(t, "cancelled", tk.Status)
	}
	require.Equal(t, "cancelled", tasksAt("pick1")[res.Tasks[1].ID].Status)
	require.Equal(t, "cancelled", tasksAt("pick2")[res.Tasks[0].ID].Status)
}
