package orders

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
)

// Store is what the order model needs from the server's store: its own
// records beside the ledger, with the order lines the over-pick detector
// reads, the picks recorded against orders, stock and conflicts, in
// transactions (store.Records); the stock to load; and the oversell
// conflicts already raised, when it becomes the active replica. Both
// backends implement it.
type Store interface {
	store.Records
	StockEach(ctx context.Context, q store.StockQuery, fn func(store.StockRow) error) error
	Conflicts(ctx context.Context, q conflicts.Query) ([]conflicts.Conflict, error)
}

var _ Store = (*badger.Store)(nil)

// Config configures the Service. Every hook may be nil.
type Config struct {
	// Sellable reports whether stock at a location may be sold (not a
	// receiving dock, quarantine or returns area). Nil: every location.
	Sellable func(wh, loc string) bool
	// Safety returns the safety stock of a sku in a warehouse. Nil: 0.
	Safety func(wh, sku string) int64
	// ShortDated returns the units of a sku available in a warehouse's
	// sellable locations whose lot has fewer than days of shelf life
	// left (nil: none). A channel with MinShelfDays is offered, and
	// admitted, without them. It is called with the model locked: it must
	// answer from memory and never call the Service.
	ShortDated func(wh, sku string, days int) int64
	// Owner returns the owner of a sku's item in a warehouse's master
	// data ("" for none or an unknown sku). Nil: no owners. An order's
	// owner is its lines' owner.
	Owner func(wh, sku string) (string, error)
	// Debounce is how long changes gather before availability is
	// recomputed and published (default 250ms). A passive replica, which
	// publishes nothing and whose model only serves reads, gathers
	// passiveDebounce times as long: each recompute reads the changed
	// keys' stock and orders from the store, and every replica would
	// otherwise repeat the active one's reads at its pace.
	Debounce time.Duration
	// Resync is how often everything is read again from the store and
	// recomputed (Reload), which also picks up master-data changes and
	// stock keys a missed notice never named (default 5m).
	Resync time.Duration
	// Now is the wall clock (default time.Now); HLC stamps conflicts
	// (default: from Now).
	Now func() time.Time
	HLC func() protocol.HLC
	// Passive starts the service as a passive replica (see SetActive):
	// it keeps its model current but neither publishes availability nor
	// raises oversell conflicts. Zero: active, as a single server is.
	Passive bool
	// Publish receives a channel's availability whenever it changed
	// (active replica only).
	Publish func(Snapshot)
	// OnStock receives, after each recompute, the on-hand of every sku
	// and warehouse it touched (all locations), on the active replica
	// only (every replica's model recomputes; one evaluating reorder
	// points from it is enough).
	OnStock func(wh, sku string, onHand int64)
	// OnConflict receives the oversell conflicts the model raised or
	// cleared (active replica only), and the over-picks an order written
	// by this replica re-checked.
	OnConflict func(c conflicts.Conflict)
	// OnOrder receives every order change this replica wrote: "created",
	// "shipped", "cancelled", after the commit (for what may be lost when
	// the replica dies right after it: the dashboard, the replica feed).
	OnOrder func(o Order, event string)
	// OnOrderTx, when set, is called in the transaction that writes an
	// order change of this replica (the events of OnOrder), with the order
	// as written: picks applied (Picked, Reserved) and, when created,
	// Short. An error aborts the write. What it writes through tx commits
	// with the order or not at all: the app queues the order's webhook
	// deliveries here (webhooks.Manager.EnqueueTx). It may run more than
	// once for one change (Update retries), so it must write only through
	// tx; it runs with the model's locks held and must not call the
	// Service.
	OnOrderTx func(tx store.Tx, o Order, event string) error
	Logger    *slog.Logger
}

type whsku struct{ wh, sku string }

type okey struct{ wh, id string }

