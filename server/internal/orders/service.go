package orders

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
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
	Stock(ctx context.Context, q store.StockQuery) ([]store.StockRow, error)
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
	// Debounce is how long changes gather before availability is
	// recomputed and published (default 250ms).
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

	mu         sync.Mutex // guards everything below
	seq        uint64     // reservation sequence the model accounts for
	cursor     uint64     // orders written with a sequence ≤ cursor are in the model (ordMu)
	started    bool
	active     bool
	activating bool // became active: load, recompute and publish everything at the next flush
	keys       map[ledger.Key]int64
	locs       map[whsku]map[ledger.Key]struct{}
	open       map[okey]*Order
	bySKU      map[whsku]map[okey]struct{}
	reserved   map[whsku]int64
	ats        map[whsku]ATS
	channels   map[string]Channel
	oversold   map[whsku]oversell
	dirtyK     map[ledger.Key]struct{}
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
		keys: map[ledger.Key]int64{}, locs: map[whsku]map[ledger.Key]struct{}{},
		open: map[okey]*Order{}, bySKU: map[whsku]map[okey]struct{}{}, reserved: map[whsku]int64{},
		ats: map[whsku]ATS{}, channels: map[string]Channel{}, oversold: map[whsku]oversell{},
		dirtyK: map[ledger.Key]struct{}{}, dirty: map[whsku]struct{}{}, dirtyO: map[okey]struct{}{},
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
	rows, err := s.st.Stock(ctx, store.StockQuery{})
	if err != nil {
		return fmt.Errorf("load stock: %w", err)
	}
	s.mu.Lock()
	for _, r := range rows {
		s.setKey(ledger.Key{WH: r.Warehouse, Location: r.Location, SKU: r.SKU, Lot: r.Lot}, r.OnHand)
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
			if found && o.Status == StatusOpen {
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
			o.Lines[j].Reserved = o.Lines[j].Qty // until the picks are read
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
	for {
		select {
		case <-ctx.Done():
			return
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
		case <-time.After(s.cfg.Debounce):
		}
		s.Flush(ctx)
	}
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
	s.flushPublish()
	return nil
}

func (s *Service) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Changed records ledger changes (from an applied batch or a server-origin
// op, on any replica); availability follows after the debounce.
func (s *Service) Changed(changes []ledger.Change) {
	if len(changes) == 0 {
		return
	}
	s.mu.Lock()
	for _, c := range changes {
		s.dirtyK[c.Key] = struct{}{}
	}
	s.mu.Unlock()
	s.signal()
}

// OrderChanged records that order id of wh was created, shipped or
// cancelled by another replica: it is read again into the model and what
// it reserves recomputed, after the debounce.
func (s *Service) OrderChanged(wh, id string) {
	s.mu.Lock()
	s.dirtyO[okey{wh, id}] = struct{}{}
	s.mu.Unlock()
	s.signal()
}

// ChannelsChanged records that another replica changed a channel's
// allocation: channels are read again, and availability republished, after
// the debounce.
func (s *Service) ChannelsChanged() {
	s.mu.Lock()
	s.reloadCh = true
	s.publish = true
	s.mu.Unlock()
	s.signal()
}

// Invalidate recomputes everything the model knows (after master data
// changed: sellable locations, safety stock, channel settings), reading
// its stock keys and channels again; keys it never heard of need Reload.
func (s *Service) Invalidate() {
	all := s.allSKUs()
	s.mu.Lock()
	for k := range all {
		s.dirty[k] = struct{}{}
	}
	s.reloadCh = true
	s.publish = true
	s.mu.Unlock()
	s.signal()
}

// Reload reads everything again, as Start does — every stock key,
// including keys the model never heard of (a replica that missed a feed
// message learns of new keys only so), the open orders and the channels —
// and then recomputes everything as Invalidate does; availability follows
// after the debounce (or at the next Flush), published where it changed.
// The periodic resync (Config.Resync) reloads. It reads all stock: call it
// when the model may have missed changes, not for every change.
func (s *Service) Reload(ctx context.Context) error {
	if err := s.reloadStock(ctx); err != nil {
		return err
	}
	if err := s.reloadOrders(); err != nil {
		return err
	}
	s.Invalidate()
	return nil
}

// reloadStock puts every stock key of the store in the model; a key the
// model holds that the store no longer lists has nothing on hand.
func (s *Service) reloadStock(ctx context.Context) error {
	// Under refreshMu, as refresh reads and applies stock: a read older
	// than one applied already never lands after it.
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	rows, err := s.st.Stock(ctx, store.StockQuery{})
	if err != nil {
		return fmt.Errorf("reload stock: %w", err)
	}
	seen := make(map[ledger.Key]bool, len(rows))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rows {
		k := ledger.Key{WH: r.Warehouse, Location: r.Location, SKU: r.SKU, Lot: r.Lot}
		seen[k] = true
		s.setKey(k, r.OnHand)
	}
	for k := range s.keys {
		if !seen[k] {
			s.keys[k] = 0
		}
	}
	return nil
}

// reloadOrders reads every open order, and the current record of every
// order the model holds open, into the model.
func (s *Service) reloadOrders() error {
	s.ordMu.Lock()
	defer s.ordMu.Unlock()
	s.mu.Lock()
	held := make([]okey, 0, len(s.open))
	for k := range s.open {
		held = append(held, k)
	}
	s.mu.Unlock()
	var (
		seq  uint64
		recs []Order
		gone []okey
	)
	err := s.st.View(func(tx store.Tx) error {
		recs, gone = nil, nil
		var err error
		if seq, err = getU64(tx, []byte(keySeq)); err != nil {
			return err
		}
		want := map[okey]bool{}
		if err := tx.Scan([]byte(pfxOpen), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
			if wh, id, ok := split2(k[len(pfxOpen):]); ok {
				want[okey{wh, id}] = true
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range held {
			want[k] = true // closed by another replica, perhaps
		}
		for k := range want {
			var o Order
			if found, err := getCBOR(tx, orderKey(k.wh, k.id), &o); err != nil {
				return err
			} else if found {
				recs = append(recs, o)
			} else {
				gone = append(gone, k)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reload orders: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	aff := s.applyRecords(recs)
	for _, k := range gone {
		if o := s.open[k]; o != nil {
			s.removeOpen(o)
			for _, l := range o.Lines {
				ws := whsku{o.Warehouse, l.SKU}
				aff[ws] = struct{}{}
				s.recomputeSKU(ws)
			}
		}
	}
	s.markDirty(aff)
	s.seq, s.cursor = max(s.seq, seq), max(s.cursor, seq)
	return nil
}

// SetActive makes the service the active replica (true) or a passive one.
// Only the active one publishes availability and raises or clears oversell
// conflicts; a passive one keeps its model current. Becoming active reads
// channels and oversell conflicts again, recomputes everything and
// publishes every channel's availability, before SetActive returns (an
// error leaves that to the next Flush). After SetActive(false) returns,
// nothing more is published or raised. Before Start it only sets the
// state Start begins in. It must not be called from a hook.
func (s *Service) SetActive(ctx context.Context, active bool) error {
	s.mu.Lock()
	was := s.active
	s.active = active
	if active && !was {
		s.activating = true
	}
	if !active {
		s.activating = false
	}
	pending := s.activating && s.started // else Start does it
	s.mu.Unlock()
	if !active {
		// let a publish or raise in flight end
		s.publishMu.Lock()
		//lint:ignore SA2001 a barrier: waits for the publish in flight
		s.publishMu.Unlock()
		s.oversellMu.Lock()
		s.mu.Lock()
		s.oversold = map[whsku]oversell{} // read again when active
		s.mu.Unlock()
		s.oversellMu.Unlock()
		return nil
	}
	if pending {
		return s.flush(ctx)
	}
	return nil
}

// Active reports whether the service is the active replica.
func (s *Service) Active() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// activate prepares the next recompute of a service that became active.
func (s *Service) activate(ctx context.Context) error {
	if err := s.loadOversold(ctx); err != nil {
		return err
	}
	all := s.allSKUs()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active {
		return nil
	}
	s.activating = false
	for k := range all {
		s.dirty[k] = struct{}{}
	}
	s.reloadCh = true
	s.last = map[string]string{} // publish every channel
	s.publish = true
	return nil
}

func (s *Service) allSKUs() map[whsku]struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[whsku]struct{}, len(s.locs)+len(s.bySKU))
	for k := range s.locs {
		out[k] = struct{}{}
	}
	for k := range s.bySKU {
		out[k] = struct{}{}
	}
	return out
}

// catchUp reads into the model the orders written (by any replica) since
// the cursor and those named by OrderChanged, and channels when asked. It
// returns the skus whose reservations changed, for their picks to be read.
func (s *Service) catchUp() (map[whsku]struct{}, error) {
	s.ordMu.Lock()
	defer s.ordMu.Unlock()
	s.mu.Lock()
	named, reload, cursor := s.dirtyO, s.reloadCh, s.cursor
	s.dirtyO, s.reloadCh = map[okey]struct{}{}, false
	s.mu.Unlock()
	var (
		seq   uint64
		recs  []Order
		chans map[string]Channel
	)
	err := s.st.View(func(tx store.Tx) error {
		var err error
		if seq, err = getU64(tx, []byte(keySeq)); err != nil {
			return err
		}
		if recs, err = readLog(tx, cursor); err != nil {
			return err
		}
		got := map[okey]bool{}
		for _, o := range recs {
			got[okey{o.Warehouse, o.ID}] = true
		}
		for k := range named {
			if got[k] {
				continue
			}
			var o Order
			if found, err := getCBOR(tx, orderKey(k.wh, k.id), &o); err != nil {
				return err
			} else if found {
				recs = append(recs, o)
			}
		}
		if reload {
			chans, err = readChannels(tx)
			return err
		}
		chans = map[string]Channel{}
		for _, o := range recs {
			if _, ok := chans[o.Channel]; ok {
				continue
			}
			var c Channel
			if found, err := getCBOR(tx, channelKey(o.Channel), &c); err != nil {
				return err
			} else if found {
				chans[c.Name] = c
			}
		}
		return nil
	})
	if err != nil {
		s.mu.Lock()
		for k := range named {
			s.dirtyO[k] = struct{}{}
		}
		s.reloadCh = s.reloadCh || reload
		s.mu.Unlock()
		return nil, fmt.Errorf("read orders: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if reload {
		s.channels = chans
		s.publish = true
	} else {
		for n, c := range chans {
			if _, ok := s.channels[n]; !ok {
				s.channels[n] = c
				s.publish = true
			}
		}
	}
	aff := s.applyRecords(recs)
	s.seq, s.cursor = max(s.seq, seq), max(s.cursor, seq)
	return aff, nil
}

// applyRecords puts orders as stored (by any replica) in the model: an open
// one reserves its lines whole until its picks are read, a closed one
// reserves nothing. It returns the skus whose reservations it recomputed;
// s.mu is held.
func (s *Service) applyRecords(recs []Order) map[whsku]struct{} {
	aff := map[whsku]struct{}{}
	for i := range recs {
		rec := &recs[i]
		k := okey{rec.Warehouse, rec.ID}
		held := s.open[k]
		if held != nil && rec.Status == StatusOpen && held.Seq == rec.Seq {
			held.Short = append([]string(nil), rec.Short...) // the same write: only Short may have come since
			continue
		}
		if held != nil {
			s.removeOpen(held)
			for _, l := range held.Lines {
				aff[whsku{held.Warehouse, l.SKU}] = struct{}{}
			}
		}
		if rec.Status != StatusOpen {
			continue
		}
		o := cloneOrder(rec)
		for j := range o.Lines {
			o.Lines[j].Picked, o.Lines[j].Reserved = 0, o.Lines[j].Qty // until the picks are read
			aff[whsku{o.Warehouse, o.Lines[j].SKU}] = struct{}{}
		}
		s.addOpen(&o)
		if _, ok := s.channels[o.Channel]; !ok {
			s.channels[o.Channel] = Channel{Name: o.Channel, SharePct: 100, UpdatedMS: o.CreatedMS}
		}
	}
	for ws := range aff {
		s.recomputeSKU(ws)
	}
	if len(aff) > 0 {
		s.publish = true
	}
	return aff
}

// markDirty queues skus for the next recompute; s.mu is held.
func (s *Service) markDirty(set map[whsku]struct{}) {
	for ws := range set {
		s.dirty[ws] = struct{}{}
	}
}

// bumpSeq takes the next reservation sequence for a change of reservations
// the active replica publishes, after reading the orders other replicas
// wrote before it.
func (s *Service) bumpSeq() error {
	s.ordMu.Lock()
	defer s.ordMu.Unlock()
	s.mu.Lock()
	cursor := s.cursor
	s.mu.Unlock()
	var (
		recs []Order
		seq  uint64
	)
	if err := s.st.Update(func(tx store.Tx) error {
		var err error
		recs, seq, err = nextSeq(tx, cursor)
		return err
	}); err != nil {
		return err
	}
	s.mu.Lock()
	aff := s.applyRecords(recs)
	s.markDirty(aff)
	s.seq, s.cursor = max(s.seq, seq), max(s.cursor, seq)
	s.publish = true
	s.mu.Unlock()
	if len(aff) > 0 {
		s.signal()
	}
	return nil
}

// setKey records a key's on-hand; s.mu is held.
func (s *Service) setKey(k ledger.Key, onHand int64) {
	s.keys[k] = onHand
	ws := whsku{k.WH, k.SKU}
	m := s.locs[ws]
	if m == nil {
		m = map[ledger.Key]struct{}{}
		s.locs[ws] = m
	}
	m[k] = struct{}{}
}

// addOpen indexes an open order; s.mu is held.
func (s *Service) addOpen(o *Order) {
	ok := okey{o.Warehouse, o.ID}
	s.open[ok] = o
	for _, l := range o.Lines {
		ws := whsku{o.Warehouse, l.SKU}
		m := s.bySKU[ws]
		if m == nil {
			m = map[okey]struct{}{}
			s.bySKU[ws] = m
		}
		m[ok] = struct{}{}
	}
}

// removeOpen drops an order from the index; s.mu is held.
func (s *Service) removeOpen(o *Order) {
	ok := okey{o.Warehouse, o.ID}
	delete(s.open, ok)
	for _, l := range o.Lines {
		ws := whsku{o.Warehouse, l.SKU}
		delete(s.bySKU[ws], ok)
		if len(s.bySKU[ws]) == 0 {
			delete(s.bySKU, ws)
		}
	}
}

// refresh reads into the model the orders written since the last refresh
// (catchUp), then re-reads, for the given skus, the ones those orders touch
// and, with pending, every sku and key marked dirty, the picks of their
// open orders and their stock, from one snapshot of the store, and
// recomputes reservations and ATS. It returns the skus whose reservation
// changed.
func (s *Service) refresh(ctx context.Context, in map[whsku]struct{}, pending bool) (_ map[whsku]bool, err error) {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()

	var dirtyKeys map[ledger.Key]struct{}
	set := make(map[whsku]struct{}, len(in))
	for ws := range in {
		set[ws] = struct{}{}
	}
	if pending { // taken under refreshMu: a refresh that follows sees them applied
		s.mu.Lock()
		dirty := s.dirty
		dirtyKeys, s.dirty, s.dirtyK = s.dirtyK, map[whsku]struct{}{}, map[ledger.Key]struct{}{}
		s.mu.Unlock()
		for ws := range dirty {
			set[ws] = struct{}{}
		}
	}
	defer func() {
		if err == nil {
			return
		}
		s.mu.Lock() // for the next flush
		s.markDirty(set)
		for k := range dirtyKeys {
			s.dirtyK[k] = struct{}{}
		}
		s.mu.Unlock()
	}()
	aff, err := s.catchUp()
	if err != nil {
		return nil, err
	}
	for ws := range aff {
		set[ws] = struct{}{}
	}
	for k := range dirtyKeys {
		set[whsku{k.WH, k.SKU}] = struct{}{}
	}
	if len(set) == 0 {
		return nil, nil
	}

	s.mu.Lock()
	var refs []store.OrderRef
	seen := map[okey]bool{}
	groups := map[ledger.Key]bool{} // (wh, loc, sku) with Lot ""
	for ws := range set {
		for ok := range s.bySKU[ws] {
			if !seen[ok] {
				seen[ok] = true
				refs = append(refs, store.OrderRef{Warehouse: ok.wh, ID: ok.id})
			}
		}
		for k := range s.locs[ws] {
			groups[ledger.Key{WH: k.WH, Location: k.Location, SKU: k.SKU}] = true
		}
	}
	for k := range s.dirtyK { // changes not flushed yet: read them now too
		if _, in := set[whsku{k.WH, k.SKU}]; in {
			groups[ledger.Key{WH: k.WH, Location: k.Location, SKU: k.SKU}] = true
			delete(s.dirtyK, k)
		}
	}
	s.mu.Unlock()
	for k := range dirtyKeys {
		groups[ledger.Key{WH: k.WH, Location: k.Location, SKU: k.SKU}] = true
	}
	queries := make([]store.StockQuery, 0, len(groups))
	for g := range groups {
		queries = append(queries, store.StockQuery{Warehouse: g.WH, Location: g.Location, SKU: g.SKU})
	}
	picks := make(map[store.OrderRef][]store.OrderPick, len(refs))
	var rows []store.StockRow
	err = s.st.View(func(tx store.Tx) error {
		rows = nil
		for _, r := range refs {
			ps, err := tx.OrderPicks(r.Warehouse, r.ID)
			if err != nil {
				return err
			}
			picks[r] = ps
		}
		for _, q := range queries {
			rs, err := tx.StockWhere(q)
			if err != nil {
				return err
			}
			rows = append(rows, rs...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read picks and stock: %w", err)
	}

	s.mu.Lock()
	for _, r := range rows {
		s.setKey(ledger.Key{WH: r.Warehouse, Location: r.Location, SKU: r.SKU, Lot: r.Lot}, r.OnHand)
	}
	for ref, ps := range picks {
		if o := s.open[okey{ref.Warehouse, ref.ID}]; o != nil {
			applyPicks(o, ps, func(sku string) bool { _, in := set[whsku{ref.Warehouse, sku}]; return in })
		}
	}
	changed := map[whsku]bool{}
	for ws := range set {
		if s.recomputeSKU(ws) {
			changed[ws] = true
		}
	}
	s.publish = true
	active := s.active
	stock := make(map[whsku]int64, len(set))
	for ws := range set {
		stock[ws] = s.ats[ws].OnHand
	}
	s.mu.Unlock()

	if len(changed) > 0 && active {
		// A snapshot built meanwhile shows the new reservations with the
		// old sequence: it accounts for no order it does not hold.
		if err := s.bumpSeq(); err != nil {
			s.log.Error("reservation sequence not advanced", "err", err)
		}
	}
	s.checkOversell(ctx, set)
	if s.cfg.OnStock != nil && active {
		for ws, n := range stock {
			s.cfg.OnStock(ws.wh, ws.sku, n)
		}
	}
	return changed, nil
}

// recomputeSKU recomputes the reservation and ATS of one sku of one
// warehouse and reports whether the reservation changed; s.mu is held.
func (s *Service) recomputeSKU(ws whsku) bool {
	a := s.computeATS(ws)
	before := s.reserved[ws]
	if a.Reserved == 0 {
		delete(s.reserved, ws)
	} else {
		s.reserved[ws] = a.Reserved
	}
	s.ats[ws] = a
	return before != a.Reserved
}

// computeATS computes the reservation and ATS of one sku of one warehouse
// from the model, changing nothing; s.mu is held.
func (s *Service) computeATS(ws whsku) ATS {
	var res int64
	for ok := range s.bySKU[ws] {
		for _, l := range s.open[ok].Lines {
			if l.SKU == ws.sku {
				res += l.Reserved
			}
		}
	}
	a := ATS{Warehouse: ws.wh, SKU: ws.sku, Reserved: res, Safety: s.cfg.Safety(ws.wh, ws.sku)}
	for k := range s.locs[ws] {
		// A negative key is usually a pick booked at the wrong bin: the
		// units left another bin of the sku. Summing as recorded keeps ATS
		// at what the records can ship; clamping would offer them twice.
		q := s.keys[k]
		a.OnHand += q
		if s.cfg.Sellable(k.WH, k.Location) {
			a.Sellable += q
		}
	}
	a.Available = a.Sellable - a.Reserved - a.Safety
	return a
}

// applyPicks attributes picks to the order's lines: a pick naming a line of
// the order counts there; one naming only the order goes to the lines of
// its sku in line order, filling each up to its quantity (the last takes
// any excess). Only lines whose sku passes `only` are updated.
func applyPicks(o *Order, picks []store.OrderPick, only func(sku string) bool) {
	picked := make([]int64, len(o.Lines))
	byLine := map[uint32]int{}
	for i, l := range o.Lines {
		byLine[l.Line] = i
	}
	var loose []store.OrderPick
	for _, p := range picks {
		if i, ok := byLine[p.Line]; ok && p.Line != 0 && o.Lines[i].SKU == p.SKU {
			picked[i] += p.Qty
			continue
		}
		loose = append(loose, p)
	}
	for _, p := range loose {
		last := -1
		qty := p.Qty
		for i, l := range o.Lines {
			if l.SKU != p.SKU {
				continue
			}
			last = i
			if room := l.Qty - picked[i]; room > 0 {
				take := min(room, qty)
				picked[i] += take
				qty -= take
			}
			if qty == 0 {
				break
			}
		}
		if last >= 0 && qty > 0 {
			picked[last] += qty
		}
	}
	for i := range o.Lines {
		l := &o.Lines[i]
		if !only(l.SKU) {
			continue
		}
		l.Picked = picked[i]
		l.Reserved = 0
		if o.Status == StatusOpen && l.Qty > l.Picked {
			l.Reserved = l.Qty - l.Picked
		}
	}
}

// oversold reports whether reservations exceed what can ship: reserved
// units beyond available (sellable − safety). With nothing reserved nothing
// is oversold, however far below zero the stock went (that is a
// negative-stock conflict of its keys, not an oversell).
func oversold(reserved, available int64) bool {
	return reserved > 0 && reserved > available
}

// checkOversell raises the oversell conflict of every sku whose
// reservations exceed what is available, and clears the ones that no
// longer do.
func (s *Service) checkOversell(ctx context.Context, set map[whsku]struct{}) {
	type todo struct {
		ws   whsku
		a    ATS
		prev oversell
		had  bool
	}
	s.oversellMu.Lock()
	defer s.oversellMu.Unlock()
	var work []todo
	s.mu.Lock()
	if !s.active {
		s.mu.Unlock()
		return
	}
	for ws := range set {
		a := s.ats[ws]
		prev, had := s.oversold[ws]
		holds := oversold(a.Reserved, a.Sellable-a.Safety)
		if !holds && !had {
			continue
		}
		if had && holds && prev.reserved == a.Reserved && prev.available == a.Sellable-a.Safety {
			continue
		}
		work = append(work, todo{ws, a, prev, had})
	}
	s.mu.Unlock()
	sort.Slice(work, func(i, j int) bool { return work[i].ws.wh+"\x00"+work[i].ws.sku < work[j].ws.wh+"\x00"+work[j].ws.sku })
	for _, w := range work {
		avail := w.a.Sellable - w.a.Safety
		at := w.prev.at
		if !w.had {
			at = s.cfg.HLC()
		}
		holds := oversold(w.a.Reserved, avail)
		oc := conflicts.Oversell(w.ws.wh, w.ws.sku, w.a.Reserved, avail, at)
		oc.Holds = holds // not with nothing reserved, whatever the stock
		var c conflicts.Conflict
		var written bool
		err := s.st.Update(func(tx store.Tx) error {
			var err error
			c, written, err = tx.RaiseConflict(oc)
			return err
		})
		if err != nil {
			s.log.Error("oversell conflict not recorded", "warehouse", w.ws.wh, "sku", w.ws.sku, "err", err)
			continue
		}
		s.mu.Lock()
		if holds {
			s.oversold[w.ws] = oversell{reserved: w.a.Reserved, available: avail, at: at}
		} else {
			delete(s.oversold, w.ws)
		}
		s.mu.Unlock()
		if written && s.cfg.OnConflict != nil {
			s.cfg.OnConflict(c)
		}
	}
}

// Create takes an order from a channel and reserves its lines at once. A
// replay of the same channel and external id returns the order it created
// (created false); the same external id with other lines is ErrConflict.
func (s *Service) Create(ctx context.Context, n NewOrder) (Order, bool, error) {
	if err := n.Validate(); err != nil {
		return Order{}, false, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	now := s.cfg.Now().UnixMilli()
	o := Order{Warehouse: n.Warehouse, ID: n.ID, Channel: n.Channel, ExternalID: n.ExternalID, Lines: n.Lines, Status: StatusOpen, CreatedMS: now, UpdatedMS: now}
	set := map[whsku]struct{}{}
	for _, l := range o.Lines {
		set[whsku{o.Warehouse, l.SKU}] = struct{}{}
	}
	// The transaction judges from the model which lines cannot be met
	// (Short): bring the stock and reservations of the order's skus up to
	// date first.
	if _, err := s.refresh(ctx, set, false); err != nil {
		s.log.Warn("stock of a new order's skus not read again; its shortfall is judged from the model as it is", "order", o.ID, "err", err)
	}
	var (
		existing  *okey
		caught    []Order
		rechecked []conflicts.Conflict
		channel   Channel
		view      Order // the order as written, its picks applied
	)
	s.ordMu.Lock()
	s.mu.Lock()
	cursor := s.cursor
	s.mu.Unlock()
	err := s.st.Update(func(tx store.Tx) error {
		existing, caught, rechecked, channel, view = nil, nil, nil, Channel{}, Order{}
		o.Short = nil
		ref, found, err := tx.Get(idemKey(n.Channel, n.ExternalID))
		if err != nil {
			return err
		}
		if found {
			wh, id, _ := split2(ref)
			existing = &okey{wh, id}
			return errExists
		}
		var other Order
		if found, err := getCBOR(tx, orderKey(o.Warehouse, o.ID), &other); err != nil {
			return err
		} else if found {
			return fmt.Errorf("%w: order id %q of warehouse %s belongs to channel %s, external id %s; give another id", ErrConflict, o.ID, o.Warehouse, other.Channel, other.ExternalID)
		}
		if caught, o.Seq, err = nextSeq(tx, cursor); err != nil {
			return err
		}
		ps, err := tx.OrderPicks(o.Warehouse, o.ID) // picks may come before their order
		if err != nil {
			return err
		}
		view = cloneOrder(&o)
		applyPicks(&view, ps, func(string) bool { return true })
		s.mu.Lock()
		view.Short = s.shortfall(&view, caught)
		s.mu.Unlock()
		o.Short = view.Short
		if err := putCBOR(tx, orderKey(o.Warehouse, o.ID), stored(&o)); err != nil {
			return err
		}
		if err := tx.Set(openKey(o.Warehouse, o.ID), []byte{}); err != nil {
			return err
		}
		if err := tx.Set(idemKey(n.Channel, n.ExternalID), orderRef(o.Warehouse, o.ID)); err != nil {
			return err
		}
		if err := logOrder(tx, o.Warehouse, o.ID, o.Seq, 0); err != nil {
			return err
		}
		if found, err := getCBOR(tx, channelKey(n.Channel), &channel); err != nil {
			return err
		} else if !found {
			channel = Channel{Name: n.Channel, SharePct: 100, UpdatedMS: now}
			if err := putCBOR(tx, channelKey(n.Channel), channel); err != nil {
				return err
			}
		}
		if rechecked, err = tx.PutOrder(storeOrder(&o)); err != nil {
			return err
		}
		if s.cfg.OnOrderTx != nil {
			return s.cfg.OnOrderTx(tx, cloneOrder(&view), "created")
		}
		return nil
	})
	if err != nil {
		s.ordMu.Unlock()
		if errors.Is(err, errExists) {
			prev, err := s.Get(ctx, existing.wh, existing.id)
			if err != nil {
				return Order{}, false, err
			}
			if !n.sameLines(&prev) {
				return prev, false, fmt.Errorf("%w: channel %s already sent external id %s with other lines (order %s/%s)", ErrConflict, n.Channel, n.ExternalID, prev.Warehouse, prev.ID)
			}
			return prev, false, nil
		}
		if errors.Is(err, ErrConflict) {
			return Order{}, false, err
		}
		return Order{}, false, fmt.Errorf("store order: %w", err)
	}
	// The order counts in every snapshot from here on: the model holds it
	// (with the picks read in its transaction) and every order written
	// before it, before it claims its sequence.
	s.mu.Lock()
	s.markDirty(s.applyRecords(caught))
	if _, ok := s.channels[n.Channel]; !ok {
		s.channels[n.Channel] = channel
	}
	held := cloneOrder(&view)
	if prev := s.open[okey{o.Warehouse, o.ID}]; prev != nil {
		s.removeOpen(prev)
	}
	s.addOpen(&held)
	for ws := range set {
		s.recomputeSKU(ws)
	}
	s.seq, s.cursor = max(s.seq, o.Seq), max(s.cursor, o.Seq)
	s.publish = true
	s.mu.Unlock()
	s.ordMu.Unlock()
	if s.cfg.OnConflict != nil {
		for _, c := range rechecked { // picks that came before the order, beyond its lines
			s.cfg.OnConflict(c)
		}
	}

	if _, err := s.refresh(ctx, set, false); err != nil {
		s.log.Error("reservation of a new order not computed yet; the next recompute will", "order", o.ID, "err", err)
		s.mu.Lock()
		s.markDirty(set)
		s.mu.Unlock()
	}
	s.mu.Lock()
	h := s.open[okey{o.Warehouse, o.ID}]
	if h == nil || h.Seq != o.Seq { // closed meanwhile by another replica
		h = &held
	}
	h.Short = append([]string(nil), view.Short...)
	out := cloneOrder(h)
	s.publish = true
	s.mu.Unlock()
	s.signal()
	if s.cfg.OnOrder != nil {
		s.cfg.OnOrder(out, "created")
	}
	return out, true, nil
}

// shortfall returns, sorted, the skus of o (a new order, its picks
// applied) whose available-to-sell the model puts below zero once o
// reserves what it does, counting the orders of other replicas its
// transaction caught up with (caught) as applyRecords will; s.mu is held.
func (s *Service) shortfall(o *Order, caught []Order) []string {
	need := map[string]int64{}
	for _, l := range o.Lines {
		need[l.SKU] += l.Reserved
	}
	reservedOf := func(x *Order, sku string, qty bool) int64 {
		var n int64
		for _, l := range x.Lines {
			if l.SKU == sku {
				if qty {
					n += l.Qty
				} else {
					n += l.Reserved
				}
			}
		}
		return n
	}
	var out []string
	for sku, n := range need {
		ws := whsku{o.Warehouse, sku}
		a := s.computeATS(ws)
		res := a.Reserved + n
		if held := s.open[okey{o.Warehouse, o.ID}]; held != nil {
			res -= reservedOf(held, sku, false)
		}
		for i := range caught {
			rec := &caught[i]
			if rec.Warehouse != o.Warehouse || rec.ID == o.ID {
				continue
			}
			held := s.open[okey{rec.Warehouse, rec.ID}]
			if held != nil && rec.Status == StatusOpen && held.Seq == rec.Seq {
				continue
			}
			if held != nil {
				res -= reservedOf(held, sku, false)
			}
			if rec.Status == StatusOpen {
				res += reservedOf(rec, sku, true) // whole until its picks are read
			}
		}
		if a.Sellable-res-a.Safety < 0 {
			out = append(out, sku)
		}
	}
	sort.Strings(out)
	return out
}

var errExists = errors.New("idempotency key exists")

// Get returns an order with its picks and reservations.
func (s *Service) Get(_ context.Context, wh, id string) (Order, error) {
	s.mu.Lock()
	if o := s.open[okey{wh, id}]; o != nil {
		out := cloneOrder(o)
		s.mu.Unlock()
		return out, nil
	}
	s.mu.Unlock()
	var o Order
	var found bool
	err := s.st.View(func(tx store.Tx) error {
		var err error
		if found, err = getCBOR(tx, orderKey(wh, id), &o); err != nil || !found {
			return err
		}
		ps, err := tx.OrderPicks(wh, id)
		if err != nil {
			return err
		}
		applyPicks(&o, ps, func(string) bool { return true })
		return nil
	})
	if err != nil {
		return Order{}, err
	}
	if !found {
		return Order{}, fmt.Errorf("order %s/%s: %w", wh, id, ErrNotFound)
	}
	return o, nil
}

// Query filters List; empty fields match everything.
type Query struct {
	Warehouse string
	Channel   string
	Status    Status
	Limit     int // default 100
	Offset    int
}

// List returns orders matching q, by warehouse and id, and whether more follow.
func (s *Service) List(_ context.Context, q Query) ([]Order, bool, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	prefix := pfxOrder
	if q.Warehouse != "" {
		prefix += q.Warehouse + "\x00"
	}
	var out []Order
	var more bool
	err := s.st.View(func(tx store.Tx) error {
		out, more = nil, false
		skip := q.Offset
		if err := tx.Scan([]byte(prefix), store.ScanOptions{}, func(_, v []byte) error {
			var o Order
			if err := protocol.Unmarshal(v, &o); err != nil {
				return err
			}
			if (q.Channel != "" && o.Channel != q.Channel) || (q.Status != "" && o.Status != q.Status) {
				return nil
			}
			if skip > 0 {
				skip--
				return nil
			}
			if len(out) == q.Limit {
				more = true
				return store.ErrStopScan
			}
			out = append(out, o)
			return nil
		}); err != nil {
			return err
		}
		for i := range out {
			s.mu.Lock()
			if o := s.open[okey{out[i].Warehouse, out[i].ID}]; o != nil {
				out[i] = cloneOrder(o)
				s.mu.Unlock()
				continue
			}
			s.mu.Unlock()
			ps, err := tx.OrderPicks(out[i].Warehouse, out[i].ID)
			if err != nil {
				return err
			}
			applyPicks(&out[i], ps, func(string) bool { return true })
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return out, more, nil
}

// Ship marks an open order shipped: what was picked left, what was not is
// released back to ATS.
func (s *Service) Ship(ctx context.Context, wh, id string) (Order, error) {
	return s.close(ctx, wh, id, StatusShipped)
}

// Cancel cancels an open order and releases its reservations. Units
// already picked stay off the shelf until a person puts them back (the
// order's lines say how many).
func (s *Service) Cancel(ctx context.Context, wh, id string) (Order, error) {
	return s.close(ctx, wh, id, StatusCancelled)
}

func (s *Service) close(ctx context.Context, wh, id string, to Status) (Order, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	now := s.cfg.Now().UnixMilli()
	var (
		o      Order
		caught []Order
		replay bool
	)
	s.ordMu.Lock()
	s.mu.Lock()
	cursor := s.cursor
	s.mu.Unlock()
	err := s.st.Update(func(tx store.Tx) error {
		o, caught, replay = Order{}, nil, false
		found, err := getCBOR(tx, orderKey(wh, id), &o)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("order %s/%s: %w", wh, id, ErrNotFound)
		}
		ps, err := tx.OrderPicks(wh, id)
		if err != nil {
			return err
		}
		if o.Status == to {
			replay = true // a replayed request
			applyPicks(&o, ps, func(string) bool { return true })
			return nil
		}
		if o.Status != StatusOpen {
			applyPicks(&o, ps, func(string) bool { return true })
			return fmt.Errorf("%w: order %s/%s is %s", ErrConflict, wh, id, o.Status)
		}
		prev := o.Seq
		if caught, o.Seq, err = nextSeq(tx, cursor); err != nil {
			return err
		}
		o.Status, o.UpdatedMS = to, now
		if err := putCBOR(tx, orderKey(wh, id), stored(&o)); err != nil {
			return err
		}
		if err := tx.Delete(openKey(wh, id)); err != nil {
			return err
		}
		if err := logOrder(tx, wh, id, o.Seq, prev); err != nil {
			return err
		}
		if _, err := tx.PutOrder(storeOrder(&o)); err != nil {
			return err
		}
		applyPicks(&o, ps, func(string) bool { return true }) // nothing reserved any more
		if s.cfg.OnOrderTx != nil {
			return s.cfg.OnOrderTx(tx, cloneOrder(&o), string(to))
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrConflict) {
		s.ordMu.Unlock()
		if errors.Is(err, ErrNotFound) {
			return Order{}, err
		}
		return Order{}, fmt.Errorf("store order: %w", err)
	}
	s.mu.Lock()
	aff := s.applyRecords(append(caught, o)) // the model may not have seen another replica close it
	if err != nil || replay {
		s.markDirty(aff)
		s.mu.Unlock()
		s.ordMu.Unlock()
		if len(aff) > 0 {
			s.signal()
		}
		return o, err
	}
	set := map[whsku]struct{}{}
	for _, l := range o.Lines {
		set[whsku{wh, l.SKU}] = struct{}{}
		delete(aff, whsku{wh, l.SKU})
	}
	s.markDirty(aff) // the orders of other replicas, for their picks
	s.seq, s.cursor = max(s.seq, o.Seq), max(s.cursor, o.Seq)
	s.publish = true
	s.mu.Unlock()
	s.ordMu.Unlock()
	s.checkOversell(ctx, set)
	s.signal()
	if s.cfg.OnOrder != nil {
		s.cfg.OnOrder(o, string(to))
	}
	return o, nil
}

func cloneOrder(o *Order) Order {
	out := *o
	out.Lines = append([]Line(nil), o.Lines...)
	out.Short = append([]string(nil), o.Short...)
	return out
}

// stored strips computed fields before an order is written.
func stored(o *Order) Order {
	out := cloneOrder(o)
	for i := range out.Lines {
		out.Lines[i].Picked, out.Lines[i].Reserved = 0, 0
	}
	return out
}

// storeOrder is the minimal order record the over-pick detector reads.
func storeOrder(o *Order) store.Order {
	so := store.Order{Warehouse: o.Warehouse, ID: o.ID, Channel: o.Channel, Status: string(o.Status)}
	for _, l := range o.Lines {
		so.Lines = append(so.Lines, store.OrderLine{Line: l.Line, SKU: l.SKU, Lot: l.Lot, Qty: l.Qty})
	}
	return so
}
