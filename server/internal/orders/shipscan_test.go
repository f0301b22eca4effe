package orders

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/server/internal/store"
)

// TestShipScannedShipsOnceWithItsLabel: a ship by scan is the ship API
// plus the outbound label: one order.shipped change (webhook) with the
// label, a replay changes nothing, and a cancelled order is refused with
// its status.
func TestShipScannedShipsOnceWithItsLabel(t *testing.T) {
	var events []string
	var labels []string
	f := newFixture(t, "", Config{OnOrderTx: func(_ store.Tx, o Order, ev string) error {
		events, labels = append(events, ev), append(labels, o.SSCC)
		return nil
	}})
	f.receive("wh1", "BIN-1", "A", 10)
	o, _, err := f.svc.Create(f.ctx, newOrder("1", Line{SKU: "A", Qty: 3}))
	require.NoError(t, err)
	f.pick("wh1", "BIN-1", "A", 3, o.ID, 1)

	shipped, err := f.svc.ShipScanned(f.ctx, "wh1", o.ID, "106141412345678908", "pack1/s1")
	require.NoError(t, err)
	require.Equal(t, StatusShipped, shipped.Status)
	require.Equal(t, "106141412345678908", shipped.SSCC)
	require.Equal(t, "pack1/s1", shipped.ShippedBy)
	require.Equal(t, int64(3), shipped.Lines[0].Picked)
	require.Equal(t, int64(7), f.ats("wh1", "A").Available)

	again, err := f.svc.ShipScanned(f.ctx, "wh1", o.ID, "106141412345678908", "pack1/s1")
	require.NoError(t, err, "a repeated notice is a replay")
	require.Equal(t, StatusShipped, again.Status)
	got, err := f.svc.Get(f.ctx, "wh1", o.ID)
	require.NoError(t, err)
	require.Equal(t, "106141412345678908", got.SSCC, "stored")

	c, _, err := f.svc.Create(f.ctx, newOrder("2", Line{SKU: "A", Qty: 1}))
	require.NoError(t, err)
	_, err = f.svc.Cancel(f.ctx, "wh1", c.ID)
	require.NoError(t, err)
	refused, err := f.svc.ShipScanned(f.ctx, "wh1", c.ID, "", "pack1/s1")
	require.ErrorIs(t, err, ErrConflict)
	require.Equal(t, StatusCancelled, refused.Status, "the cancel stands")
	_, err = f.svc.ShipScanned(f.ctx, "wh1", "nope", "", "pack1/s1")
	require.ErrorIs(t, err, ErrNotFound)

	require.Equal(t, []string{"created", "shipped", "created", "cancelled"}, events, "one shipped event")
	require.Equal(t, []string{"", "106141412345678908", "", ""}, labels)
}
