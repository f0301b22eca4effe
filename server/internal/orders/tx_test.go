package orders

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/webhooks"
)

// orderSink is a webhook receiver of order events.
type orderSink struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []orderEvent
}

type orderEvent struct {
	Event string `json:"event"`
	Order Order  `json:"order"`
}

func newOrderSink(t *testing.T) *orderSink {
	s := &orderSink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev orderEvent
		if json.Unmarshal(body, &ev) == nil {
			s.mu.Lock()
			s.got = append(s.got, ev)
			s.mu.Unlock()
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *orderSink) events() []orderEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]orderEvent(nil), s.got...)
}

// TestOrderWebhookIsQueuedInTheOrdersTransaction: OnOrderTx queues the
// order's webhook in the transaction that writes the order, as the app
// does. With no OnOrder at all — a replica that died right after the
// commit — the events are delivered; a write whose transaction fails
// after the hook leaves neither the order (or its close) nor a delivery.
func TestOrderWebhookIsQueuedInTheOrdersTransaction(t *testing.T) {
	var hooks *webhooks.Manager
	var fail atomic.Bool
	f := newFixture(t, "", Config{OnOrderTx: func(tx store.Tx, o Order, event string) error {
		body, err := json.Marshal(map[string]any{"event": "order." + event, "order": o})
		if err != nil {
			return err
		}
		if err := hooks.EnqueueTx(tx, webhooks.Event{Type: webhooks.EventOrder, Warehouse: o.Warehouse, Body: body}); err != nil {
			return err
		}
		if fail.Load() {
			return errors.New("the order's transaction fails after the hook")
		}
		return nil
	}})
	sink := newOrderSink(t)
	ctx, cancel := context.WithCancel(f.ctx)
	hooks = webhooks.New(webhooks.Config{Records: f.st, Shared: true, PollEvery: 50 * time.Millisecond})
	require.NoError(t, hooks.Start(ctx))
	t.Cleanup(func() { cancel(); hooks.Wait() })
	_, err := hooks.Create(ctx, webhooks.Endpoint{URL: sink.srv.URL, Events: []string{webhooks.EventOrder}})
	require.NoError(t, err)
	f.receive("wh1", "BIN-1", "A", 2)
	f.pick("wh1", "BIN-1", "A", 1, "web-2", 0) // a pick before its order

	fail.Store(true)
	_, _, err = f.svc.Create(f.ctx, newOrder("1", Line{SKU: "A", Qty: 1}))
	require.Error(t, err)
	_, err = f.svc.Get(f.ctx, "wh1", "web-1")
	require.ErrorIs(t, err, ErrNotFound, "the order was not stored")
	noDeliveries := func() {
		t.Helper()
		require.NoError(t, f.st.View(func(tx store.Tx) error {
			return tx.Scan([]byte("wh/q/"), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
				return errors.New("a webhook delivery was queued without its order")
			})
		}))
	}
	noDeliveries()
	require.Equal(t, int64(1), f.ats("wh1", "A").Available, "nothing reserved")

	fail.Store(false)
	o1, created, err := f.svc.Create(f.ctx, newOrder("1", Line{SKU: "A", Qty: 1}))
	require.NoError(t, err)
	require.True(t, created, "the failed attempt stored no idempotency key")
	o2, _, err := f.svc.Create(f.ctx, newOrder("2", Line{SKU: "A", Qty: 1}))
	require.NoError(t, err, "its one unit was picked before it came: it needs nothing more")
	require.Equal(t, int64(1), o2.Lines[0].Picked)
	require.Eventually(t, func() bool { return len(sink.events()) == 2 }, 10*time.Second, 5*time.Millisecond)
	got := sink.events()
	require.Equal(t, "order.created", got[0].Event)
	require.Equal(t, o1.ID, got[0].Order.ID)
	require.Equal(t, o1.Seq, got[0].Order.Seq)
	require.Equal(t, "order.created", got[1].Event)
	require.Equal(t, o2.ID, got[1].Order.ID)
	require.Equal(t, int64(1), got[1].Order.Lines[0].Picked, "the webhook says what the API answered: the pick that came first")
	require.Equal(t, int64(0), got[1].Order.Lines[0].Reserved)

	fail.Store(true)
	_, err = f.svc.Ship(f.ctx, "wh1", o1.ID)
	require.Error(t, err)
	still, err := f.svc.Get(f.ctx, "wh1", o1.ID)
	require.NoError(t, err)
	require.Equal(t, StatusOpen, still.Status, "not shipped")
	fail.Store(false)
	_, err = f.svc.Ship(f.ctx, "wh1", o1.ID)
	require.NoError(t, err)
	_, err = f.svc.Cancel(f.ctx, "wh1", o2.ID)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(sink.events()) == 4 }, 10*time.Second, 5*time.Millisecond)
	got = sink.events()
	require.Equal(t, "order.shipped", got[2].Event)
	require.Equal(t, StatusShipped, got[2].Order.Status)
	require.Equal(t, "order.cancelled", got[3].Event)
	require.Equal(t, o2.ID, got[3].Order.ID)
	time.Sleep(100 * time.Millisecond) // negative window: a repeated event would come by now
	require.Len(t, sink.events(), 4, "each event once")
}

