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
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelfsync/shelfsync/protocol"
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
const (
	pfxEndpoint = "wh/e/"
	pfxStats    = "wh/s/"
	pfxSeq      = "wh/n/"
	pfxQueue    = "wh/q/"
	pfxKey      = "wh/k/"
	pfxDead     = "wh/d/"
	pfxFail     = "wh/f/"
	pfxFailN    = "wh/fn/"
)

// Config configures the Manager.
type Config struct {
	DB     *badger.DB
	Client *http.Client // default: 10 s timeout
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
	// OnCreate, when set, is called after an endpoint is created (to queue
	// the current state for it: every channel's availability).
	OnCreate func(e Endpoint)
}

// Manager owns the endpoints and their queues; Start runs one worker per
// endpoint.
type Manager struct {
	cfg Config
	db  *badger.DB
	log *slog.Logger

	delivered *prometheus.CounterVec
	depth     prometheus.GaugeFunc

	mu      sync.Mutex
	ctx     context.Context
	workers map[string]*worker
	eps     map[string]Endpoint
	wg      sync.WaitGroup
}

type worker struct {
	wake   chan struct{}
	cancel context.CancelFunc
	nextMS int64
}

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
	m := &Manager{cfg: cfg, db: cfg.DB, log: cfg.Logger, workers: map[string]*worker{}, eps: map[string]Endpoint{}}
	m.delivered = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_webhook_deliveries_total",
		Help: "Webhook delivery attempts by result (success, failure, dead, superseded)."}, []string{"result"})
	m.depth = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelfsync_webhook_queue_depth", Help: "Webhook deliveries waiting, over every endpoint."},
		func() float64 { return float64(m.pendingTotal()) })
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(m.delivered, m.depth)
	}
	return m
}

