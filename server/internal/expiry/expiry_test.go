package expiry

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
)

// TestALotNearsThenCrossesItsExpiry: with the clock five days before a
// lot's expiry the sweep raises its near-expiry alert once and expires
// nothing; once the clock passes the expiry the lot's available and held
// keys become expired by one server-origin status op each (audited,
// sent downstream to the gateways); other lots stay as they are.
func TestALotNearsThenCrossesItsExpiry(t *testing.T) {
	ctx := context.Background()
	st, err := badger.Open(badger.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	recv := func(seq uint64, loc, lot, exp string, qty int64, status protocol.StockStatus) protocol.Op {
		return protocol.Op{Seq: seq, HLC: protocol.MakeHLC(int64(seq), 0), Kind: protocol.OpReceive, Location: loc, SKU: "MILK", Lot: lot, Expiry: exp, Qty: qty, Status: status}
	}
	_, err = st.ApplyBatch(ctx, "w", "dock", &protocol.OpBatch{First: 1, Last: 3, Ops: []protocol.Op{
		recv(1, "A-1", "L1", "2026-03-05", 4, protocol.StatusAvailable),
		recv(2, "RCV", "L1", "2026-03-05", 1, protocol.StatusHold),
		recv(3, "A-1", "L2", "2026-09-01", 6, protocol.StatusAvailable),
	}})
	require.NoError(t, err)

	now := time.Date(2026, 2, 28, 9, 0, 0, 0, time.UTC)
	var alerts []Lot
	var issued int
	s := New(Config{Store: st, Now: func() time.Time { return now }, NearDays: func(string) int { return 5 },
		Alert: func(l Lot) error { alerts = append(alerts, l); return nil }, Issued: func(string, store.Result) { issued++ }})

	res, err := s.Sweep(ctx)
	require.NoError(t, err)
	require.Empty(t, res.Expired)
	require.Equal(t, []Lot{{Warehouse: "w", SKU: "MILK", Lot: "L1", Expiry: "2026-03-05", OnHand: 5, DaysLeft: 5}}, alerts)
	near, err := s.NearExpiry(ctx, "w")
	require.NoError(t, err)
	require.Equal(t, alerts, near)
	_, err = s.Sweep(ctx)
	require.NoError(t, err)
	require.Len(t, alerts, 1, "one alert per lot")

	now = time.Date(2026, 3, 5, 23, 0, 0, 0, time.UTC) // the expiry day itself: still good
	res, err = s.Sweep(ctx)
	require.NoError(t, err)
	require.Empty(t, res.Expired)

	now = time.Date(2026, 3, 6, 0, 30, 0, 0, time.UTC)
	res, err = s.Sweep(ctx)
	require.NoError(t, err)
	require.Len(t, res.Expired, 2)
	require.Equal(t, 2, issued)
	rows, err := st.Stock(ctx, store.StockQuery{Warehouse: "w"})
	require.NoError(t, err)
	got := map[ledger.Key]int64{}
	for _, r := range rows {
		if r.OnHand != 0 {
			got[r.Key()] = r.OnHand
		}
	}
	k := func(loc, lot string, st protocol.StockStatus) ledger.Key {
		return ledger.Key{WH: "w", Location: loc, SKU: "MILK", Lot: lot, Status: st}
	}
	require.Equal(t, map[ledger.Key]int64{k("A-1", "L1", protocol.StatusExpired): 4, k("RCV", "L1", protocol.StatusExpired): 1,
		k("A-1", "L2", protocol.StatusAvailable): 6}, got)
	hs, err := st.History(ctx, k("A-1", "L1", protocol.StatusExpired))
	require.NoError(t, err)
	require.Len(t, hs, 1)
	require.Equal(t, protocol.ServerOrigin, hs[0].Gateway)
	require.Equal(t, "EXPIRED", hs[0].Reason)
	down, err := st.DownFrom(ctx, "w", "dock", 0, 100)
	require.NoError(t, err)
	expired := 0
	for _, it := range down.Items {
		if it.Kind == protocol.DownStock {
			var v protocol.StockValue
			require.NoError(t, protocol.Unmarshal(it.Body, &v))
			if v.Status == protocol.StatusExpired {
				expired++
			}
		}
	}
	require.Equal(t, 2, expired, "the gateways get the expired keys")

	res, err = s.Sweep(ctx)
	require.NoError(t, err)
	require.Empty(t, res.Expired, "an expired key is not expired again")
	near, err = s.NearExpiry(ctx, "w")
	require.NoError(t, err)
	require.Empty(t, near)
}
