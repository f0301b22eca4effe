package app

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/dashboard"
	"github.com/shelfsync/shelfsync/server/internal/events"
)

// The live feed shows a batch to a dashboard that is open, and builds
// nothing while none is; the per-gateway series count the batch either way.
func TestDashboardFeedOnlyWhileWatched(t *testing.T) {
	inv := &inventory{hub: dashboard.NewHub(), series: dashboard.NewSeries(0, nil)}
	ev := func(applied int) events.Event {
		return events.Event{Batches: []events.Batch{{Warehouse: "w1", Gateway: "g1", WM: uint64(applied), Applied: applied,
			Changes: []ledger.Change{{Key: ledger.Key{WH: "w1", Location: "A", SKU: "s"}, After: int64(applied)}}}}}
	}
	inv.followDashboard(context.Background(), ev(2)) // nobody watching
	msgs, stop := inv.hub.Subscribe()
	defer stop()
	inv.followDashboard(context.Background(), ev(3))
	m := <-msgs
	require.Equal(t, "batch", m.Type)
	var got struct {
		Applied int `json:"applied"`
		Changes []struct {
			OnHand int64 `json:"on_hand"`
		} `json:"changes"`
	}
	require.NoError(t, json.Unmarshal(m.Data, &got))
	require.Equal(t, 3, got.Applied, "the first event the dashboard sees is the one after it opened")
	require.Equal(t, int64(3), got.Changes[0].OnHand)
	require.Empty(t, msgs, "one batch, one event")
	win := inv.series.Window("w1")
	require.Len(t, win, 1)
	var applied int64
	for _, p := range win[0].Points {
		applied += p.Applied
	}
	require.Equal(t, int64(5), applied, "the series counts batches whether or not a dashboard is open")
}
