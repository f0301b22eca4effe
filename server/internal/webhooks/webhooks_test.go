package webhooks

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
)

// receiver is a webhook endpoint that verifies signatures and can be told
// to fail.
type receiver struct {
	srv    *httptest.Server
	secret string
	fail   atomic.Int32 // answer 503 while > 0 (counts down)
	down   atomic.Bool  // answer 500 while set
	mu     sync.Mutex
	got    []string // bodies, in arrival order
	seen   map[string]bool
	times  []time.Time
	badSig int
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{seen: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.times = append(r.times, time.Now())
		if r.down.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		if r.fail.Load() > 0 {
			r.fail.Add(-1)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if !Verify(r.secret, body, req.Header.Get(HeaderSignature)) {
			r.badSig++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if id := req.Header.Get(HeaderDelivery); !r.seen[id] { // de-duplicate as receivers should
			r.seen[id] = true
			r.got = append(r.got, string(body))
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) bodies() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

type env struct {
	t      *testing.T
	db     store.Records
	m      *Manager
	cancel context.CancelFunc
}

func start(t *testing.T, db store.Records, cfg Config) *env {
	t.Helper()
	cfg.Records = db
	if cfg.InitialBackoff == 0 {
		cfg.InitialBackoff = 10 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 80 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := New(cfg)
	require.NoError(t, m.Start(ctx))
	e := &env{t: t, db: db, m: m, cancel: cancel}
	t.Cleanup(e.stop)
	return e
}

func (e *env) stop() {
	e.cancel()
	e.m.Wait()
}

func memDB(t *testing.T) *badger.Store {
	db, err := badger.Open(badger.Options{InMemory: true})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, 5*time.Millisecond, what)
}

func TestDeliversSignedEventsInOrder(t *testing.T) {
	rcv := newReceiver(t)
	e := start(t, memDB(t), Config{})
	ep, err := e.m.Create(context.Background(), Endpoint{URL: rcv.srv.URL, Events: []string{EventAlert}})
	require.NoError(t, err)
	require.NotEmpty(t, ep.Secret)
	rcv.secret = ep.Secret
	for i := 0; i < 20; i++ {
		require.NoError(t, e.m.Enqueue(Event{Type: EventAlert, Body: []byte(fmt.Sprintf(`{"n":%d}`, i))}))
	}
	require.NoError(t, e.m.Enqueue(Event{Type: EventAvailability, Body: []byte(`{}`)}), "an event the endpoint does not want")
	eventually(t, "20 deliveries", func() bool { return len(rcv.bodies()) == 20 })
	for i, b := range rcv.bodies() {
		require.Equal(t, fmt.Sprintf(`{"n":%d}`, i), b)
	}
	// The receiver counts a post before the manager records it.
	eventually(t, "20 recorded", func() bool { v, _ := e.m.Get(context.Background(), ep.ID); return v.Stats.Delivered == 20 })
	v, err := e.m.Get(context.Background(), ep.ID)
	require.NoError(t, err)
	require.Equal(t, uint64(20), v.Stats.Delivered)
	require.Equal(t, 0, v.Stats.Pending)
	require.NotEqual(t, ep.Secret, v.Secret, "the secret is masked after creation")
	require.Zero(t, rcv.badSig)
}

func TestFailuresAreRetriedWithBackoffAndVisible(t *testing.T) {
	rcv := newReceiver(t)
	rcv.fail.Store(4)
	e := start(t, memDB(t), Config{InitialBackoff: 20 * time.Millisecond, MaxBackoff: 400 * time.Millisecond})
	ep, err := e.m.Create(context.Background(), Endpoint{URL: rcv.srv.URL})
	require.NoError(t, err)
	rcv.secret = ep.Secret
	require.NoError(t, e.m.Enqueue(Event{Type: EventAlert, Body: []byte(`{"a":1}`)}))
	eventually(t, "delivered after 4 failures", func() bool { return len(rcv.bodies()) == 1 })
	// The receiver counts a post before the manager records it.
	eventually(t, "the delivery recorded", func() bool { v, _ := e.m.Get(context.Background(), ep.ID); return v.Stats.Delivered == 1 })

	rcv.mu.Lock()
	times := append([]time.Time(nil), rcv.times...)
	rcv.mu.Unlock()
	require.Len(t, times, 5)
	for i := 1; i < len(times); i++ { // never sooner than the doubling backoff allows
		// The next attempt's time is kept in whole milliseconds (truncated),
		// and the receiver stamps arrivals, not sends: allow a few ms.
		min := time.Duration(float64(20*time.Millisecond<<(i-1))*0.9) - 3*time.Millisecond
		require.GreaterOrEqual(t, times[i].Sub(times[i-1]), min, "wait before attempt %d", i+1)
	}
	fs, err := e.m.Failures(context.Background(), ep.ID, 0)
	require.NoError(t, err)
	require.Len(t, fs, 4)
	require.Equal(t, 4, fs[0].Attempt, "newest first")
	require.Equal(t, 503, fs[0].Status)
	v, err := e.m.Get(context.Background(), ep.ID)
	require.NoError(t, err)
	require.Equal(t, uint64(4), v.Stats.Failures)
	require.Equal(t, uint64(0), v.Stats.ConsecutiveFailures)
	require.Equal(t, uint64(1), v.Stats.Delivered)
}

func TestBackoffDoublesUpToTheCap(t *testing.T) {
	m := New(Config{InitialBackoff: time.Second, MaxBackoff: 10 * time.Second})
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 50: 10 * time.Second} {
		got := m.backoff(n)
		require.InDelta(t, float64(want), float64(got), float64(want)/10+1, "attempt %d", n)
	}
}

// TestQueueSurvivesRestart: events queued while the receiver is down are
// delivered by a new manager over the same database.
func TestQueueSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	db, err := badger.Open(badger.Options{Dir: dir})
	require.NoError(t, err)
	rcv := newReceiver(t)
	rcv.down.Store(true)
	e := start(t, db, Config{})
	ep, err := e.m.Create(context.Background(), Endpoint{URL: rcv.srv.URL})
	require.NoError(t, err)
	rcv.secret = ep.Secret
	for i := 0; i < 5; i++ {
		require.NoError(t, e.m.Enqueue(Event{Type: EventAlert, Body: []byte(fmt.Sprintf(`{"n":%d}`, i))}))
	}
	eventually(t, "a failure", func() bool { v, _ := e.m.Get(context.Background(), ep.ID); return v.Stats.Failures > 0 })
	e.stop()
	require.NoError(t, db.Close())

	db, err = badger.Open(badger.Options{Dir: dir})
	require.NoError(t, err)
	defer db.Close()
	rcv.down.Store(false)
	e2 := start(t, db, Config{})
	eventually(t, "all 5 after the restart", func() bool { return len(rcv.bodies()) == 5 })
	for i, b := range rcv.bodies() {
		require.Equal(t, fmt.Sprintf(`{"n":%d}`, i), b)
	}
	e2.stop()
}

func TestCoalescedEventsDeliverTheLatest(t *testing.T) {
	rcv := newReceiver(t)
	rcv.down.Store(true)
	e := start(t, memDB(t), Config{InitialBackoff: 50 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	ep, err := e.m.Create(context.Background(), Endpoint{URL: rcv.srv.URL, Events: []string{EventAvailability}, Channels: []string{"web"}})
	require.NoError(t, err)
	rcv.secret = ep.Secret
	for i := 0; i < 10; i++ {
		require.NoError(t, e.m.Enqueue(Event{Type: EventAvailability, Channel: "web", Key: "availability/web", Body: []byte(fmt.Sprintf(`{"v":%d}`, i))}))
	}
	require.NoError(t, e.m.Enqueue(Event{Type: EventAvailability, Channel: "shop", Key: "availability/shop", Body: []byte(`{}`)}))
	ds, err := e.m.Deliveries(context.Background(), ep.ID, false, 0)
	require.NoError(t, err)
	require.Len(t, ds, 1, "one pending per key")
	rcv.down.Store(false)
	eventually(t, "the latest", func() bool { b := rcv.bodies(); return len(b) > 0 && b[len(b)-1] == `{"v":9}` })
	require.LessOrEqual(t, len(rcv.bodies()), 2, "at most the one in flight and the latest")
	v, err := e.m.Get(context.Background(), ep.ID)
	require.NoError(t, err)
	require.GreaterOrEqual(t, v.Stats.Superseded, uint64(8))
}

func TestOldDeliveriesAreGivenUpVisibly(t *testing.T) {
	rcv := newReceiver(t)
	rcv.down.Store(true)
	now := time.Now()
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	e := start(t, memDB(t), Config{MaxAge: time.Hour, Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	ep, err := e.m.Create(context.Background(), Endpoint{URL: rcv.srv.URL})
	require.NoError(t, err)
	require.NoError(t, e.m.Enqueue(Event{Type: EventAlert, Body: []byte(`{}`)}))
	eventually(t, "a failure", func() bool { v, _ := e.m.Get(context.Background(), ep.ID); return v.Stats.Failures > 0 })
	clock.Add(int64(2 * time.Hour))
	eventually(t, "given up", func() bool { v, _ := e.m.Get(context.Background(), ep.ID); return v.Stats.Dead == 1 })
	dead, err := e.m.Deliveries(context.Background(), ep.ID, true, 0)
	require.NoError(t, err)
	require.Len(t, dead, 1)
	require.NotEmpty(t, dead[0].LastError)
}

func TestEndpointValidation(t *testing.T) {
	for _, e := range []Endpoint{{URL: "ftp://x"}, {URL: "http://x", Events: []string{"nope"}}, {URL: "http://x", Secret: "short"}} {
		require.ErrorIs(t, e.Validate(), ErrInvalid, "%+v", e)
	}
	ok := Endpoint{URL: "https://example.com/hook"}
	require.NoError(t, ok.Validate())
	require.Equal(t, []string{EventAll}, ok.Events)
	require.True(t, ok.Wants(Event{Type: EventOrder}))
	require.False(t, ok.Wants(Event{Type: EventPing}))
}
