package expiry

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/alerts"
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
	real := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC) // the op stamps' clock, not the shifted date
	var issued int
	var published []alerts.Alert
	al := alerts.New(alerts.Config{Records: st, Publish: func(a alerts.Alert) { published = append(published, a) }})
	s := New(Config{Store: st, Today: func() time.Time { return now }, HLC: func() protocol.HLC { return protocol.MakeHLC(real.UnixMilli(), 0) },
		NearDays: func(string) int { return 5 }, Alerts: al, Issued: func(string, store.Result) { issued++ }})

	res, err := s.Sweep(ctx)
	require.NoError(t, err)
	require.Empty(t, res.Expired)
	wantLot := Lot{Warehouse: "w", SKU: "MILK", Lot: "L1", Expiry: "2026-03-05", OnHand: 5, DaysLeft: 5}
	require.Equal(t, []Lot{wantLot}, res.Alerted)
	near, err := s.NearExpiry(ctx, "w")
	require.NoError(t, err)
	require.Equal(t, res.Alerted, near)
	standing, _, err := al.List(ctx, alerts.Query{Kind: alerts.KindNearExpiry, Standing: true})
	require.NoError(t, err)
	require.Len(t, standing, 1)
	require.Contains(t, standing[0].Message, "lot L1 of MILK")
	require.Equal(t, alerts.StatusOpen, standing[0].Status)
	_, err = al.Ack(ctx, standing[0].ID, "alice", "moving it to the front")
	require.NoError(t, err)
	res, err = s.Sweep(ctx)
	require.NoError(t, err)
	require.Empty(t, res.Alerted, "one alert per lot")
	require.Empty(t, res.Cleared, "the lot is still near its expiry")

	now = time.Date(2026, 3, 5, 23, 0, 0, 0, time.UTC) // the expiry day itself: still good
	res, err = s.Sweep(ctx)
	require.NoError(t, err)
	require.Empty(t, res.Expired)

	now = time.Date(2026, 3, 6, 0, 30, 0, 0, time.UTC)
	res, err = s.Sweep(ctx)
	require.NoError(t, err)
	require.Len(t, res.Expired, 2)
	require.Equal(t, 2, issued)
	for _, op := range res.Expired {
		require.Equal(t, real.UnixMilli(), op.HLC.Millis(), "the op is stamped by the real clock, not the shifted date")
	}
	require.Len(t, res.Cleared, 1, "the near-expiry alert clears when its lot expires")
	cleared, err := al.Get(ctx, standing[0].ID)
	require.NoError(t, err)
	require.Equal(t, alerts.StatusCleared, cleared.Status, "acknowledged → cleared")
	require.Equal(t, alerts.StatusCleared, published[len(published)-1].Status, "the clearing is published")
	left, _, err := al.List(ctx, alerts.Query{Standing: true})
	require.NoError(t, err)
	require.Empty(t, left)
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
	require.Empty(t, res.Alerted, "an expired lot raises no near-expiry alert")
	require.Empty(t, res.Cleared)
	near, err = s.NearExpiry(ctx, "w")
	require.NoError(t, err)
	require.Empty(t, near)
}

// TestNearExpiryAlertClearsWhenTheLotIsGone: a lot near its expiry whose
// last units are picked is no longer a cause: its alert clears at the
// next sweep; a new receipt of the lot raises it again (once).
func TestNearExpiryAlertClearsWhenTheLotIsGone(t *testing.T) {
	ctx := context.Background()
	st, err := badger.Open(badger.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	apply := func(seq uint64, kind protocol.OpKind, qty int64) {
		_, err := st.ApplyBatch(ctx, "w", "dock", &protocol.OpBatch{First: seq, Last: seq, Ops: []protocol.Op{
			{Seq: seq, HLC: protocol.MakeHLC(int64(seq), 0), Kind: kind, Location: "A-1", SKU: "MILK", Lot: "L1", Expiry: "2026-03-05", Qty: qty}}})
		require.NoError(t, err)
	}
	apply(1, protocol.OpReceive, 3)
	al := alerts.New(alerts.Config{Records: st})
	s := New(Config{Store: st, Today: func() time.Time { return time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC) }, Alerts: al})

	res, err := s.Sweep(ctx)
	require.NoError(t, err)
	require.Len(t, res.Alerted, 1)
	apply(2, protocol.OpPick, 3)
	res, err = s.Sweep(ctx)
	require.NoError(t, err)
	require.Empty(t, res.Alerted)
	require.Len(t, res.Cleared, 1, "nothing of the lot is left: its alert clears")
	require.Equal(t, alerts.StatusCleared, res.Cleared[0].Status)

	apply(3, protocol.OpReceive, 2)
	res, err = s.Sweep(ctx)
	require.NoError(t, err)
	require.Len(t, res.Alerted, 1, "the cause came back")
	res, err = s.Sweep(ctx)
	require.NoError(t, err)
	require.Empty(t, res.Alerted)
	standing, _, err := al.List(ctx, alerts.Query{Kind: alerts.KindNearExpiry, Standing: true})
	require.NoError(t, err)
	require.Len(t, standing, 1)
}

