package alerts

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

// hookSink is a webhook receiver: the alerts posted to it, in order.
type hookSink struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []Alert
}

func newHookSink(t *testing.T) *hookSink {
	s := &hookSink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var a Alert
		if json.Unmarshal(body, &a) == nil {
			s.mu.Lock()
			s.got = append(s.got, a)
			s.mu.Unlock()
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *hookSink) alerts() []Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Alert(nil), s.got...)
}

// hooked starts a webhook manager over rec with an endpoint posting alerts
// to a sink, and returns a Within that queues an alert's webhook as the
// app does; fail makes it fail after queueing.
func hooked(t *testing.T, rec store.Records) (within func(store.Tx, Alert) error, fail *atomic.Bool, sink *hookSink) {
	sink = newHookSink(t)
	ctx, cancel := context.WithCancel(context.Background())
	m := webhooks.New(webhooks.Config{Records: rec, Shared: true, PollEvery: 50 * time.Millisecond})
	require.NoError(t, m.Start(ctx))
	t.Cleanup(func() { cancel(); m.Wait() })
	_, err := m.Create(ctx, webhooks.Endpoint{URL: sink.srv.URL, Events: []string{webhooks.EventAlert}})
	require.NoError(t, err)
	fail = &atomic.Bool{}
	within = func(tx store.Tx, a Alert) error {
		body, err := json.Marshal(a)
		if err != nil {
			return err
		}
		if err := m.EnqueueTx(tx, webhooks.Event{Type: webhooks.EventAlert, Warehouse: a.Warehouse, Body: body}); err != nil {
			return err
		}
		if fail.Load() {
			return errors.New("the alert's transaction fails after the hook")
		}
		return nil
	}
	return within, fail, sink
}

// txDB opens the database of the transactional-hook tests: Badger here,
// PostgreSQL under TestIntegrationReplicasOnPostgres (shared).
func txDB(t *testing.T) store.Records {
	a, _ := shared(t)
	return a
}

// TestAlertWebhookIsQueuedInTheAlertsTransaction: the webhook of an alert
// change is queued in the transaction that stores it. With no Publish at
// all — a replica that died right after the commit — it is delivered; a
// transaction that fails after the hook leaves neither the alert nor its
// webhook.
func TestAlertWebhookIsQueuedInTheAlertsTransaction(t *testing.T) {
	rec := txDB(t)
	within, fail, sink := hooked(t, rec)
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	svc := New(Config{Records: rec, Within: within, Now: func() time.Time { return now }}) // no Publish: nothing after the commit
	ctx := context.Background()

	fail.Store(true)
	_, err := svc.Raise(Alert{Kind: KindGatewayOffline, Warehouse: "wh1", Message: "lost"})
	require.Error(t, err)
	all, _, err := svc.List(ctx, Query{})
	require.NoError(t, err)
	require.Empty(t, all, "no alert stored")
	require.NoError(t, rec.View(func(tx store.Tx) error {
		return tx.Scan([]byte("wh/q/"), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
			return errors.New("a webhook delivery was queued without its alert")
		})
	}))

	fail.Store(false)
	a, err := svc.Raise(Alert{Kind: KindReorder, Warehouse: "wh1", SKU: "A", Message: "reorder"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(sink.alerts()) == 1 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, a, sink.alerts()[0], "the alert as stored, id included")

	acked, err := svc.Ack(ctx, a.ID, "ana", "ordered")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(sink.alerts()) == 2 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, acked, sink.alerts()[1])
	require.Equal(t, StatusAcknowledged, sink.alerts()[1].Status)

	// An acknowledgement whose transaction fails is not recorded.
	b, err := svc.Raise(Alert{Kind: KindReorder, Warehouse: "wh1", SKU: "B", Message: "reorder"})
	require.NoError(t, err)
	fail.Store(true)
	_, err = svc.Ack(ctx, b.ID, "ana", "")
	require.Error(t, err)
	still, err := svc.Get(ctx, b.ID)
	require.NoError(t, err)
	require.Equal(t, StatusOpen, still.Status)
	// Nor is a resolution.
	_, err = svc.Resolve(ctx, b.ID, "ana", "")
	require.Error(t, err)
	still, err = svc.Get(ctx, b.ID)
	require.NoError(t, err)
	require.Equal(t, StatusOpen, still.Status)
	fail.Store(false)
	resolved, err := svc.Resolve(ctx, b.ID, "ana", "ordered")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(sink.alerts()) == 4 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, resolved, sink.alerts()[3], "A, A acknowledged, B, B resolved: the failed ones published nothing")
}

