package webhooks

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Keys (fields joined with NUL; numbers big-endian):
//
//	wh/e/{id}                 Endpoint (CBOR)
//	wh/s/{id}                 Stats (CBOR)
//	wh/n/{id}                 last delivery seq (uint64)
//	wh/q/{id}\0{seq}          pending Delivery (CBOR), FIFO by seq
//	wh/k/{id}\0{key}          seq of the pending delivery with a coalescing key
//	wh/d/{id}\0{seq}          dead Delivery (given up)
//	wh/f/{id}\0{n}            Failure; the last MaxFailures are kept
//	wh/fn/{id}                last failure number (uint64)
//	wh/l/{id}                 delivery lease (CBOR) when Shared
const (
	pfxEndpoint = "wh/e/"
	pfxStats    = "wh/s/"
	pfxSeq      = "wh/n/"
	pfxQueue    = "wh/q/"
	pfxKey      = "wh/k/"
	pfxDead     = "wh/d/"
	pfxFail     = "wh/f/"
	pfxFailN    = "wh/fn/"
	pfxLease    = "wh/l/"
)

// Config configures the Manager.
type Config struct {
	// Records holds the endpoints, their queues and stats (required).
	Records store.Records
	Client  *http.Client // default: 10 s timeout
	// InitialBackoff is the wait after the first failure (default 1s); it
	// doubles per failure up to MaxBackoff (default 5m), ±10% jitter.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// MaxAge gives up a delivery this long after it was queued (default
	// 72h); it is kept as dead, visible in the API.
	MaxAge time.Duration
	// MaxFailures is how many failed attempts are kept per endpoint (default 200).
	MaxFailures int
	Now         func() time.Time
	Logger      *slog.Logger
	Registerer  prometheus.Registerer

	// Shared says that other replicas run managers over the same Records
	// (see the package comment): this one then re-reads the endpoints and
	// looks at every queue each PollEvery, reads the endpoints in
	// Enqueue's transaction, and delivers an endpoint's queue only while
	// it holds the endpoint's delivery lease. Off: a single server, as
	// before.
	Shared bool
	// PollEvery is how often a shared manager picks up endpoints and
	// events of other replicas (default 1s).
	PollEvery time.Duration
	// LeaseTTL is how long a delivery lease outlives its last renewal
	// (renewed every LeaseTTL/3 while delivering; default 15s): how long
	// the queues of a replica that died wait for another one.
	LeaseTTL time.Duration
	// ReplicaID names this replica as a lease holder (default random); it
	// must differ between replicas.
	ReplicaID string
}

// Manager owns the endpoints and their queues; Start runs one worker per
// endpoint.
type Manager struct {
	cfg Config
	rec store.Records
	log *slog.Logger

	delivered *prometheus.CounterVec
	depth     prometheus.GaugeFunc

	// epMu orders changes of the endpoint set (records, then eps and
	// workers) against each other and against reload.
	epMu sync.Mutex

	mu      sync.Mutex
	ctx     context.Context
	workers map[string]*worker
	eps     map[string]Endpoint // the endpoints as last read or written here
	wg      sync.WaitGroup

	noRelease bool // tests: leave leases behind on stop, as a crash does
}

type worker struct {
	wake   chan struct{}
	cancel context.CancelFunc
	lease  leaseState // Shared; owned by the worker goroutine
	// expect is when (unix ns) the worker stops expecting deliveries that
	// EnqueueTx wrote in a transaction not yet committed: until then it
	// looks at an empty queue again, backing off, instead of waiting for
	// the next wake (see EnqueueTx).
	expect atomic.Int64
}

// expectCommit is how long a worker looks again at its empty queue after
// EnqueueTx queued for it in a transaction it cannot see commit; a shared
// manager's poll also picks deliveries up within PollEvery.
const expectCommit = 5 * time.Second

// expectPoll bounds the backoff between those looks.
const expectPoll = 100 * time.Millisecond