// Service is the order model. Start loads it; its methods are safe for
// concurrent use.
//
// Several Services (one per server replica) may run over one database. Each
// keeps its model current from the store: Changed (stock), OrderChanged
// (an order written by another replica) and ChannelsChanged (an allocation
// changed by another replica) say what to read again, and every recompute
// also reads the orders written since the last one (or/l/), so that a
// missed notice only delays. One replica is active (SetActive): it alone
// publishes availability and raises oversell conflicts.
type Service struct {
	cfg Config
	st  Store
	log *slog.Logger

	writeMu    sync.Mutex // serialises order writes (create, ship, cancel)
	refreshMu  sync.Mutex // serialises reads of picks and stock into the index
	ordMu      sync.Mutex // serialises reading or writing orders and channels with putting them in the model
	publishMu  sync.Mutex // keeps snapshots in order
	oversellMu sync.Mutex // serialises raising and clearing oversell conflicts
	flushMu    sync.Mutex // one Flush at a time: a second waits for the first's result

	qmu        sync.Mutex // guards the intake queue (intake.go)
	queue      []*request
	committing bool // a group is being committed; its committer takes what queued next

	mu         sync.Mutex // guards everything below
	seq        uint64     // reservation sequence the model accounts for
	cursor     uint64     // orders written with a sequence ≤ cursor are in the model (ordMu)
	started    bool
	active     bool
	activating bool                 // became active: load, recompute and publish everything at the next flush
	stock      map[whsku][]locStock // stock.go
	names      map[string]string    // interned warehouse and location names
	open       map[okey]*Order
	bySKU      map[whsku]map[okey]struct{}
	reserved   map[whsku]int64
	ats        map[whsku]ATS
	whs        map[string]struct{} // the warehouses of ats
	channels   map[string]Channel
	oversold   map[whsku]oversell
	dirtyG     map[stockGroup]struct{} // stock groups changed (Changed)
	mdv        *masterView             // master data read since it last changed (refresh.go)
	dirty      map[whsku]struct{}
	dirtyO     map[okey]struct{} // orders to read again (OrderChanged)
	reloadCh   bool              // channels to read again (ChannelsChanged)
	publish    bool
	last       map[string]string // channel → fingerprint of its last snapshot
	wake       chan struct{}
}

type oversell struct {
	reserved, available int64
	at                  protocol.HLC
}

