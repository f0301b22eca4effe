package alerts

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
)

type harness struct {
	svc       *Service
	now       time.Time
	mu        sync.Mutex
	published []Alert
	notified  []string // conflict notifications: event + " " + conflict id
	gateways  []store.Gateway
}

func newHarness(t *testing.T, th Thresholds) *harness {
	st, err := badger.Open(badger.Options{InMemory: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return newHarnessOn(st, th)
}

func newHarnessOn(rec store.Records, th Thresholds) *harness {
	h := &harness{now: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	h.svc = New(Config{
		Records: rec, Thresholds: th, Now: func() time.Time { return h.now },
		OnOrder:  func(wh, sku string) int64 { return 3 },
		Gateways: func(context.Context) ([]store.Gateway, error) { return h.gateways, nil },
		Publish:  func(a Alert) { h.mu.Lock(); h.published = append(h.published, a); h.mu.Unlock() },
		ConflictNotified: func(c conflicts.Conflict, event string) {
			h.mu.Lock()
			h.notified = append(h.notified, event+" "+c.ID)
			h.mu.Unlock()
		},
	})
	return h
}

func (h *harness) kinds() []Kind {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Kind
	for _, a := range h.published {
		if a.Status == StatusOpen {
			out = append(out, a.Kind)
		}
	}
	return out
}

func TestReorderAlertFiresOncePerDownwardCrossing(t *testing.T) {
	h := newHarness(t, ThresholdsFunc(func(wh, sku string) (Threshold, bool) {
		return Threshold{ReorderPoint: 5, ReorderQty: 10, Max: 20}, sku == "A"
	}))
	fired := func() int { return len(h.kinds()) }
	for _, step := range []struct {
		onHand int64
		fired  int
	}{
		{10, 0}, {6, 0},
		{5, 1},                 // at the point: crossing
		{3, 1}, {4, 1}, {0, 1}, // still below: no repeat
		{6, 1},  // above: re-armed, no alert
		{2, 2},  // the next crossing
		{20, 2}, // re-armed
		{5, 3},
	} {
		h.svc.ObserveStock("wh1", "A", step.onHand)
		require.Equal(t, step.fired, fired(), "after on-hand %d", step.onHand)
	}
	h.svc.ObserveStock("wh1", "B", 0) // no threshold
	require.Equal(t, 3, fired())
	as, _, err := h.svc.List(context.Background(), Query{Kind: KindReorder})
	require.NoError(t, err)
	require.Len(t, as, 3)
	latest := as[0]
	require.Equal(t, int64(5), latest.OnHand)
	require.Equal(t, int64(3), latest.OnOrder)
	require.Equal(t, int64(20-5-3), latest.SuggestedQty, "max − on-hand − on-order")
	require.Equal(t, int64(2), as[1].OnHand, "newest first")
}

func TestSeasonalOverrideAppliesWithinItsDates(t *testing.T) {
	th := Threshold{ReorderPoint: 5, Max: 20, Seasonal: []Seasonal{{From: "2026-12-01", To: "2026-12-24", ReorderPoint: 50, Max: 200}}}
	require.NoError(t, th.Validate())
	h := newHarness(t, ThresholdsFunc(func(wh, sku string) (Threshold, bool) { return th, true }))
	h.svc.ObserveStock("wh1", "A", 30) // March: above 5
	require.Empty(t, h.kinds())
	h.now = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) // first day of the season
	h.svc.ObserveStock("wh1", "A", 31)
	require.Empty(t, h.kinds(), "the point rose over on-hand (a receipt of 1): no decrement crossed it")
	h.svc.ObserveStock("wh1", "A", 60)
	h.svc.ObserveStock("wh1", "A", 45)
	require.Equal(t, []Kind{KindReorder}, h.kinds(), "45 crossed the seasonal 50 down")
	as, _, _ := h.svc.List(context.Background(), Query{})
	require.True(t, as[0].Seasonal)
	require.Equal(t, int64(200-45-3), as[0].SuggestedQty)
	h.now = time.Date(2026, 12, 25, 0, 0, 0, 0, time.UTC) // season over: 45 is above 5
	h.svc.ObserveStock("wh1", "A", 30)
	h.svc.ObserveStock("wh1", "A", 4)
	require.Len(t, h.kinds(), 2)

	bad := Threshold{Seasonal: []Seasonal{{From: "2026-12-24", To: "2026-12-01"}}}
	require.Error(t, bad.Validate())
}

// TestReceiptBelowThePointRaisesNothing: only a decrement that crosses
// the point alerts; the first observation and receipts that leave on-hand
// at or below the point only record it.
func TestReceiptBelowThePointRaisesNothing(t *testing.T) {
	h := newHarness(t, ThresholdsFunc(func(wh, sku string) (Threshold, bool) { return Threshold{ReorderPoint: 5, ReorderQty: 10}, true }))
	for _, n := range []int64{0, 3, 5, 2} { // new sku at 0, receipts of 3 and 2, a pick of 3: all at or below 5
		h.svc.ObserveStock("wh1", "A", n)
	}
	require.Empty(t, h.kinds())
	h.svc.ObserveStock("wh1", "A", 9) // a receipt above the point
	h.svc.ObserveStock("wh1", "A", 4) // a pick across it
	require.Equal(t, []Kind{KindReorder}, h.kinds())
	as, _, err := h.svc.List(context.Background(), Query{Kind: KindReorder})
	require.NoError(t, err)
	require.Equal(t, int64(0), as[0].SuggestedQty, "no max: the reorder quantity only while on-hand + on-order (4 + 3) is at or below the point")
}

// TestReorderAlertClearsAboveThePoint: the standing reorder alert (open or
// acknowledged) clears when on-hand rises above the point; a resolved one
// stays resolved.
func TestReorderAlertClearsAboveThePoint(t *testing.T) {
	h := newHarness(t, ThresholdsFunc(func(wh, sku string) (Threshold, bool) { return Threshold{ReorderPoint: 5, Max: 20}, true }))
	ctx := context.Background()
	cross := func(sku string) Alert {
		h.svc.ObserveStock("wh1", sku, 10)
		h.svc.ObserveStock("wh1", sku, 5)
		as, _, err := h.svc.List(ctx, Query{SKU: sku, Standing: true})
		require.NoError(t, err)
		require.Len(t, as, 1)
		return as[0]
	}
	a := cross("A")
	_, err := h.svc.Ack(ctx, a.ID, "ana", "ordering")
	require.NoError(t, err)
	h.svc.ObserveStock("wh1", "A", 4) // still below: stands
	got, _ := h.svc.Get(ctx, a.ID)
	require.Equal(t, StatusAcknowledged, got.Status)
	h.svc.ObserveStock("wh1", "A", 6)
	got, _ = h.svc.Get(ctx, a.ID)
	require.Equal(t, StatusCleared, got.Status, "stock back above the point")
	require.Equal(t, h.now.UnixMilli(), got.ClosedMS)

	b := cross("B")
	resolved, err := h.svc.Resolve(ctx, b.ID, "bob", "ordered by phone")
	require.NoError(t, err)
	require.Equal(t, StatusResolved, resolved.Status)
	require.Equal(t, "bob", resolved.ResolvedBy)
	h.svc.ObserveStock("wh1", "B", 4)
	require.Len(t, h.kinds(), 2, "resolved while below: not raised again")
	h.svc.ObserveStock("wh1", "B", 30)
	got, _ = h.svc.Get(ctx, b.ID)
	require.Equal(t, StatusResolved, got.Status, "a resolved alert is not cleared over")
	standing, _, err := h.svc.List(ctx, Query{Standing: true})
	require.NoError(t, err)
	require.Empty(t, standing)
}

// TestConflictsNotifyWithoutAlertItems: a conflict is its own exception:
// its opening and its end are notified once each, and no alert is stored.
func TestConflictsNotifyWithoutAlertItems(t *testing.T) {
	h := newHarness(t, nil)
	c := conflicts.Conflict{ID: "neg:wh1/A/X", Kind: conflicts.KindNegativeStock, Status: conflicts.StatusOpen, Holds: true, Warehouse: "wh1", Location: "A", SKU: "X", Detail: "on-hand −1"}
	h.svc.ObserveConflict(c)
	h.svc.ObserveConflict(c) // changed again while open: nothing new
	c.Status = conflicts.StatusAcknowledged
	h.svc.ObserveConflict(c) // a recount requested: still stands
	c.Status, c.Holds = conflicts.StatusCleared, false
	h.svc.ObserveConflict(c)
	c.Status, c.Holds = conflicts.StatusOpen, true
	h.svc.ObserveConflict(c)
	c.Status = conflicts.StatusResolved
	h.svc.ObserveConflict(c)
	h.svc.ObserveConflict(conflicts.Oversell("wh1", "X", 3, 2, 0))
	require.Equal(t, []string{"opened " + c.ID, "ended " + c.ID, "opened " + c.ID, "ended " + c.ID, "opened oversell:wh1/X"}, h.notified)
	all, _, err := h.svc.List(context.Background(), Query{})
	require.NoError(t, err)
	require.Empty(t, all, "no alert items for conflicts")
}

func TestGatewaysOfflineTooLongOrWithAGrowingBacklog(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	seen := h.now.Add(-time.Minute).UnixMilli()
	h.gateways = []store.Gateway{{Warehouse: "wh1", Gateway: "g1", Online: false, LastSeen: seen}}
	require.NoError(t, h.svc.CheckGateways(ctx))
	require.Empty(t, h.kinds(), "one minute offline is fine")
	h.now = h.now.Add(10 * time.Minute)
	require.NoError(t, h.svc.CheckGateways(ctx))
	require.NoError(t, h.svc.CheckGateways(ctx))
	require.Equal(t, []Kind{KindGatewayOffline}, h.kinds(), "once per episode")
	h.gateways[0].Online, h.gateways[0].LastSeen = true, h.now.UnixMilli()
	require.NoError(t, h.svc.CheckGateways(ctx))
	first, _, err := h.svc.List(ctx, Query{Kind: KindGatewayOffline})
	require.NoError(t, err)
	require.Equal(t, StatusCleared, first[0].Status, "the gateway is back: cleared")
	h.gateways[0].Online, h.gateways[0].LastSeen = false, h.now.UnixMilli()
	h.now = h.now.Add(6 * time.Minute)
	require.NoError(t, h.svc.CheckGateways(ctx))
	require.Equal(t, []Kind{KindGatewayOffline, KindGatewayOffline}, h.kinds(), "a new episode")

	h.gateways = []store.Gateway{{Warehouse: "wh1", Gateway: "g2", Online: true, LastSeen: h.now.UnixMilli()}}
	for _, depth := range []uint64{50, 120, 130, 200} { // above BacklogOps/10 and growing at 3 checks
		h.gateways[0].OutboxDepth = depth
		require.NoError(t, h.svc.CheckGateways(ctx))
	}
	require.Equal(t, KindGatewayBacklog, h.kinds()[2])
	h.gateways[0].OutboxDepth = 2000
	require.NoError(t, h.svc.CheckGateways(ctx))
	require.Len(t, h.kinds(), 3, "still the same episode")
	h.gateways[0].OutboxDepth = 100 // a tenth of the limit: the backlog is gone
	require.NoError(t, h.svc.CheckGateways(ctx))
	bl, _, err := h.svc.List(ctx, Query{Kind: KindGatewayBacklog})
	require.NoError(t, err)
	require.Equal(t, StatusCleared, bl[0].Status)
}

// TestOfflineDelayIsASetting: Config.OfflineAfter replaces the 5-minute
// default.
func TestOfflineDelayIsASetting(t *testing.T) {
	h := newHarness(t, nil)
	h.svc.cfg.OfflineAfter = 30 * time.Second
	h.gateways = []store.Gateway{{Warehouse: "wh1", Gateway: "g1", LastSeen: h.now.Add(-31 * time.Second).UnixMilli()}}
	require.NoError(t, h.svc.CheckGateways(context.Background()))
	require.Equal(t, []Kind{KindGatewayOffline}, h.kinds())
}

func TestAcknowledgedByAPerson(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	a, err := h.svc.Raise(Alert{Kind: KindReorder, Warehouse: "wh1", Message: "x"})
	require.NoError(t, err)
	_, err = h.svc.Ack(ctx, a.ID, " ", "")
	require.ErrorIs(t, err, ErrInvalid)
	got, err := h.svc.Ack(ctx, a.ID, "ana", "checked the bin")
	require.NoError(t, err)
	require.Equal(t, StatusAcknowledged, got.Status)
	require.Equal(t, "ana", got.AckBy)
	_, err = h.svc.Ack(ctx, a.ID, "bob", "")
	require.ErrorIs(t, err, ErrAcknowledged)
	_, err = h.svc.Ack(ctx, "nope", "bob", "")
	require.ErrorIs(t, err, ErrNotFound)
	open, _, err := h.svc.List(ctx, Query{Status: StatusOpen})
	require.NoError(t, err)
	require.Empty(t, open)
	all, _, err := h.svc.List(ctx, Query{Warehouse: "wh1"})
	require.NoError(t, err)
	require.Len(t, all, 1)
	require.Len(t, h.published, 2, "raised and acknowledged are both published")
	standing, _, err := h.svc.List(ctx, Query{Standing: true})
	require.NoError(t, err)
	require.Len(t, standing, 1, "acknowledged still stands")
	_, err = h.svc.Resolve(ctx, a.ID, "", "")
	require.ErrorIs(t, err, ErrInvalid)
	got, err = h.svc.Resolve(ctx, a.ID, "ana", "done")
	require.NoError(t, err)
	require.Equal(t, StatusResolved, got.Status)
	_, err = h.svc.Resolve(ctx, a.ID, "ana", "again")
	require.ErrorIs(t, err, ErrClosed)
	_, err = h.svc.Ack(ctx, a.ID, "ana", "")
	require.ErrorIs(t, err, ErrClosed)
}

func TestListPages(t *testing.T) {
	h := newHarness(t, nil)
	for i := 0; i < 5; i++ {
		_, err := h.svc.Raise(Alert{Kind: KindReorder, Warehouse: "wh1", Message: "x"})
		require.NoError(t, err)
	}
	p1, more, err := h.svc.List(context.Background(), Query{Limit: 2})
	require.NoError(t, err)
	require.True(t, more)
	p3, more, err := h.svc.List(context.Background(), Query{Limit: 2, Offset: 4})
	require.NoError(t, err)
	require.False(t, more)
	require.Len(t, p3, 1)
	require.Greater(t, p1[0].ID, p1[1].ID)
}