// New builds a manager; Start loads the endpoints and starts delivering.
func New(cfg Config) *Manager {
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.InitialBackoff <= 0 {
		cfg.InitialBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Minute
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 72 * time.Hour
	}
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = 200
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PollEvery <= 0 {
		cfg.PollEvery = time.Second
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 15 * time.Second
	}
	if cfg.ReplicaID == "" {
		cfg.ReplicaID = "replica-" + randomHex(6)
	}
	m := &Manager{cfg: cfg, rec: cfg.Records, log: cfg.Logger, workers: map[string]*worker{}, eps: map[string]Endpoint{}}
	m.delivered = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_webhook_deliveries_total",
		Help: "Webhook delivery attempts by result (success, failure, dead, superseded)."}, []string{"result"})
	m.depth = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelfsync_webhook_queue_depth", Help: "Webhook deliveries waiting, over every endpoint."},
		func() float64 { return float64(m.pendingTotal()) })
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(m.delivered, m.depth)
	}
	return m
}

// Start loads the endpoints and starts their workers (and, when Shared,
// the poller); they stop with ctx.
func (m *Manager) Start(ctx context.Context) error {
	m.epMu.Lock()
	defer m.epMu.Unlock()
	eps, err := m.loadEndpoints()
	if err != nil {
		return fmt.Errorf("load webhook endpoints: %w", err)
	}
	m.mu.Lock()
	m.ctx = ctx
	for _, e := range eps {
		m.eps[e.ID] = e
		m.startWorker(e.ID)
	}
	m.mu.Unlock()
	if m.cfg.Shared {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.poll(ctx)
		}()
	}
	return nil
}

// Wait waits for the workers after the Start context ended.
func (m *Manager) Wait() { m.wg.Wait() }

func (m *Manager) loadEndpoints() ([]Endpoint, error) {
	var eps []Endpoint
	err := m.rec.View(func(tx store.Tx) error {
		eps = nil
		return tx.Scan([]byte(pfxEndpoint), store.ScanOptions{}, func(_, v []byte) error {
			var e Endpoint
			if err := protocol.Unmarshal(v, &e); err != nil {
				return err
			}
			eps = append(eps, e)
			return nil
		})
	})
	return eps, err
}

// poll picks up, every PollEvery, what other replicas did: endpoints
// created, changed or deleted, and events they queued.
func (m *Manager) poll(ctx context.Context) {
	t := time.NewTicker(m.cfg.PollEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.reload(); err != nil {
				m.log.Warn("reload webhook endpoints", "err", err)
			}
		}
	}
}