// New builds the service over st; Start loads it.
func New(cfg Config, st Store) *Service {
	if cfg.Debounce <= 0 {
		cfg.Debounce = 250 * time.Millisecond
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HLC == nil {
		cfg.HLC = func() protocol.HLC { return protocol.MakeHLC(cfg.Now().UnixMilli(), 0) }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Sellable == nil {
		cfg.Sellable = func(string, string) bool { return true }
	}
	if cfg.Safety == nil {
		cfg.Safety = func(string, string) int64 { return 0 }
	}
	return &Service{
		cfg: cfg, st: st, log: cfg.Logger, active: !cfg.Passive,
		stock: map[whsku][]locStock{}, names: map[string]string{},
		open: map[okey]*Order{}, bySKU: map[whsku]map[okey]struct{}{}, reserved: map[whsku]int64{},
		ats: map[whsku]ATS{}, whs: map[string]struct{}{}, channels: map[string]Channel{}, oversold: map[whsku]oversell{},
		dirtyG: map[stockGroup]struct{}{}, dirty: map[whsku]struct{}{}, dirtyO: map[okey]struct{}{},
		last: map[string]string{}, wake: make(chan struct{}, 1),
	}
}

// Start loads stock, open orders and channels and, on the active replica,
// publishes every channel's availability once (restoring retained messages
// after a restart); Run then keeps it current.
func (s *Service) Start(ctx context.Context) error {
	if err := s.load(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	active := s.active
	s.activating = false // Start does what activation does
	s.started = true
	s.mu.Unlock()
	if active {
		if err := s.loadOversold(ctx); err != nil {
			return err
		}
	}
	all := s.allSKUs()
	if _, err := s.refresh(ctx, all, false); err != nil {
		return fmt.Errorf("compute availability: %w", err)
	}
	s.mu.Lock()
	s.publish = true
	s.mu.Unlock()
	s.flushPublish()
	return nil
}

func (s *Service) load(ctx context.Context) error {
	got, err := readGroups(ctx, s.st)
	if err != nil {
		return fmt.Errorf("load stock: %w", err)
	}
	s.mu.Lock()
	for g, n := range got {
		s.setGroup(g, n)
	}
	s.mu.Unlock()
	s.ordMu.Lock()
	defer s.ordMu.Unlock()
	var (
		seq   uint64
		open  []Order
		chans map[string]Channel
	)
	err = s.st.View(func(tx store.Tx) error {
		open, chans = nil, map[string]Channel{}
		var err error
		if seq, err = getU64(tx, []byte(keySeq)); err != nil {
			return err
		}
		var refs []okey
		if err := tx.Scan([]byte(pfxOpen), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
			if wh, id, ok := split2(k[len(pfxOpen):]); ok {
				refs = append(refs, okey{wh, id})
			}
			return nil
		}); err != nil {
			return err
		}
		for _, r := range refs {
			var o Order
			found, err := getCBOR(tx, orderKey(r.wh, r.id), &o)
			if err != nil {
				return err
			}
			if found && live(o.Status) {
				open = append(open, o)
			}
		}
		chans, err = readChannels(tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("load orders: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq, s.cursor = max(s.seq, seq), max(s.cursor, seq)
	for i := range open {
		o := &open[i]
		for j := range o.Lines {
			o.Lines[j].Reserved = wholeIfReserving(o, j) // until the picks are read
		}
		s.addOpen(o)
	}
	s.channels = chans
	return nil
}

func readChannels(kv store.KV) (map[string]Channel, error) {
	out := map[string]Channel{}
	err := kv.Scan([]byte(pfxChannel), store.ScanOptions{}, func(_, v []byte) error {
		var c Channel
		if err := protocol.Unmarshal(v, &c); err != nil {
			return err
		}
		out[c.Name] = c
		return nil
	})
	return out, err
}

// loadOversold reads the oversell conflicts that hold (raised by this or
// another replica), so that the model clears them when they stop holding
// and does not raise them again.
func (s *Service) loadOversold(ctx context.Context) error {
	cs, err := s.st.Conflicts(ctx, conflicts.Query{Kind: conflicts.KindOversell})
	if err != nil {
		return fmt.Errorf("load oversell conflicts: %w", err)
	}
	m := map[whsku]oversell{}
	for _, c := range cs {
		if c.Holds {
			m[whsku{c.Warehouse, c.SKU}] = oversell{reserved: c.Observed, available: c.Expected, at: c.CreatedHLC}
		}
	}
	s.oversellMu.Lock()
	s.mu.Lock()
	s.oversold = m
	s.mu.Unlock()
	s.oversellMu.Unlock()
	return nil
}

// Run recomputes what changed, debounced, and publishes, until ctx ends.
func (s *Service) Run(ctx context.Context) {
	resync := time.NewTicker(s.cfg.Resync)
	defer resync.Stop()
	expire := time.NewTicker(time.Second)
	defer expire.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-expire.C:
			if s.Active() {
				if _, err := s.ExpireHolds(ctx); err != nil {
					s.log.Warn("holds not expired; retrying in a second", "err", err)
				}
			}
			continue
		case <-s.wake:
		case <-resync.C:
			if err := s.Reload(ctx); err != nil {
				s.log.Warn("periodic reload failed; recomputing what the model knows", "err", err)
				s.Invalidate()
			}
		}
		select { // gather what follows closely
		case <-ctx.Done():
			return
		case <-time.After(s.debounce()):
		}
		s.Flush(ctx)
	}
}

// passiveDebounce is how many times Debounce a passive replica gathers.
const passiveDebounce = 4

func (s *Service) debounce() time.Duration {
	if s.Active() {
		return s.cfg.Debounce
	}
	return passiveDebounce * s.cfg.Debounce
}

// Flush recomputes what changed and publishes now.
func (s *Service) Flush(ctx context.Context) {
	if err := s.flush(ctx); err != nil {
		s.log.Error("availability not recomputed; retrying", "err", err)
	}
}

func (s *Service) flush(ctx context.Context) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	activating := s.active && s.activating
	s.mu.Unlock()
	if activating {
		if err := s.activate(ctx); err != nil {
			s.signal()
			return err
		}
	}
	if _, err := s.refresh(ctx, nil, true); err != nil {
		s.signal()
		return err
	}
	if s.Active() {
		if rel := s.ReleaseBackorders(ctx); len(rel) > 0 {
			s.log.Info("backordered orders released to picking", "orders", len(rel))
		}
	}
	s.flushPublish()
	return nil
}

func (s *Service) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
