package orders

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func newHold(checkout string, lines ...Line) NewHold {
	return NewHold{Warehouse: "wh1", Channel: "web", CheckoutID: checkout, Lines: lines, TTLSeconds: 60}
}

func refusal(t *testing.T, err error) *Refusal {
	t.Helper()
	require.ErrorIs(t, err, ErrUnavailable)
	var r *Refusal
	require.True(t, errors.As(err, &r))
	return r
}

// A hold is granted or refused at once; an order without a hold is
// refused by the default policy when what it asks is held; the order
// naming the hold converts it.
func TestHoldsAreGrantedOrRefusedAndConvert(t *testing.T) {
	f := newFixture(t, "", Config{})
	f.receive("wh1", "BIN-1", "A", 5)
	h, created, err := f.svc.Hold(f.ctx, newHold("c1", Line{SKU: "A", Qty: 3}))
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, StatusHeld, h.Status)
	require.Equal(t, "hold-web-c1", h.ID)
	require.Equal(t, int64(2), f.ats("wh1", "A").Available, "held units leave available-to-sell")

	again, created, err := f.svc.Hold(f.ctx, newHold("c1", Line{SKU: "A", Qty: 3}))
	require.NoError(t, err)
	require.False(t, created, "a replayed checkout")
	require.Equal(t, h.ID, again.ID)

	_, _, err = f.svc.Hold(f.ctx, newHold("c2", Line{SKU: "A", Qty: 3}))
	require.Equal(t, []Shortfall{{SKU: "A", Requested: 3, Available: 2}}, refusal(t, err).Skus)
	_, _, err = f.svc.Create(f.ctx, newOrder("o2", Line{SKU: "A", Qty: 3}))
	require.Equal(t, []Shortfall{{SKU: "A", Requested: 3, Available: 2}}, refusal(t, err).Skus, "refused: the default policy")
	_, err = f.svc.Get(f.ctx, "wh1", "web-o2")
	require.ErrorIs(t, err, ErrNotFound, "a refused order is not stored")

	n := newOrder("o1", Line{SKU: "A", Qty: 4})
	n.Hold = h.ID
	_, _, err = f.svc.Create(f.ctx, n)
	require.ErrorIs(t, err, ErrConflict, "more than the hold holds")
	n.Lines = []Line{{SKU: "A", Qty: 3}}
	o, created, err := f.svc.Create(f.ctx, n)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, StatusOpen, o.Status)
	require.Equal(t, h.ID, o.Hold)
	require.Equal(t, int64(3), o.Lines[0].Reserved)
	require.Equal(t, int64(2), f.ats("wh1", "A").Available, "the hold's units became the order's")
	conv, err := f.svc.Get(f.ctx, "wh1", h.ID)
	require.NoError(t, err)
	require.Equal(t, StatusConverted, conv.Status)
	require.Equal(t, o.ID, conv.Hold)

	n2 := newOrder("o3", Line{SKU: "A", Qty: 1})
	n2.Hold = h.ID
	_, _, err = f.svc.Create(f.ctx, n2)
	require.ErrorIs(t, err, ErrConflict, "a hold converts once")
}

// A hold past its expiry returns its units to the pool and can no longer
// be converted (injected clock).
func TestAnExpiredHoldReturnsToThePool(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC).UnixMilli())
	f := newFixture(t, "", Config{Now: func() time.Time { return time.UnixMilli(now.Load()) }})
	f.receive("wh1", "BIN-1", "A", 5)
	h, _, err := f.svc.Hold(f.ctx, newHold("c1", Line{SKU: "A", Qty: 5}))
	require.NoError(t, err)
	require.Equal(t, now.Load()+60_000, h.ExpiresMS)
	require.Equal(t, int64(0), f.ats("wh1", "A").Available)
	n, err := f.svc.ExpireHolds(f.ctx)
	require.NoError(t, err)
	require.Zero(t, n, "not yet")

	now.Add(60_000)
	n, err = f.svc.ExpireHolds(f.ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, int64(5), f.ats("wh1", "A").Available, "back in the pool")
	got, err := f.svc.Get(f.ctx, "wh1", h.ID)
	require.NoError(t, err)
	require.Equal(t, StatusExpired, got.Status)

	o := newOrder("o1", Line{SKU: "A", Qty: 5})
	o.Hold = h.ID
	_, _, err = f.svc.Create(f.ctx, o)
	require.ErrorIs(t, err, ErrConflict)
	require.Contains(t, err.Error(), "expired")

	h2, _, err := f.svc.Hold(f.ctx, newHold("c2", Line{SKU: "A", Qty: 2}))
	require.NoError(t, err)
	_, err = f.svc.ReleaseHold(f.ctx, "wh1", h2.ID)
	require.NoError(t, err)
	require.Equal(t, int64(5), f.ats("wh1", "A").Available, "a released hold gives its units back")
}