// reload brings the endpoints and workers in line with the records and
// has every worker look at its queue.
func (m *Manager) reload() error {
	m.epMu.Lock()
	defer m.epMu.Unlock()
	eps, err := m.loadEndpoints()
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	live := make(map[string]bool, len(eps))
	for _, e := range eps {
		live[e.ID] = true
		m.eps[e.ID] = e
		m.startWorker(e.ID)
	}
	for id := range m.eps {
		if !live[id] {
			m.dropLocked(id)
		}
	}
	for _, w := range m.workers {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// startWorker runs id's worker; m.mu is held.
func (m *Manager) startWorker(id string) {
	if m.ctx == nil || m.workers[id] != nil {
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	w := &worker{wake: make(chan struct{}, 1), cancel: cancel}
	m.workers[id] = w
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.run(ctx, id, w)
	}()
}

// dropLocked forgets id and stops its worker; m.mu is held.
func (m *Manager) dropLocked(id string) {
	delete(m.eps, id)
	if w := m.workers[id]; w != nil {
		w.cancel()
		delete(m.workers, id)
	}
}

// Create adds an endpoint; a secret is generated when none is given. The
// returned endpoint carries the secret in clear, once.
func (m *Manager) Create(_ context.Context, e Endpoint) (Endpoint, error) {
	if err := e.Validate(); err != nil {
		return Endpoint{}, err
	}
	e.ID = randomHex(8)
	if e.Secret == "" {
		e.Secret = "whsec_" + randomHex(24)
	}
	e.CreatedMS = m.cfg.Now().UnixMilli()
	m.epMu.Lock()
	if err := m.rec.Update(func(tx store.Tx) error { return putCBOR(tx, []byte(pfxEndpoint+e.ID), e) }); err != nil {
		m.epMu.Unlock()
		return Endpoint{}, err
	}
	m.mu.Lock()
	m.eps[e.ID] = e
	m.startWorker(e.ID)
	m.mu.Unlock()
	m.epMu.Unlock()
	return e, nil
}

// EnqueueTo queues ev for one endpoint when it wants it.
func (m *Manager) EnqueueTo(id string, ev Event) error {
	var queued bool
	var superseded int
	err := m.rec.Update(func(tx store.Tx) error {
		queued, superseded = false, 0
		e, err := endpointIn(tx, id)
		if err != nil || !e.Wants(ev) {
			return err
		}
		_, n, err := m.put(tx, id, ev)
		queued, superseded = err == nil, n
		return err
	})
	if err != nil {
		return err
	}
	m.delivered.WithLabelValues("superseded").Add(float64(superseded))
	if queued {
		m.poke(id)
	}
	return nil
}

// Update replaces an endpoint's definition, keeping its id, secret (unless
// a new one is given), queue and stats.
func (m *Manager) Update(_ context.Context, id string, e Endpoint) (Endpoint, error) {
	if err := e.Validate(); err != nil {
		return Endpoint{}, err
	}
	m.epMu.Lock()
	defer m.epMu.Unlock()
	in := e
	err := m.rec.Update(func(tx store.Tx) error {
		old, err := endpointIn(tx, id)
		if err != nil {
			return err
		}
		e = in
		e.ID, e.CreatedMS = id, old.CreatedMS
		if e.Secret == "" {
			e.Secret = old.Secret
		}
		return putCBOR(tx, []byte(pfxEndpoint+id), e)
	})
	if err != nil {
		return Endpoint{}, err
	}
	m.mu.Lock()
	m.eps[id] = e
	m.startWorker(id)
	m.mu.Unlock()
	m.poke(id)
	return e, nil
}

// Delete removes an endpoint with its queue, failures and stats.
func (m *Manager) Delete(_ context.Context, id string) error {
	m.epMu.Lock()
	m.mu.Lock()
	m.dropLocked(id)
	m.mu.Unlock()
	// The endpoint first: what runs after this transaction (a worker of
	// another replica, an Enqueue) finds it gone and writes nothing.
	err := m.rec.Update(func(tx store.Tx) error {
		if _, err := endpointIn(tx, id); err != nil {
			return err
		}
		for _, k := range []string{pfxEndpoint + id, pfxStats + id, pfxSeq + id, pfxFailN + id, pfxLease + id} {
			if err := tx.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
	m.epMu.Unlock()
	if err != nil {
		return err
	}
	for _, p := range []string{pfxQueue + id + "\x00", pfxKey + id + "\x00", pfxDead + id + "\x00", pfxFail + id + "\x00"} {
		if err := deletePrefix(m.rec, p); err != nil {
			return err
		}
	}
	return nil
}

// List returns every endpoint with its stats, secrets masked.
func (m *Manager) List(_ context.Context) ([]View, error) {
	var out []View
	err := m.rec.View(func(tx store.Tx) error {
		out = []View{}
		return tx.Scan([]byte(pfxEndpoint), store.ScanOptions{}, func(_, v []byte) error {
			var e Endpoint
			if err := protocol.Unmarshal(v, &e); err != nil {
				return err
			}
			view, err := viewIn(tx, e)
			out = append(out, view)
			return err
		})
	})
	return out, err
}

// Get returns one endpoint with its stats, secret masked.
func (m *Manager) Get(_ context.Context, id string) (View, error) {
	var v View
	err := m.rec.View(func(tx store.Tx) error {
		e, err := endpointIn(tx, id)
		if err != nil {
			return err
		}
		v, err = viewIn(tx, e)
		return err
	})
	return v, err
}

// viewIn reads e's stats and queue.
func viewIn(tx store.KV, e Endpoint) (View, error) {
	v := View{Endpoint: e}
	v.Secret = mask(e.Secret)
	if _, err := getCBOR(tx, []byte(pfxStats+e.ID), &v.Stats); err != nil {
		return v, err
	}
	err := tx.Scan([]byte(pfxQueue+e.ID+"\x00"), store.ScanOptions{}, func(_, b []byte) error {
		if v.Stats.Pending == 0 {
			var d Delivery
			if err := protocol.Unmarshal(b, &d); err != nil {
				return err
			}
			v.Stats.NextAttemptMS = d.NextMS
		}
		v.Stats.Pending++
		return nil
	})
	return v, err
}

// Deliveries returns up to limit pending (or, with dead, given-up)
// deliveries of an endpoint, oldest first.
func (m *Manager) Deliveries(_ context.Context, id string, dead bool, limit int) ([]Delivery, error) {
	pfx := pfxQueue
	if dead {
		pfx = pfxDead
	}
	var out []Delivery
	err := m.rec.View(func(tx store.Tx) error {
		out = nil
		if _, err := endpointIn(tx, id); err != nil {
			return err
		}
		return tx.Scan([]byte(pfx+id+"\x00"), store.ScanOptions{}, func(_, v []byte) error {
			var d Delivery
			if err := protocol.Unmarshal(v, &d); err != nil {
				return err
			}
			out = append(out, d)
			if limit > 0 && len(out) >= limit {
				return store.ErrStopScan
			}
			return nil
		})
	})
	return out, err
}

// Failures returns the endpoint's most recent failed attempts, newest first.
func (m *Manager) Failures(_ context.Context, id string, limit int) ([]Failure, error) {
	var out []Failure
	err := m.rec.View(func(tx store.Tx) error {
		out = nil
		if _, err := endpointIn(tx, id); err != nil {
			return err
		}
		return tx.Scan([]byte(pfxFail+id+"\x00"), store.ScanOptions{Reverse: true}, func(_, v []byte) error {
			var f Failure
			if err := protocol.Unmarshal(v, &f); err != nil {
				return err
			}
			out = append(out, f)
			if limit > 0 && len(out) >= limit {
				return store.ErrStopScan
			}
			return nil
		})
	})
	return out, err
}

// endpointIn reads endpoint id, or ErrNotFound.
func endpointIn(tx store.KV, id string) (Endpoint, error) {
	var e Endpoint
	found, err := getCBOR(tx, []byte(pfxEndpoint+id), &e)
	if err == nil && !found {
		err = fmt.Errorf("endpoint %s: %w", id, ErrNotFound)
	}
	return e, err
}

// Enqueue queues ev for every endpoint that wants it, durably, before it
// returns. A shared manager reads the endpoints in the transaction that
// queues: an endpoint another replica created just before is served.
func (m *Manager) Enqueue(ev Event) error {
	if m.cfg.Shared {
		return m.enqueueShared(ev)
	}
	m.mu.Lock()
	var ids []string
	for id, e := range m.eps {
		if e.Wants(ev) {
			ids = append(ids, id)
		}
	}
	m.mu.Unlock()
	var errs []error
	for _, id := range ids {
		var queued bool
		var superseded int
		err := m.rec.Update(func(tx store.Tx) error {
			queued, superseded = false, 0
			if _, err := endpointIn(tx, id); errors.Is(err, ErrNotFound) {
				return nil // deleted meanwhile
			} else if err != nil {
				return err
			}
			_, n, err := m.put(tx, id, ev)
			queued, superseded = err == nil, n
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("endpoint %s: %w", id, err))
			continue
		}
		m.delivered.WithLabelValues("superseded").Add(float64(superseded))
		if queued {
			m.poke(id)
		}
	}
	return errors.Join(errs...)
}

// EnqueueTx queues ev, in the caller's transaction tx, for every endpoint
// that wants it — the endpoints as recorded, read in tx — so that the event
// is queued exactly when what tx records (an alert, an order) commits: a
// replica that dies right after the commit leaves the delivery queued for
// whichever replica delivers the endpoint's queue. It writes only through
// tx, so it is safe to run again when Update retries f, and it leaves
// nothing behind when tx does not commit.
//
// The workers of those endpoints are poked at once; as this manager cannot
// see tx commit, each looks at its queue again, backing off up to 100 ms,
// for a few seconds until the delivery shows (a shared manager's poll picks
// it up within PollEvery anyway). The "superseded" counter does not count
// deliveries a coalescing key replaced here (the endpoint's Stats do).
func (m *Manager) EnqueueTx(tx store.Tx, ev Event) error {
	var ids []string
	if err := tx.Scan([]byte(pfxEndpoint), store.ScanOptions{}, func(_, v []byte) error {
		var e Endpoint
		if err := protocol.Unmarshal(v, &e); err != nil {
			return err
		}
		if e.Wants(ev) {
			ids = append(ids, e.ID)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, id := range ids {
		if _, _, err := m.put(tx, id, ev); err != nil {
			return fmt.Errorf("endpoint %s: %w", id, err)
		}
	}
	m.expect(ids)
	return nil
}

// expect has the workers of ids look for deliveries about to commit.
func (m *Manager) expect(ids []string) {
	until := time.Now().Add(expectCommit).UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		w := m.workers[id]
		if w == nil {
			continue // another replica's endpoint not seen yet: the poll starts its worker
		}
		for {
			cur := w.expect.Load()
			if cur >= until || w.expect.CompareAndSwap(cur, until) {
				break
			}
		}
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

func (m *Manager) enqueueShared(ev Event) error {
	var ids []string
	var superseded int
	err := m.rec.Update(func(tx store.Tx) error {
		var eps []Endpoint
		ids, superseded = nil, 0
		if err := tx.Scan([]byte(pfxEndpoint), store.ScanOptions{}, func(_, v []byte) error {
			var e Endpoint
			if err := protocol.Unmarshal(v, &e); err != nil {
				return err
			}
			if e.Wants(ev) {
				eps = append(eps, e)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, e := range eps {
			_, n, err := m.put(tx, e.ID, ev)
			if err != nil {
				return fmt.Errorf("endpoint %s: %w", e.ID, err)
			}
			ids, superseded = append(ids, e.ID), superseded+n
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.delivered.WithLabelValues("superseded").Add(float64(superseded))
	for _, id := range ids {
		m.poke(id)
	}
	return nil
}

// Ping queues a "ping" event for one endpoint.
func (m *Manager) Ping(_ context.Context, id string) (uint64, error) {
	body := []byte(`{"event":"ping","at":"` + m.cfg.Now().UTC().Format(time.RFC3339Nano) + `"}`)
	var seq uint64
	err := m.rec.Update(func(tx store.Tx) error {
		seq = 0
		if _, err := endpointIn(tx, id); err != nil {
			return err
		}
		var err error
		seq, _, err = m.put(tx, id, Event{Type: EventPing, Body: body})
		return err
	})
	if err == nil {
		m.poke(id)
	}
	return seq, err
}

// put queues ev for endpoint id (which exists) and returns the delivery's
// seq and how many undelivered events it superseded.
func (m *Manager) put(tx store.Tx, id string, ev Event) (uint64, int, error) {
	seq, err := getU64(tx, []byte(pfxSeq+id))
	if err != nil {
		return 0, 0, err
	}
	seq++
	superseded := 0
	if ev.Key != "" {
		kk := []byte(pfxKey + id + "\x00" + ev.Key)
		old, err := getU64(tx, kk)
		if err != nil {
			return 0, 0, err
		}
		if old != 0 {
			if _, found, err := tx.Get(queueKey(id, old)); err != nil {
				return 0, 0, err
			} else if found {
				if err := tx.Delete(queueKey(id, old)); err != nil {
					return 0, 0, err
				}
				superseded++
				if err := bumpStats(tx, id, func(s *Stats) { s.Superseded++ }); err != nil {
					return 0, 0, err
				}
			}
		}
		if err := tx.Set(kk, u64(seq)); err != nil {
			return 0, 0, err
		}
	}
	now := m.cfg.Now().UnixMilli()
	d := Delivery{Seq: seq, Event: ev.Type, Key: ev.Key, Body: ev.Body, CreatedMS: now, NextMS: now}
	if err := putCBOR(tx, queueKey(id, seq), d); err != nil {
		return 0, 0, err
	}
	return seq, superseded, tx.Set([]byte(pfxSeq+id), u64(seq))
}

func (m *Manager) poke(id string) {
	m.mu.Lock()
	w := m.workers[id]
	m.mu.Unlock()
	if w == nil {
		return
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (m *Manager) pendingTotal() int {
	n := 0
	_ = m.rec.View(func(tx store.Tx) error {
		n = 0
		return tx.Scan([]byte(pfxQueue), store.ScanOptions{KeysOnly: true}, func(_, _ []byte) error { n++; return nil })
	})
	return n
}

// run delivers id's queue in order until ctx ends.
func (m *Manager) run(ctx context.Context, id string, w *worker) {
	if m.cfg.Shared {
		defer func() {
			if w.lease.held && !m.noRelease {
				m.release(id)
			}
		}()
	}
	idle := time.Millisecond // the next look at an empty queue while expecting a commit
	for ctx.Err() == nil {
		e, d, ok, err := m.head(id)
		if err != nil {
			m.log.Error("read webhook queue", "endpoint", id, "err", err)
			if !sleep(ctx, time.Second, nil) {
				return
			}
			continue
		}
		if !ok {
			if time.Now().UnixNano() < w.expect.Load() {
				// EnqueueTx queued in a transaction that may not have
				// committed yet: look again soon.
				if !sleep(ctx, idle, w.wake) {
					return
				}
				idle = min(2*idle, expectPoll)
				continue
			}
			idle = time.Millisecond
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
			}
			continue
		}
		idle = time.Millisecond
		if e.Disabled {
			// a disabled endpoint keeps its queue; it resumes when enabled
			if !sleep(ctx, time.Minute, w.wake) {
				return
			}
			continue
		}
		if m.cfg.Shared && !m.holdLease(ctx, id, w) {
			// another replica delivers; look again at the next poll
			if !sleep(ctx, m.cfg.PollEvery, w.wake) {
				return
			}
			continue
		}
		now := m.cfg.Now()
		if wait := time.UnixMilli(d.NextMS).Sub(now); wait > 0 {
			if m.cfg.Shared {
				wait = min(wait, m.renewEvery()) // keep the lease while backing off
			}
			if !sleep(ctx, wait, w.wake) {
				return
			}
			continue
		}
		if now.Sub(time.UnixMilli(d.CreatedMS)) > m.cfg.MaxAge {
			m.bury(id, d)
			continue
		}
		m.attempt(ctx, id, e, d, w)
	}
}

// sleep waits d, or until wake fires or ctx ends; it reports false when ctx ended.
func sleep(ctx context.Context, d time.Duration, wake chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}

// head returns endpoint id and the first delivery of its queue; ok is
// false when the queue is empty or the endpoint gone.
func (m *Manager) head(id string) (Endpoint, Delivery, bool, error) {
	var e Endpoint
	var d Delivery
	var found bool
	err := m.rec.View(func(tx store.Tx) error {
		found = false
		var err error
		if e, err = endpointIn(tx, id); errors.Is(err, ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		return tx.Scan([]byte(pfxQueue+id+"\x00"), store.ScanOptions{}, func(_, v []byte) error {
			found = true
			if err := protocol.Unmarshal(v, &d); err != nil {
				return err
			}
			return store.ErrStopScan
		})
	})
	return e, d, found, err
}

func (m *Manager) attempt(ctx context.Context, id string, e Endpoint, d Delivery, w *worker) {
	d.Attempts++
	pctx, stop := ctx, func() bool { return false }
	if m.cfg.Shared {
		pctx, stop = m.keepLease(ctx, id, w)
	}
	status, err := m.post(pctx, e, d)
	lost := stop()
	if ctx.Err() != nil || (err != nil && lost) {
		return // shutting down, or the lease is gone: the attempt does not count
	}
	now := m.cfg.Now()
	if err == nil {
		m.delivered.WithLabelValues("success").Inc()
		uerr := m.rec.Update(func(tx store.Tx) error {
			if ok, err := queued(tx, id, d.Seq); err != nil || !ok {
				return err // superseded or deleted meanwhile
			}
			if err := tx.Delete(queueKey(id, d.Seq)); err != nil {
				return err
			}
			return bumpStats(tx, id, func(s *Stats) {
				s.Delivered++
				s.ConsecutiveFailures = 0
				s.LastStatus, s.LastAttemptMS, s.LastSuccessMS = status, now.UnixMilli(), now.UnixMilli()
			})
		})
		if uerr != nil {
			m.log.Error("record webhook delivery", "endpoint", id, "err", uerr)
		}
		return
	}
	m.delivered.WithLabelValues("failure").Inc()
	d.LastError, d.LastStatus = err.Error(), status
	d.NextMS = now.Add(m.backoff(d.Attempts)).UnixMilli()
	m.log.Warn("webhook delivery failed; will retry", "endpoint", id, "url", e.URL, "delivery", d.Seq, "attempt", d.Attempts,
		"retry_in", time.UnixMilli(d.NextMS).Sub(now).Round(time.Millisecond), "err", err)
	uerr := m.rec.Update(func(tx store.Tx) error {
		if ok, err := queued(tx, id, d.Seq); err != nil || !ok {
			return err
		}
		if err := putCBOR(tx, queueKey(id, d.Seq), d); err != nil {
			return err
		}
		if err := m.addFailure(tx, id, Failure{Delivery: d.Seq, Event: d.Event, Attempt: d.Attempts, AtMS: now.UnixMilli(), Status: status, Error: err.Error()}); err != nil {
			return err
		}
		return bumpStats(tx, id, func(s *Stats) {
			s.Failures++
			s.ConsecutiveFailures++
			s.LastError, s.LastStatus, s.LastAttemptMS = err.Error(), status, now.UnixMilli()
		})
	})
	if uerr != nil {
		m.log.Error("record webhook failure", "endpoint", id, "err", uerr)
	}
}

// queued reports whether delivery seq of endpoint id is still pending and
// the endpoint still there (another replica may have deleted it).
func queued(tx store.KV, id string, seq uint64) (bool, error) {
	if _, ok, err := tx.Get([]byte(pfxEndpoint + id)); err != nil || !ok {
		return false, err
	}
	_, ok, err := tx.Get(queueKey(id, seq))
	return ok, err
}

func (m *Manager) post(ctx context.Context, e Endpoint, d Delivery) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(d.Body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "shelfsync-webhooks/1")
	req.Header.Set(HeaderEvent, d.Event)
	req.Header.Set(HeaderDelivery, e.ID+"-"+strconv.FormatUint(d.Seq, 10))
	req.Header.Set(HeaderAttempt, strconv.Itoa(d.Attempts))
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(m.cfg.Now().Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(e.Secret, d.Body))
	resp, err := m.cfg.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("receiver answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

// backoff returns the wait after the n-th failed attempt.
func (m *Manager) backoff(n int) time.Duration {
	d := m.cfg.InitialBackoff
	for i := 1; i < n && d < m.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, m.cfg.MaxBackoff)
	jitter := 0.9 + 0.2*rand.Float64()
	return time.Duration(float64(d) * jitter)
}

// bury moves a delivery that is too old to the dead list.
func (m *Manager) bury(id string, d Delivery) {
	d.Dead = true
	var buried bool
	err := m.rec.Update(func(tx store.Tx) error {
		buried = false
		if ok, err := queued(tx, id, d.Seq); err != nil || !ok {
			return err
		}
		if err := tx.Delete(queueKey(id, d.Seq)); err != nil {
			return err
		}
		if err := putCBOR(tx, []byte(pfxDead+id+"\x00"+string(u64(d.Seq))), d); err != nil {
			return err
		}
		buried = true
		return bumpStats(tx, id, func(s *Stats) { s.Dead++ })
	})
	if err != nil {
		m.log.Error("bury webhook delivery", "endpoint", id, "err", err)
		return
	}
	if buried {
		m.delivered.WithLabelValues("dead").Inc()
		m.log.Warn("webhook delivery given up", "endpoint", id, "delivery", d.Seq, "attempts", d.Attempts, "last_error", d.LastError)
	}
}

func (m *Manager) addFailure(tx store.Tx, id string, f Failure) error {
	n, err := getU64(tx, []byte(pfxFailN+id))
	if err != nil {
		return err
	}
	n++
	if err := putCBOR(tx, []byte(pfxFail+id+"\x00"+string(u64(n))), f); err != nil {
		return err
	}
	if n > uint64(m.cfg.MaxFailures) {
		if err := tx.Delete([]byte(pfxFail + id + "\x00" + string(u64(n-uint64(m.cfg.MaxFailures))))); err != nil {
			return err
		}
	}
	return tx.Set([]byte(pfxFailN+id), u64(n))
}

func bumpStats(tx store.KV, id string, f func(*Stats)) error {
	var s Stats
	if _, err := getCBOR(tx, []byte(pfxStats+id), &s); err != nil {
		return err
	}
	f(&s)
	return putCBOR(tx, []byte(pfxStats+id), s)
}

func queueKey(id string, seq uint64) []byte { return []byte(pfxQueue + id + "\x00" + string(u64(seq))) }

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

// deletePrefix deletes every key under prefix, in transactions of at most
// deleteBatch keys.
func deletePrefix(rec store.Records, prefix string) error {
	for {
		n := 0
		err := rec.Update(func(tx store.Tx) error {
			var keys [][]byte
			if err := tx.Scan([]byte(prefix), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
				keys = append(keys, k)
				if len(keys) == deleteBatch {
					return store.ErrStopScan
				}
				return nil
			}); err != nil {
				return err
			}
			for _, k := range keys {
				if err := tx.Delete(k); err != nil {
					return err
				}
			}
			n = len(keys)
			return nil
		})
		if err != nil || n == 0 {
			return err
		}
	}
}

const deleteBatch = 1000

// Record helpers shared by the packages beside the ledger (store/tx.go).
var (
	getU64  = store.GetU64
	getCBOR = store.GetCBOR
	putCBOR = store.PutCBOR
)