// TestOversellNeedsAReservation: stock pushed below zero in a sellable
// location with nothing reserved is no oversell (it is a negative-stock
// conflict of the key); a reservation beyond what is available is.
func TestOversellNeedsAReservation(t *testing.T) {
	f := newFixture(t, "", Config{Safety: func(_, sku string) int64 {
		if sku == "S" {
			return 2
		}
		return 0
	}})
	f.pick("wh1", "BIN-1", "A", 3, "", 0) // A: −3, nothing reserved
	f.receive("wh1", "BIN-1", "S", 1)     // S: 1 on hand below its safety stock 2, nothing reserved
	require.Equal(t, int64(-3), f.ats("wh1", "A").Available)
	require.Equal(t, int64(-1), f.ats("wh1", "S").Available)
	require.Empty(t, f.oversells(), "nothing reserved: nothing oversold")
	require.Empty(t, f.conflictsSeen())

	_, _, err := f.svc.Create(f.ctx, newOrder("0", Line{SKU: "A", Qty: 1}))
	require.ErrorIs(t, err, ErrUnavailable, "nothing to sell: refused, nothing reserved")
	f.receive("wh1", "BIN-1", "A", 4)
	o, _, err := f.svc.Create(f.ctx, newOrder("1", Line{SKU: "A", Qty: 1}))
	require.NoError(t, err)
	f.pick("wh1", "BIN-1", "A", 4, "", 0) // back to −3, with 1 reserved
	f.ats("wh1", "A")
	cs := f.oversells()
	require.Len(t, cs, 1, "reserved 1 of −3 available")
	require.Equal(t, conflicts.StatusOpen, cs[0].Status)
	require.True(t, cs[0].Holds)
	require.Equal(t, int64(1), cs[0].Observed)
	require.Equal(t, int64(-3), cs[0].Expected)

	_, err = f.svc.Cancel(f.ctx, "wh1", o.ID) // nothing reserved again, stock still below zero
	require.NoError(t, err)
	f.ats("wh1", "A")
	cs = f.oversells()
	require.Len(t, cs, 1)
	require.Equal(t, conflicts.StatusCleared, cs[0].Status, "cleared with the reservation, though the stock is still −3")
	require.False(t, cs[0].Holds)
}

// TestAnOversellWithoutReservationsRaisedBeforeIsCleared: a database from
// before the fix holds an open oversell of a sku that reserves nothing;
// the active replica clears it when it starts.
func TestAnOversellWithoutReservationsRaisedBeforeIsCleared(t *testing.T) {
	f := newFixture(t, "", Config{Passive: true})
	f.pick("wh1", "BIN-1", "A", 1, "", 0)
	f.ats("wh1", "A")
	old := conflicts.Oversell("wh1", "A", 0, -1, protocol.MakeHLC(1000, 0))
	require.True(t, old.Holds)
	require.NoError(t, f.st.Update(func(tx store.Tx) error { _, _, err := tx.RaiseConflict(old); return err }))
	svc := New(Config{}, f.st)
	require.NoError(t, svc.Start(f.ctx))
	cs := f.oversells()
	require.Len(t, cs, 1)
	require.Equal(t, conflicts.StatusCleared, cs[0].Status)
}

// TestReloadReadsKeysTheModelNeverHeardOf: stock keys written behind the
// service's back (no Changed: a replica that missed the feed) appear after
// Reload, and with the periodic resync; Invalidate only re-reads the keys
// the model knows.
func TestReloadReadsKeysTheModelNeverHeardOf(t *testing.T) {
	f := newFixture(t, "", Config{})
	f.receive("wh1", "BIN-1", "A", 5)
	require.Equal(t, int64(5), f.ats("wh1", "A").Available)
	behind := func(loc, sku string, qty int64) {
		t.Helper()
		f.mu.Lock()
		f.hlc++
		op := protocol.Op{Kind: protocol.OpReceive, Location: loc, SKU: sku, Qty: qty, HLC: protocol.MakeHLC(f.hlc, 0)}
		f.mu.Unlock()
		_, _, err := f.st.IssueOp(f.ctx, "wh1", op) // the service is not told
		require.NoError(t, err)
	}
	behind("BIN-2", "A", 3) // a new location of a known sku
	behind("BIN-1", "B", 4) // a new sku
	// An order another replica took, nobody told.
	other := New(Config{Passive: true}, f.st)
	require.NoError(t, other.Start(f.ctx))
	_, _, err := other.Create(f.ctx, newOrder("x", Line{SKU: "B", Qty: 1}))
	require.NoError(t, err)

	f.svc.Invalidate()
	require.Equal(t, int64(5), f.ats("wh1", "A").OnHand, "Invalidate re-reads only the keys the model knows")
	require.Zero(t, f.ats("wh1", "B").OnHand)

	require.NoError(t, f.svc.Reload(f.ctx))
	require.Equal(t, ATS{Warehouse: "wh1", SKU: "A", OnHand: 8, Sellable: 8, Available: 8}, f.ats("wh1", "A"))
	require.Equal(t, ATS{Warehouse: "wh1", SKU: "B", OnHand: 4, Sellable: 4, Reserved: 1, Available: 3}, f.ats("wh1", "B"))
	snaps := f.published()
	last := snaps[len(snaps)-1]
	require.Equal(t, []Item{{SKU: "A", Available: 8}, {SKU: "B", Available: 3}}, last.Items, "published")

	// The periodic resync reloads.
	g := newFixture(t, "", Config{Resync: 20 * time.Millisecond})
	g.receive("wh1", "BIN-1", "A", 1)
	g.mu.Lock()
	g.hlc++
	op := protocol.Op{Kind: protocol.OpReceive, Location: "BIN-9", SKU: "C", Qty: 7, HLC: protocol.MakeHLC(g.hlc, 0)}
	g.mu.Unlock()
	_, _, err = g.st.IssueOp(g.ctx, "wh1", op)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		rows, _, _ := g.svc.Availability("wh1", "C")
		return len(rows) == 1 && rows[0].OnHand == 7
	}, 5*time.Second, 5*time.Millisecond)
}
