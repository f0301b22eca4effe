package webhooks

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
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
	// late counts attempts that ended after this replica's delivery lease
	// had lapsed (lost mid-post, or the outcome recorded past the lease):
	// another replica may have taken the lease and posted the same
	// delivery again. That is the one way a receiver sees a delivery id
	// twice, which is why receivers drop repeated X-Shelfsync-Delivery ids.
	late prometheus.Counter

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
	m.late = prometheus.NewCounter(prometheus.CounterOpts{Name: "shelfsync_webhook_late_attempts_total",
		Help: "Webhook attempts that ended after this replica's delivery lease lapsed (a paused or overloaded replica): another replica may repeat them; receivers drop a repeated X-Shelfsync-Delivery id."})
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(m.delivered, m.depth, m.late)
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

// Record helpers shared by the packages beside the ledger (store/tx.go).
var (
	getU64  = store.GetU64
	getCBOR = store.GetCBOR
	putCBOR = store.PutCBOR
)
