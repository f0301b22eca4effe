package alerts

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
)

// A short pick raises one alert per bin, which stands while the bin's
// count task is open and is cleared once it is done; the bin's next short
// pick raises again.
func TestAShortPickAlertStandsUntilTheBinIsCounted(t *testing.T) {
	st, err := badger.Open(badger.Options{InMemory: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	h := newHarnessOn(st, nil)
	ctx := context.Background()
	putTask := func(id, status string) {
		require.NoError(t, st.Update(func(tx store.Tx) error {
			return tx.PutTask("wh1", "g1", protocol.Task{ID: id, Kind: "count", Location: "BIN-1", Status: status})
		}))
	}
	putTask("count-BIN-1-1", "open")
	sp := ShortPick{Warehouse: "wh1", Location: "BIN-1", SKU: "A", Task: "pick-o-1-1", Order: "o", Asked: 4, Picked: 1,
		CountTask: "count-BIN-1-1", Outcome: "3 unit(s) of line 1 backordered"}
	a, raised, err := h.svc.RaiseShortPick(sp)
	require.NoError(t, err)
	require.True(t, raised)
	require.Equal(t, KindShortPick, a.Kind)
	require.Equal(t, "pick task pick-o-1-1 (order o) at BIN-1 picked 1 of 4 × A; the 3 missing left available-to-sell, count task count-BIN-1-1 sent; 3 unit(s) of line 1 backordered", a.Message)
	require.True(t, h.svc.ShortPicksStanding())

	_, raised, err = h.svc.RaiseShortPick(sp)
	require.NoError(t, err)
	require.False(t, raised, "one standing alert per bin")

	n, err := h.svc.CheckShortPicks(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "the count task is still open")
	got, err := h.svc.Get(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, StatusOpen, got.Status)

	putTask("count-BIN-1-1", "done")
	n, err = h.svc.CheckShortPicks(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	got, err = h.svc.Get(ctx, a.ID)
	require.NoError(t, err)
	require.Equal(t, StatusCleared, got.Status, "the bin was counted: the cause is gone")
	require.False(t, h.svc.ShortPicksStanding())

	putTask("count-BIN-1-2", "open")
	sp.CountTask = "count-BIN-1-2"
	b, raised, err := h.svc.RaiseShortPick(sp)
	require.NoError(t, err)
	require.True(t, raised, "a new short pick at the counted bin raises again")
	require.NotEqual(t, a.ID, b.ID)
}
