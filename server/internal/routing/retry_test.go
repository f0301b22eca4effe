package routing

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/storetest"
)

func TestRouteOrderIsSafeToRetry(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.receive(t, 1000, "B-01", "BOLT", "", "", 4, nil)
	f.receive(t, 2000, "A-01", "BOLT", "", "", 4, nil)
	_, err := f.st.PutOrder(ctx, store.Order{Warehouse: "w", ID: "O3", Lines: []store.OrderLine{{Line: 1, SKU: "BOLT", Qty: 6}, {Line: 2, SKU: "NONE", Qty: 1}}})
	require.NoError(t, err)
	rt := New(&storetest.Retrying{Records: f.st}, StoreOrders(f.st), nil)
	res, err := rt.RouteOrder(ctx, "w", "O3")
	require.NoError(t, err)
	require.Equal(t, []taskKey{{"B-01", "", 4}, {"A-01", "", 2}}, keys(res.Tasks))
	require.Equal(t, int64(6), res.Open)
	require.Equal(t, map[uint32]int64{2: 1}, res.Unrouted)
	var tasks []any
	require.NoError(t, f.st.View(func(tx store.Tx) error {
		ts, err := tx.Tasks("w")
		for _, x := range ts {
			tasks = append(tasks, x.ID)
		}
		return err
	}))
	require.Equal(t, []any{"pick-O3-1-1", "pick-O3-1-2"}, tasks)

	ct, err := rt.CountTask(ctx, "w", "A-01", "check")
	require.NoError(t, err)
	require.Equal(t, "count-A-01-1", ct.ID)
}