// A backorder channel takes what cannot ship as backordered (reserving
// nothing) and releases it first come, first served when stock arrives.
func TestBackordersAreReleasedFirstComeFirstServed(t *testing.T) {
	f := newFixture(t, "", Config{})
	_, err := f.svc.PutChannel(f.ctx, Channel{Name: "web", SharePct: 100, Policy: PolicyBackorder})
	require.NoError(t, err)
	o1, created, err := f.svc.Create(f.ctx, newOrder("1", Line{SKU: "A", Qty: 2}))
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, StatusBackordered, o1.Status)
	require.Zero(t, o1.Lines[0].Reserved)
	o2, _, err := f.svc.Create(f.ctx, newOrder("2", Line{SKU: "A", Qty: 2}))
	require.NoError(t, err)
	require.Equal(t, StatusBackordered, o2.Status)
	o3, _, err := f.svc.Create(f.ctx, newOrder("3", Line{SKU: "B", Qty: 1}))
	require.NoError(t, err)
	require.Equal(t, StatusBackordered, o3.Status)
	require.Equal(t, int64(0), f.ats("wh1", "A").Reserved)

	f.receive("wh1", "BIN-1", "A", 3)
	f.receive("wh1", "BIN-1", "B", 1)
	f.ats("wh1", "A") // a flush releases what can ship
	for id, want := range map[string]Status{o1.ID: StatusOpen, o2.ID: StatusBackordered, o3.ID: StatusOpen} {
		got, err := f.svc.Get(f.ctx, "wh1", id)
		require.NoError(t, err)
		require.Equal(t, want, got.Status, id)
	}
	require.Equal(t, int64(1), f.ats("wh1", "A").Available, "the second waits for its second unit")
	f.receive("wh1", "BIN-1", "A", 1)
	f.ats("wh1", "A")
	got, err := f.svc.Get(f.ctx, "wh1", o2.ID)
	require.NoError(t, err)
	require.Equal(t, StatusOpen, got.Status)
}

// A channel's cap bounds what it reserves of a sku; its share bounds what
// it may take of the pool.
func TestCapsAndSharesAreEnforced(t *testing.T) {
	f := newFixture(t, "", Config{})
	f.receive("wh1", "BIN-1", "A", 10)
	cap3 := int64(3)
	_, err := f.svc.PutChannel(f.ctx, Channel{Name: "web", SharePct: 100, Cap: &cap3})
	require.NoError(t, err)
	_, err = f.svc.PutChannel(f.ctx, Channel{Name: "market", SharePct: 50})
	require.NoError(t, err)
	taken := 0
	for i := range 5 {
		_, _, err := f.svc.Create(f.ctx, newOrder(fmt.Sprint(i), Line{SKU: "A", Qty: 1}))
		if err == nil {
			taken++
		} else {
			require.ErrorIs(t, err, ErrUnavailable)
		}
	}
	require.Equal(t, 3, taken, "a channel capped at 3 takes 3")
	sn, ok := f.svc.Snapshot("web")
	require.True(t, ok)
	require.Equal(t, []Item{{SKU: "A", Available: 0}}, sn.Items, "and is offered nothing more")

	m := NewOrder{Warehouse: "wh1", Channel: "market", ExternalID: "m1", Lines: []Line{{SKU: "A", Qty: 4}}}
	_, _, err = f.svc.Create(f.ctx, m)
	require.Equal(t, []Shortfall{{SKU: "A", Requested: 4, Available: 3}}, refusal(t, err).Skus, "half of the 7 left")
	m.Lines[0].Qty = 3
	_, _, err = f.svc.Create(f.ctx, m)
	require.NoError(t, err)
}

