// Package replica keeps the replicas of one PostgreSQL database in step
// beyond what the database itself serialises:
//
//   - The feed (feed.go). Each replica keeps in-memory views — the order
//     model's availability, the dashboard's live feed, the downstream
//     sender's idea of when a warehouse's log grew — that follow the
//     post-commit events of its own bus. The feed tells the other replicas
//     what this one committed (stock keys of an applied batch, an order
//     written, channels or master data changed), and publishes what they
//     tell on this replica's bus as Remote events, so that their views
//     follow within milliseconds. The feed is a hint: a replica that lost
//     messages re-reads everything (Config.OnLost), and every view also
//     re-reads periodically.
//   - The leader. Work that must happen once for the whole system and is
//     not a consequence of one transaction — publishing availability per
//     channel and judging oversells from the order model — runs on one
//     replica at a time, elected with a PostgreSQL session lock
//     (Config.OnLeader).
//   - The partition (partition.go). With warehouse leases each warehouse's
//     gateways are applied, acknowledged and sent their downstream by one
//     replica at a time; the others drop their messages unread.
//
// With the Badger store there is one server and no Replica.
package replica

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelfsync/shelfsync/server/internal/events"
	"github.com/shelfsync/shelfsync/server/internal/store/postgres"
)

// Bus is what a Replica needs of the server's event bus.
type Bus interface {
	events.Publisher
	Subscribe(name string, handle func(context.Context, events.Event), o events.Options)
}

var _ Bus = (*events.Bus)(nil)

// Config configures a Replica.
type Config struct {
	// DB is the shared database.
	DB *postgres.Store
	// Bus carries this replica's post-commit events, which the feed tells
	// the others, and receives theirs as Remote events.
	Bus Bus
	// Partition makes the replicas divide the warehouses between them
	// with leases (partition.go); off, every replica handles every message
	// it receives.
	Partition bool
	// LeaseTTL is how long a warehouse lease outlives its holder's last
	// renewal; default 10 s.
	LeaseTTL   time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Replica is this server's part in a set of replicas.
type Replica struct {
	cfg    Config
	id     string
	log    *slog.Logger
	leader atomic.Bool
	part   *Partition // nil without Config.Partition
	feed   *feed
	wg     sync.WaitGroup

	onLost func() // set by Run
	lostMu sync.Mutex
	losing bool // an OnLost runs
}

// NewID returns a fresh replica name.
func NewID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// New builds the replica named id (NewID) and subscribes its feed to the
// bus; Run starts it.
func New(id string, cfg Config) *Replica {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 10 * time.Second
	}
	r := &Replica{cfg: cfg, id: id, log: cfg.Logger.With("component", "replica", "replica", id)}
	r.feed = newFeed(id, cfg.DB, cfg.Bus, r.log, r.lost)
	// A gateway's batch is told from inside its apply transaction:
	// PostgreSQL notifies when, and only if, it commits, so a replica
	// killed right after a commit has told the others already.
	cfg.DB.SetApplyNotify(r.feed.applyPayloads)
	cfg.Bus.Subscribe("replica-feed", r.feed.send, events.Options{Resync: r.feed.lostHere})
	if cfg.Partition {
		r.part = newPartition(cfg.DB.Leases(postgres.LeaseOptions{ID: id, TTL: cfg.LeaseTTL, Logger: r.log}), r.log)
	}
	r.metrics(cfg.Registerer)
	return r
}

// ID returns the replica's name (in leases and feed messages).
func (r *Replica) ID() string { return r.id }

// Partition returns the warehouse partition, or nil when every replica
// handles every message.
func (r *Replica) Partition() *Partition { return r.part }

// Leader reports whether this replica leads now.
func (r *Replica) Leader() bool { return r.leader.Load() }

// Run listens to the feed, renews the partition's leases and takes part
// in the leader election until ctx ends; it returns at once (Wait waits
// for the end). onLeader is told when this replica becomes the leader
// (true) and when it stops being one (false); onLost when feed messages
// may have been lost, so that the views re-read what they cache (on a
// goroutine of its own, one at a time).
func (r *Replica) Run(ctx context.Context, onLeader func(leader bool), onLost func()) {
	r.lostMu.Lock()
	r.onLost = onLost
	r.lostMu.Unlock()
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		r.cfg.DB.Listen(ctx, r.feed.receive, func() {
			r.log.Warn("replica feed interrupted; re-reading orders and availability")
			r.lost()
		})
	}()
	go func() {
		defer r.wg.Done()
		r.cfg.DB.Lead(ctx, "inventory", func(leader bool) {
			r.leader.Store(leader)
			onLeader(leader)
		})
	}()
	if r.part != nil {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.part.leases.Run(ctx) }()
	}
}

// Wait returns once what Run started has stopped (its leases released).
func (r *Replica) Wait() { r.wg.Wait() }

// lost runs OnLost on a goroutine of its own, one at a time: a burst of
// losses re-reads once more after the one in flight, not once per loss.
func (r *Replica) lost() {
	r.lostMu.Lock()
	if r.onLost == nil {
		r.lostMu.Unlock()
		return
	}
	if r.losing {
		r.lostMu.Unlock()
		return
	}
	r.losing = true
	r.lostMu.Unlock()
	go func() {
		defer func() {
			r.lostMu.Lock()
			r.losing = false
			r.lostMu.Unlock()
		}()
		r.onLost()
	}()
}

// metrics registers the replica's role and share.
func (r *Replica) metrics(reg prometheus.Registerer) {
	if reg == nil {
		return
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelfsync_replica_leader",
		Help: "1 while this replica is the leader (publishes availability, judges oversells); PostgreSQL store only."},
		func() float64 {
			if r.leader.Load() {
				return 1
			}
			return 0
		}))
	if r.part != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelfsync_replica_warehouses",
			Help: "Warehouses whose gateways this replica applies now (it holds their lease)."},
			func() float64 { return float64(r.part.leases.Held()) }))
	}
	r.feed.metrics(reg)
}