// TestShelfCountsShortDatedUnits: the shelf follows receipts, moves and
// status moves, and counts the available units in sellable locations of
// lots expiring within a number of days, by the lot's earliest expiry.
func TestShelfCountsShortDatedUnits(t *testing.T) {
	ctx := context.Background()
	st, err := badger.Open(badger.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	sh := NewShelf(ShelfConfig{Store: st, Today: func() time.Time { return now }, Sellable: func(_, loc string) bool { return loc != "RCV" }})
	var seq uint64
	apply := func(ops ...protocol.Op) {
		first := seq + 1
		for i := range ops {
			seq++
			ops[i].Seq, ops[i].HLC, ops[i].SKU = seq, protocol.MakeHLC(int64(seq), 0), "MILK"
		}
		res, err := st.ApplyBatch(ctx, "w", "dock", &protocol.OpBatch{First: first, Last: seq, Ops: ops})
		require.NoError(t, err)
		require.NoError(t, sh.Changed(res.Changes))
	}
	apply(protocol.Op{Kind: protocol.OpReceive, Location: "A-1", Lot: "L1", Expiry: "2026-03-20", Qty: 4},
		protocol.Op{Kind: protocol.OpReceive, Location: "A-1", Lot: "L2", Expiry: "2026-06-01", Qty: 6},
		protocol.Op{Kind: protocol.OpReceive, Location: "RCV", Lot: "L1", Expiry: "2026-03-20", Qty: 2})
	require.EqualValues(t, 0, sh.ShortDated("w", "MILK", 19), "L1 has 19 days left")
	require.EqualValues(t, 4, sh.ShortDated("w", "MILK", 20), "L1 at A-1; RCV is not sellable")
	require.EqualValues(t, 10, sh.ShortDated("w", "MILK", 100))

	apply(protocol.Op{Kind: protocol.OpMove, Location: "RCV", To: "B-1", Lot: "L1", Qty: 2}) // B-1's first receipt carries no expiry: L1's holds
	require.EqualValues(t, 6, sh.ShortDated("w", "MILK", 20))
	apply(protocol.Op{Kind: protocol.OpStatus, Location: "A-1", Lot: "L1", Status: protocol.StatusAvailable, ToStatus: protocol.StatusHold, Qty: 3})
	require.EqualValues(t, 3, sh.ShortDated("w", "MILK", 20), "held units are not available")

	now = now.AddDate(0, 0, 1)
	require.EqualValues(t, 3, sh.ShortDated("w", "MILK", 19), "a day later L1 has 18 days left")

	loaded := NewShelf(ShelfConfig{Store: st, Today: func() time.Time { return now }, Sellable: func(_, loc string) bool { return loc != "RCV" }})
	require.NoError(t, loaded.Load(ctx))
	for _, d := range []int{1, 19, 20, 100} {
		require.Equal(t, sh.ShortDated("w", "MILK", d), loaded.ShortDated("w", "MILK", d), "Load agrees with the followed changes (%d days)", d)
	}

	// One entry per key the shelf has seen — the emptied RCV key and the
	// held one included, each once however often it changed — and the same
	// after a Load.
	want := []lotKey{
		{loc: "A-1", lot: "L1", onHand: 1}, {loc: "A-1", lot: "L2", onHand: 6}, {loc: "RCV", lot: "L1", onHand: 0},
		{loc: "B-1", lot: "L1", onHand: 2}, {loc: "A-1", lot: "L1", status: protocol.StatusHold, onHand: 3},
	}
	require.ElementsMatch(t, want, sh.keys[whSKU{"w", "MILK"}])
	require.ElementsMatch(t, want, loaded.keys[whSKU{"w", "MILK"}])
}

// TestShelfHoldsNothingForLotsWithoutExpiry: keys of lots without an
// expiry take no entry (an import of millions of them leaves the Shelf as
// it was), and the keys it remembers not to look up again stay bounded. A
// lot whose first expiry comes after keys of it were seen without one
// makes the Shelf stale, and a Load counts that lot's earlier keys.
func TestShelfHoldsNothingForLotsWithoutExpiry(t *testing.T) {
	ctx := context.Background()
	st, err := badger.Open(badger.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	sh := NewShelf(ShelfConfig{Store: st, Today: func() time.Time { return now }})
	var seq uint64
	apply := func(ops ...protocol.Op) {
		first := seq + 1
		for i := range ops {
			seq++
			ops[i].Seq, ops[i].HLC = seq, protocol.MakeHLC(int64(seq), 0)
		}
		res, err := st.ApplyBatch(ctx, "w", "dock", &protocol.OpBatch{First: first, Last: seq, Ops: ops})
		require.NoError(t, err)
		require.NoError(t, sh.Changed(res.Changes))
	}
	var ops []protocol.Op
	for i := range plainCap + 100 {
		ops = append(ops, protocol.Op{Kind: protocol.OpReceive, Location: "A-1", SKU: fmt.Sprintf("S%05d", i), Lot: "L", Qty: 1})
		if len(ops) == 256 {
			apply(ops...)
			ops = nil
		}
	}
	apply(ops...)
	require.Empty(t, sh.keys, "no key of a lot without an expiry is held")
	require.Empty(t, sh.exp)
	require.LessOrEqual(t, len(sh.plain), plainCap)
	require.False(t, sh.Stale())

	// MILK's lot M1 arrives at A-1 without its date, then at B-1 with it.
	apply(protocol.Op{Kind: protocol.OpReceive, Location: "A-1", SKU: "MILK", Lot: "M1", Qty: 4})
	require.False(t, sh.Stale())
	apply(protocol.Op{Kind: protocol.OpReceive, Location: "B-1", SKU: "MILK", Lot: "M1", Expiry: "2026-03-10", Qty: 2})
	require.True(t, sh.Stale(), "A-1's units of M1 went unheld")
	require.EqualValues(t, 2, sh.ShortDated("w", "MILK", 30), "only B-1 is known until the Shelf loads again")
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); sh.Run(runCtx, time.Millisecond, func(err error) { t.Error(err) }) }()
	require.Eventually(t, func() bool { return !sh.Stale() }, 10*time.Second, time.Millisecond)
	cancel()
	<-done
	require.EqualValues(t, 6, sh.ShortDated("w", "MILK", 30), "the load counts A-1's units of the lot")
	require.Len(t, sh.keys, 1, "still only the lot with an expiry")
	apply(protocol.Op{Kind: protocol.OpPick, Location: "A-1", SKU: "MILK", Lot: "M1", Qty: 1})
	require.EqualValues(t, 5, sh.ShortDated("w", "MILK", 30), "A-1 is followed now")

	// Both receipts in one batch: nothing goes unheld.
	fresh := NewShelf(ShelfConfig{Store: st, Today: func() time.Time { return now }})
	require.NoError(t, fresh.Load(ctx))
	require.EqualValues(t, 5, fresh.ShortDated("w", "MILK", 30))
	require.False(t, fresh.Stale())
	sh = fresh
	apply(protocol.Op{Kind: protocol.OpReceive, Location: "A-2", SKU: "CREAM", Lot: "C1", Qty: 3},
		protocol.Op{Kind: protocol.OpReceive, Location: "B-2", SKU: "CREAM", Lot: "C1", Expiry: "2026-03-05", Qty: 1})
	require.EqualValues(t, 4, sh.ShortDated("w", "CREAM", 30))
}