// TestRacingChannelsTakeExactlyTheStock: 3 channels × 32 clients race for
// 200 units of 4 skus, in single units, holds and orders mixed: exactly
// 200 are held or reserved, everything else is refused (refuse channels)
// or backordered (the backorder channel), the capped channel stays within
// its cap, no snapshot ever offers a channel more than can ship, and no
// oversell is raised.
func TestRacingChannelsTakeExactlyTheStock(t *testing.T) {
	f := newFixture(t, "", Config{})
	skus := []string{"A", "B", "C", "D"}
	for _, sku := range skus {
		f.receive("wh1", "BIN-1", sku, 50)
	}
	cap20 := int64(20)
	for _, c := range []Channel{{Name: "web", SharePct: 100}, {Name: "market", SharePct: 100, Policy: PolicyBackorder}, {Name: "shop", SharePct: 100, Cap: &cap20}} {
		_, err := f.svc.PutChannel(f.ctx, c)
		require.NoError(t, err)
	}
	var (
		wg                           sync.WaitGroup
		granted, refused, backorders atomic.Int64
		shopBy                       = map[string]*atomic.Int64{}
	)
	for _, sku := range skus {
		shopBy[sku] = &atomic.Int64{}
	}
	for ci, ch := range []string{"web", "market", "shop"} {
		for k := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 4 {
					sku := skus[(k+i)%len(skus)]
					id := fmt.Sprintf("%d-%d-%d", ci, k, i)
					var o Order
					var err error
					if (k+i)%2 == 0 {
						o, _, err = f.svc.Hold(f.ctx, NewHold{Warehouse: "wh1", Channel: ch, CheckoutID: id, Lines: []Line{{SKU: sku, Qty: 1}}})
					} else {
						o, _, err = f.svc.Create(f.ctx, NewOrder{Warehouse: "wh1", Channel: ch, ExternalID: id, Lines: []Line{{SKU: sku, Qty: 1}}})
					}
					switch {
					case err == nil && o.Status == StatusBackordered:
						backorders.Add(1)
					case err == nil:
						granted.Add(1)
						if ch == "shop" {
							shopBy[sku].Add(1)
						}
					case errors.Is(err, ErrUnavailable):
						refused.Add(1)
					default:
						t.Errorf("%s %s: %v", ch, id, err)
					}
				}
			}()
		}
	}
	wg.Wait()
	require.Equal(t, int64(200), granted.Load(), "exactly the stock is held or reserved")
	require.Equal(t, int64(3*32*4), granted.Load()+refused.Load()+backorders.Load())
	var reserved int64
	for _, sku := range skus {
		a := f.ats("wh1", sku)
		reserved += a.Reserved
		require.Zero(t, a.Available, sku)
		require.LessOrEqual(t, shopBy[sku].Load(), cap20, "shop's cap of %s", sku)
	}
	require.Equal(t, int64(200), reserved)
	for _, sn := range f.published() {
		for _, it := range sn.Items {
			require.LessOrEqual(t, it.Available, int64(50), "%s offered %d of %s", sn.Channel, it.Available, it.SKU)
		}
	}
	last := map[string]Snapshot{}
	for _, sn := range f.published() {
		last[sn.Channel] = sn
	}
	for ch, sn := range last {
		for _, it := range sn.Items {
			require.Zero(t, it.Available, "%s is offered %s once the stock is gone", ch, it.SKU)
		}
	}
	require.Empty(t, f.oversells())
}

// A channel with its own minimum shelf life is offered and admitted the
// ATS less the short-dated units (Config.ShortDated), and its backorder
// is released only when enough units with that much life left are there.
func TestAChannelsMinimumShelfLifeBoundsItsOfferAndAdmission(t *testing.T) {
	var short atomic.Int64
	short.Store(6)
	f := newFixture(t, "", Config{ShortDated: func(wh, sku string, days int) int64 {
		if wh == "wh1" && sku == "A" && days == 30 {
			return short.Load()
		}
		return 0
	}})
	f.receive("wh1", "BIN-1", "A", 10)
	_, err := f.svc.PutChannel(f.ctx, Channel{Name: "web", SharePct: 100})
	require.NoError(t, err)
	_, err = f.svc.PutChannel(f.ctx, Channel{Name: "fresh", SharePct: 100, Policy: PolicyBackorder, MinShelfDays: 30})
	require.NoError(t, err)
	_, err = f.svc.PutChannel(f.ctx, Channel{Name: "bad", MinShelfDays: -1})
	require.ErrorIs(t, err, ErrInvalid)
	offer := func(ch string) int64 {
		f.ats("wh1", "A") // flushed
		sn, ok := f.svc.Snapshot(ch)
		require.True(t, ok)
		for _, it := range sn.Items {
			if it.SKU == "A" {
				return it.Available
			}
		}
		return 0
	}
	require.Equal(t, int64(10), offer("web"))
	require.Equal(t, int64(4), offer("fresh"), "10 less the 6 short-dated")

	o, _, err := f.svc.Create(f.ctx, NewOrder{Warehouse: "wh1", Channel: "fresh", ExternalID: "f1", Lines: []Line{{SKU: "A", Qty: 5}}})
	require.NoError(t, err)
	require.Equal(t, StatusBackordered, o.Status, "5 is more than its 4")
	f.ats("wh1", "A") // a flush releases what can ship
	got, err := f.svc.Get(f.ctx, "wh1", o.ID)
	require.NoError(t, err)
	require.Equal(t, StatusBackordered, got.Status, "the warehouse holds 10, but only 4 fresh enough")

	f.receive("wh1", "BIN-1", "A", 2) // two fresh units more
	f.ats("wh1", "A")
	got, err = f.svc.Get(f.ctx, "wh1", o.ID)
	require.NoError(t, err)
	require.Equal(t, StatusOpen, got.Status, "6 fresh units now")
	require.Equal(t, int64(1), offer("fresh"))
	require.Equal(t, int64(7), offer("web"))
}