// Start loads the endpoints and starts their workers; they stop with ctx.
func (m *Manager) Start(ctx context.Context) error {
	var eps []Endpoint
	err := m.db.View(func(txn *badger.Txn) error {
		return forEach(txn, pfxEndpoint, func(_, v []byte) error {
			var e Endpoint
			if err := protocol.Unmarshal(v, &e); err != nil {
				return err
			}
			eps = append(eps, e)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load webhook endpoints: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ctx = ctx
	for _, e := range eps {
		m.eps[e.ID] = e
		m.startWorker(e.ID)
	}
	return nil
}

// Wait waits for the workers after the Start context ended.
func (m *Manager) Wait() { m.wg.Wait() }

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
	if err := m.db.Update(func(txn *badger.Txn) error { return putCBOR(txn, []byte(pfxEndpoint+e.ID), e) }); err != nil {
		return Endpoint{}, err
	}
	m.mu.Lock()
	m.eps[e.ID] = e
	m.startWorker(e.ID)
	m.mu.Unlock()
	if m.cfg.OnCreate != nil {
		m.cfg.OnCreate(e)
	}
	return e, nil
}

// EnqueueTo queues ev for one endpoint when it wants it.
func (m *Manager) EnqueueTo(id string, ev Event) error {
	m.mu.Lock()
	e, ok := m.eps[id]
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("endpoint %s: %w", id, ErrNotFound)
	}
	if !e.Wants(ev) {
		return nil
	}
	if err := m.enqueue(id, ev); err != nil {
		return err
	}
	m.poke(id)
	return nil
}

// Update replaces an endpoint's definition, keeping its id, secret (unless
// a new one is given), queue and stats.
func (m *Manager) Update(_ context.Context, id string, e Endpoint) (Endpoint, error) {
	m.mu.Lock()
	old, ok := m.eps[id]
	m.mu.Unlock()
	if !ok {
		return Endpoint{}, fmt.Errorf("endpoint %s: %w", id, ErrNotFound)
	}
	if err := e.Validate(); err != nil {
		return Endpoint{}, err
	}
	e.ID, e.CreatedMS = id, old.CreatedMS
	if e.Secret == "" {
		e.Secret = old.Secret
	}
	if err := m.db.Update(func(txn *badger.Txn) error { return putCBOR(txn, []byte(pfxEndpoint+id), e) }); err != nil {
		return Endpoint{}, err
	}
	m.mu.Lock()
	m.eps[id] = e
	m.mu.Unlock()
	m.poke(id)
	return e, nil
}

// Delete removes an endpoint with its queue, failures and stats.
func (m *Manager) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	_, ok := m.eps[id]
	if ok {
		delete(m.eps, id)
		if w := m.workers[id]; w != nil {
			w.cancel()
			delete(m.workers, id)
		}
	}
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("endpoint %s: %w", id, ErrNotFound)
	}
	for _, p := range []string{pfxQueue + id + "\x00", pfxKey + id + "\x00", pfxDead + id + "\x00", pfxFail + id + "\x00"} {
		if err := deletePrefix(m.db, p); err != nil {
			return err
		}
	}
	return m.db.Update(func(txn *badger.Txn) error {
		for _, k := range []string{pfxEndpoint + id, pfxStats + id, pfxSeq + id, pfxFailN + id} {
			if err := txn.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
}

// List returns every endpoint with its stats, secrets masked.
func (m *Manager) List(_ context.Context) ([]View, error) {
	m.mu.Lock()
	ids := make([]string, 0, len(m.eps))
	for id := range m.eps {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	sort.Strings(ids)
	out := make([]View, 0, len(ids))
	for _, id := range ids {
		v, err := m.Get(context.Background(), id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Get returns one endpoint with its stats, secret masked.
func (m *Manager) Get(_ context.Context, id string) (View, error) {
	m.mu.Lock()
	e, ok := m.eps[id]
	var next int64
	if w := m.workers[id]; w != nil {
		next = w.nextMS
	}
	m.mu.Unlock()
	if !ok {
		return View{}, fmt.Errorf("endpoint %s: %w", id, ErrNotFound)
	}
	v := View{Endpoint: e}
	v.Secret = mask(e.Secret)
	err := m.db.View(func(txn *badger.Txn) error {
		if _, err := getCBOR(txn, []byte(pfxStats+id), &v.Stats); err != nil {
			return err
		}
		n, err := countPrefix(txn, pfxQueue+id+"\x00")
		v.Stats.Pending = n
		return err
	})
	if v.Stats.Pending > 0 {
		v.Stats.NextAttemptMS = next
	}
	return v, err
}

// Deliveries returns up to limit pending (or, with dead, given-up)
// deliveries of an endpoint, oldest first.
func (m *Manager) Deliveries(_ context.Context, id string, dead bool, limit int) ([]Delivery, error) {
	if !m.has(id) {
		return nil, fmt.Errorf("endpoint %s: %w", id, ErrNotFound)
	}
	pfx := pfxQueue
	if dead {
		pfx = pfxDead
	}
	var out []Delivery
	err := m.db.View(func(txn *badger.Txn) error {
		return forEach(txn, pfx+id+"\x00", func(_, v []byte) error {
			var d Delivery
			if err := protocol.Unmarshal(v, &d); err != nil {
				return err
			}
			out = append(out, d)
			if limit > 0 && len(out) >= limit {
				return errStop
			}
			return nil
		})
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return out, err
}

// Failures returns the endpoint's most recent failed attempts, newest first.
func (m *Manager) Failures(_ context.Context, id string, limit int) ([]Failure, error) {
	if !m.has(id) {
		return nil, fmt.Errorf("endpoint %s: %w", id, ErrNotFound)
	}
	var out []Failure
	err := m.db.View(func(txn *badger.Txn) error {
		return forEach(txn, pfxFail+id+"\x00", func(_, v []byte) error {
			var f Failure
			if err := protocol.Unmarshal(v, &f); err != nil {
				return err
			}
			out = append(out, f)
			return nil
		})
	})
	slices.Reverse(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, err
}

func (m *Manager) has(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.eps[id]
	return ok
}

// Enqueue queues ev for every endpoint that wants it, durably, before it
// returns.
func (m *Manager) Enqueue(ev Event) error {
	m.mu.Lock()
	var ids []string
	for id, e := range m.eps {
		if e.Wants(ev) {
			ids = append(ids, id)
		}
	}
	m.mu.Unlock()
	sort.Strings(ids)
	var errs []error
	for _, id := range ids {
		if err := m.enqueue(id, ev); err != nil {
			errs = append(errs, fmt.Errorf("endpoint %s: %w", id, err))
			continue
		}
		m.poke(id)
	}
	return errors.Join(errs...)
}

// Ping queues a "ping" event for one endpoint.
func (m *Manager) Ping(_ context.Context, id string) (uint64, error) {
	if !m.has(id) {
		return 0, fmt.Errorf("endpoint %s: %w", id, ErrNotFound)
	}
	body := []byte(`{"event":"ping","at":"` + m.cfg.Now().UTC().Format(time.RFC3339Nano) + `"}`)
	var seq uint64
	err := m.update(func(txn *badger.Txn) error {
		var err error
		seq, err = m.put(txn, id, Event{Type: EventPing, Body: body})
		return err
	})
	m.poke(id)
	return seq, err
}

func (m *Manager) enqueue(id string, ev Event) error {
	return m.update(func(txn *badger.Txn) error {
		_, err := m.put(txn, id, ev)
		return err
	})
}

// update retries transactions that lost a race with the worker.
func (m *Manager) update(f func(txn *badger.Txn) error) error {
	var err error
	for i := 0; i < 10; i++ {
		if err = m.db.Update(f); !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
	return err
}

func (m *Manager) put(txn *badger.Txn, id string, ev Event) (uint64, error) {
	seq, err := getU64(txn, []byte(pfxSeq+id))
	if err != nil {
		return 0, err
	}
	seq++
	if ev.Key != "" {
		kk := []byte(pfxKey + id + "\x00" + ev.Key)
		old, err := getU64(txn, kk)
		if err != nil {
			return 0, err
		}
		if old != 0 {
			if found, err := has(txn, queueKey(id, old)); err != nil {
				return 0, err
			} else if found {
				if err := txn.Delete(queueKey(id, old)); err != nil {
					return 0, err
				}
				m.delivered.WithLabelValues("superseded").Inc()
				if err := bumpStats(txn, id, func(s *Stats) { s.Superseded++ }); err != nil {
					return 0, err
				}
			}
		}
		if err := txn.Set(kk, u64(seq)); err != nil {
			return 0, err
		}
	}
	now := m.cfg.Now().UnixMilli()
	d := Delivery{Seq: seq, Event: ev.Type, Key: ev.Key, Body: ev.Body, CreatedMS: now, NextMS: now}
	if err := putCBOR(txn, queueKey(id, seq), d); err != nil {
		return 0, err
	}
	return seq, txn.Set([]byte(pfxSeq+id), u64(seq))
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
	_ = m.db.View(func(txn *badger.Txn) error {
		var err error
		n, err = countPrefix(txn, pfxQueue)
		return err
	})
	return n
}

// run delivers id's queue in order until ctx ends.
func (m *Manager) run(ctx context.Context, id string, w *worker) {
	for ctx.Err() == nil {
		d, ok, err := m.head(id)
		if err != nil {
			m.log.Error("read webhook queue", "endpoint", id, "err", err)
			if !sleep(ctx, time.Second, nil) {
				return
			}
			continue
		}
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
			}
			continue
		}
		now := m.cfg.Now()
		m.mu.Lock()
		w.nextMS = d.NextMS
		m.mu.Unlock()
		if wait := time.UnixMilli(d.NextMS).Sub(now); wait > 0 {
			if !sleep(ctx, wait, w.wake) {
				return
			}
			continue
		}
		if now.Sub(time.UnixMilli(d.CreatedMS)) > m.cfg.MaxAge {
			m.bury(id, d)
			continue
		}
		m.attempt(ctx, id, d)
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

func (m *Manager) head(id string) (Delivery, bool, error) {
	var d Delivery
	var found bool
	err := m.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxQueue + id + "\x00"), PrefetchValues: false})
		defer it.Close()
		it.Rewind()
		if !it.Valid() {
			return nil
		}
		found = true
		return it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &d) })
	})
	return d, found, err
}

func (m *Manager) attempt(ctx context.Context, id string, d Delivery) {
	m.mu.Lock()
	e, ok := m.eps[id]
	m.mu.Unlock()
	if !ok {
		return
	}
	if e.Disabled {
		// a disabled endpoint keeps its queue; it resumes when enabled
		sleep(ctx, time.Minute, m.workerWake(id))
		return
	}
	d.Attempts++
	status, err := m.post(ctx, e, d)
	if ctx.Err() != nil {
		return // shutting down: the attempt does not count
	}
	now := m.cfg.Now()
	if err == nil {
		m.delivered.WithLabelValues("success").Inc()
		_ = m.update(func(txn *badger.Txn) error {
			if found, err := has(txn, queueKey(id, d.Seq)); err != nil || !found {
				return err // superseded meanwhile
			}
			if err := txn.Delete(queueKey(id, d.Seq)); err != nil {
				return err
			}
			return bumpStats(txn, id, func(s *Stats) {
				s.Delivered++
				s.ConsecutiveFailures = 0
				s.LastStatus, s.LastAttemptMS, s.LastSuccessMS = status, now.UnixMilli(), now.UnixMilli()
			})
		})
		return
	}
	m.delivered.WithLabelValues("failure").Inc()
	d.LastError, d.LastStatus = err.Error(), status
	d.NextMS = now.Add(m.backoff(d.Attempts)).UnixMilli()
	m.log.Warn("webhook delivery failed; will retry", "endpoint", id, "url", e.URL, "delivery", d.Seq, "attempt", d.Attempts,
		"retry_in", time.UnixMilli(d.NextMS).Sub(now).Round(time.Millisecond), "err", err)
	uerr := m.update(func(txn *badger.Txn) error {
		if found, err := has(txn, queueKey(id, d.Seq)); err != nil || !found {
			return err
		}
		if err := putCBOR(txn, queueKey(id, d.Seq), d); err != nil {
			return err
		}
		if err := m.addFailure(txn, id, Failure{Delivery: d.Seq, Event: d.Event, Attempt: d.Attempts, AtMS: now.UnixMilli(), Status: status, Error: err.Error()}); err != nil {
			return err
		}
		return bumpStats(txn, id, func(s *Stats) {
			s.Failures++
			s.ConsecutiveFailures++
			s.LastError, s.LastStatus, s.LastAttemptMS = err.Error(), status, now.UnixMilli()
		})
	})
	if uerr != nil {
		m.log.Error("record webhook failure", "endpoint", id, "err", uerr)
	}
}

func (m *Manager) workerWake(id string) chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w := m.workers[id]; w != nil {
		return w.wake
	}
	return nil
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
	m.delivered.WithLabelValues("dead").Inc()
	d.Dead = true
	err := m.update(func(txn *badger.Txn) error {
		if err := txn.Delete(queueKey(id, d.Seq)); err != nil {
			return err
		}
		if err := putCBOR(txn, []byte(pfxDead+id+"\x00"+string(u64(d.Seq))), d); err != nil {
			return err
		}
		return bumpStats(txn, id, func(s *Stats) { s.Dead++ })
	})
	if err != nil {
		m.log.Error("bury webhook delivery", "endpoint", id, "err", err)
	}
	m.log.Warn("webhook delivery given up", "endpoint", id, "delivery", d.Seq, "attempts", d.Attempts, "last_error", d.LastError)
}

func (m *Manager) addFailure(txn *badger.Txn, id string, f Failure) error {
	n, err := getU64(txn, []byte(pfxFailN+id))
	if err != nil {
		return err
	}
	n++
	if err := putCBOR(txn, []byte(pfxFail+id+"\x00"+string(u64(n))), f); err != nil {
		return err
	}
	if n > uint64(m.cfg.MaxFailures) {
		if err := txn.Delete([]byte(pfxFail + id + "\x00" + string(u64(n-uint64(m.cfg.MaxFailures))))); err != nil {
			return err
		}
	}
	return txn.Set([]byte(pfxFailN+id), u64(n))
}

func bumpStats(txn *badger.Txn, id string, f func(*Stats)) error {
	var s Stats
	if _, err := getCBOR(txn, []byte(pfxStats+id), &s); err != nil {
		return err
	}
	f(&s)
	return putCBOR(txn, []byte(pfxStats+id), s)
}

func queueKey(id string, seq uint64) []byte { return []byte(pfxQueue + id + "\x00" + string(u64(seq))) }

var errStop = errors.New("stop")

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func getU64(txn *badger.Txn, key []byte) (uint64, error) {
	it, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var v uint64
	err = it.Value(func(b []byte) error {
		if len(b) != 8 {
			return fmt.Errorf("corrupt value at %q", key)
		}
		v = binary.BigEndian.Uint64(b)
		return nil
	})
	return v, err
}

func has(txn *badger.Txn, key []byte) (bool, error) {
	_, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

func getCBOR(txn *badger.Txn, key []byte, v any) (bool, error) {
	it, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, it.Value(func(b []byte) error { return protocol.Unmarshal(b, v) })
}

func putCBOR(txn *badger.Txn, key []byte, v any) error {
	b, err := protocol.Marshal(v)
	if err != nil {
		return err
	}
	return txn.Set(key, b)
}

func forEach(txn *badger.Txn, prefix string, fn func(k, v []byte) error) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			return err
		}
		if err := fn(it.Item().Key()[len(prefix):], v); err != nil {
			return err
		}
	}
	return nil
}

func countPrefix(txn *badger.Txn, prefix string) (int, error) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: false})
	defer it.Close()
	n := 0
	for it.Rewind(); it.Valid(); it.Next() {
		n++
	}
	return n, nil
}

// deletePrefix deletes every key under prefix, in transactions of bounded size.
func deletePrefix(db *badger.DB, prefix string) error {
	for {
		var keys [][]byte
		err := db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix)})
			defer it.Close()
			for it.Rewind(); it.Valid() && len(keys) < 1000; it.Next() {
				keys = append(keys, it.Item().KeyCopy(nil))
			}
			return nil
		})
		if err != nil || len(keys) == 0 {
			return err
		}
		err = db.Update(func(txn *badger.Txn) error {
			for _, k := range keys {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
}