// TestConflictNotificationIsQueuedInItsTransaction: a conflict's opening
// is notified in the transaction that records it; a failing one records
// nothing, and the conflict is notified by the next observation.
func TestConflictNotificationIsQueuedInItsTransaction(t *testing.T) {
	rec := txDB(t)
	var fail atomic.Bool
	var queued []string
	svc := New(Config{Records: rec, ConflictWithin: func(tx store.Tx, c conflicts.Conflict, event string) error {
		if err := tx.Set([]byte("test/notified/"+c.ID+"/"+event), nil); err != nil {
			return err
		}
		if fail.Load() {
			return errors.New("the notification's transaction fails after the hook")
		}
		queued = append(queued, event)
		return nil
	}})
	c := negative("X")
	fail.Store(true)
	svc.ObserveConflict(c)
	require.NoError(t, rec.View(func(tx store.Tx) error {
		_, found, err := tx.Get([]byte("test/notified/" + c.ID + "/opened"))
		require.False(t, found, "rolled back with the flag")
		return err
	}))
	fail.Store(false)
	svc.ObserveConflict(c)
	svc.ObserveConflict(c)
	require.Equal(t, []string{ConflictOpened}, queued)
}

// conflictStore is what the sweep tests need of the database: records
// and the conflicts of the ledger.
type conflictStore interface {
	store.Records
	Conflicts(ctx context.Context, q conflicts.Query) ([]conflicts.Conflict, error)
}

// raiseConflicts stores conflicts as an apply does, without observing them.
func raiseConflicts(t *testing.T, rec store.Records, cs ...conflicts.Conflict) {
	t.Helper()
	require.NoError(t, rec.Update(func(tx store.Tx) error {
		for _, c := range cs {
			if _, _, err := tx.RaiseConflict(c); err != nil {
				return err
			}
		}
		return nil
	}))
}

func negative(sku string) conflicts.Conflict {
	return conflicts.Conflict{ID: "neg:wh1/BIN/" + sku, Kind: conflicts.KindNegativeStock, Status: conflicts.StatusOpen, Holds: true,
		Warehouse: "wh1", Location: "BIN", SKU: sku, Expected: 0, Observed: -1, Detail: "on-hand −1", CreatedHLC: protocol.MakeHLC(1000, 0)}
}

func sweeper(rec store.Records, h *harness) {
	cs := rec.(conflictStore)
	h.svc.cfg.OpenConflicts = func(ctx context.Context) ([]conflicts.Conflict, error) {
		return cs.Conflicts(ctx, conflicts.Query{Status: conflicts.StatusOpen})
	}
}

// TestSweepRaisesAMissedConflictAlertOnce: conflicts whose ObserveConflict
// never came (the replica that applied them died after the commit) are
// notified by the sweep, once, also with two replicas sweeping at once; a
// conflict observed already is not notified again.
func TestSweepRaisesAMissedConflictAlertOnce(t *testing.T) {
	ra, rb := shared(t)
	a, b := newHarnessOn(ra, nil), newHarnessOn(rb, nil)
	sweeper(ra, a)
	sweeper(rb, b)
	ctx := context.Background()
	seen := negative("SEEN")
	raiseConflicts(t, ra, seen, negative("M1"), negative("M2"), conflicts.Oversell("wh1", "O", 3, 1, protocol.MakeHLC(1000, 0)))
	a.svc.ObserveConflict(seen) // the apply observed this one
	require.Len(t, notified(a, b), 1)

	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i, h := range []*harness{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := h.svc.SweepConflicts(ctx)
			require.NoError(t, err)
			counts[i] = n
		}()
	}
	wg.Wait()
	require.Equal(t, 3, counts[0]+counts[1], "M1, M2 and O, once over both replicas")
	byConflict := map[string]int{}
	for _, n := range notified(a, b) {
		byConflict[n]++
	}
	require.Equal(t, map[string]int{"opened " + seen.ID: 1, "opened neg:wh1/BIN/M1": 1, "opened neg:wh1/BIN/M2": 1, "opened oversell:wh1/O": 1}, byConflict)

	for _, h := range []*harness{a, b} {
		n, err := h.svc.SweepConflicts(ctx)
		require.NoError(t, err)
		require.Zero(t, n, "swept again: nothing new")
	}
	stored, _, err := a.svc.List(ctx, Query{Limit: 100})
	require.NoError(t, err)
	require.Empty(t, stored, "conflicts are not alert items")

	// The apply observing a swept conflict late changes nothing either.
	b.svc.ObserveConflict(negative("M1"))
	require.Len(t, notified(a, b), 4)
}

// TestRunSweepsOnlyWhereSweepSaysSo: Run sweeps every CheckEvery while
// Config.Sweep is true (the leader), never while it is false.
func TestRunSweepsOnlyWhereSweepSaysSo(t *testing.T) {
	rec := txDB(t)
	h := newHarnessOn(rec, nil)
	sweeper(rec, h)
	var leader atomic.Bool
	h.svc.cfg.Sweep = leader.Load
	h.svc.cfg.CheckEvery = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.svc.Run(ctx) }()
	defer func() { cancel(); <-done }()
	raiseConflicts(t, rec, negative("M1"))
	time.Sleep(100 * time.Millisecond) // negative window: ten sweep periods in which a non-leader must not sweep
	require.Empty(t, notified(h), "not the leader: no sweep")
	leader.Store(true)
	require.Eventually(t, func() bool { return len(notified(h)) == 1 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(50 * time.Millisecond) // negative window: five more sweeps must not notify it again
	require.Len(t, notified(h), 1, "once")
}
