package orders

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Store is what the order model needs from the server's store: its own keys
// beside the ledger, the order lines the over-pick detector reads, the picks
// recorded against orders, and stock.
type Store interface {
	DB() *badger.DB
	PutOrderWith(ctx context.Context, o store.Order, within func(txn *badger.Txn) error) ([]conflicts.Conflict, error)
	OrderPicks(ctx context.Context, wh, id string) ([]store.OrderPick, error)
	ReadOrdersAndStock(ctx context.Context, orders []store.OrderRef, queries []store.StockQuery) (map[store.OrderRef][]store.OrderPick, [][]store.StockRow, error)
	RaiseConflict(ctx context.Context, c conflicts.Conflict) (conflicts.Conflict, bool, error)
	Stock(ctx context.Context, q store.StockQuery) ([]store.StockRow, error)
}

var _ Store = (*store.Badger)(nil)

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
	// Resync is how often everything is recomputed from the store, which
	// also picks up master-data changes (default 5m).
	Resync time.Duration
	// Now is the wall clock (default time.Now); HLC stamps conflicts
	// (default: from Now).
	Now func() time.Time
	HLC func() protocol.HLC
	// Publish receives a channel's availability whenever it changed.
	Publish func(Snapshot)
	// OnStock receives, after each recompute, the on-hand of every sku
	// and warehouse it touched (all locations).
	OnStock func(wh, sku string, onHand int64)
	// OnConflict receives oversell conflicts the model raised or cleared.
	OnConflict func(c conflicts.Conflict)
	// OnOrder receives every order change: "created", "shipped", "cancelled".
	OnOrder func(o Order, event string)
	Logger  *slog.Logger
}

type whsku struct{ wh, sku string }

type okey struct{ wh, id string }

// Service is the order model. Start loads it; its methods are safe for
// concurrent use.
type Service struct {
	cfg Config
	st  Store
	db  *badger.DB
	log *slog.Logger

	writeMu   sync.Mutex // serialises order writes (create, ship, cancel)
	refreshMu sync.Mutex // serialises reads of picks and stock into the index
	publishMu sync.Mutex // keeps snapshots in order
	flushMu   sync.Mutex // one Flush at a time: a second waits for the first's result

	mu       sync.Mutex // guards everything below
	seq      uint64
	lease    uint64
	keys     map[ledger.Key]int64
	locs     map[whsku]map[ledger.Key]struct{}
	open     map[okey]*Order
	bySKU    map[whsku]map[okey]struct{}
	reserved map[whsku]int64
	ats      map[whsku]ATS
	channels map[string]Channel
	oversold map[whsku]oversell
	dirtyK   map[ledger.Key]struct{}
	dirty    map[whsku]struct{}
	publish  bool
	last     map[string]string // channel → fingerprint of its last snapshot
	wake     chan struct{}
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
		cfg: cfg, st: st, db: st.DB(), log: cfg.Logger,
		keys: map[ledger.Key]int64{}, locs: map[whsku]map[ledger.Key]struct{}{},
		open: map[okey]*Order{}, bySKU: map[whsku]map[okey]struct{}{}, reserved: map[whsku]int64{},
		ats: map[whsku]ATS{}, channels: map[string]Channel{}, oversold: map[whsku]oversell{},
		dirtyK: map[ledger.Key]struct{}{}, dirty: map[whsku]struct{}{}, last: map[string]string{},
		wake: make(chan struct{}, 1),
	}
}

// Start loads stock, open orders and channels and publishes every
// channel's availability once (restoring retained messages after a
// restart); Run then keeps it current.
func (s *Service) Start(ctx context.Context) error {
	if err := s.load(ctx); err != nil {
		return err
	}
	all := s.allSKUs()
	if _, err := s.refresh(ctx, all, nil); err != nil {
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
	return s.db.View(func(txn *badger.Txn) error {
		var err error
		if s.seq, err = getU64(txn, []byte(keySeq)); err != nil {
			return err
		}
		s.lease = s.seq
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxOpen)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			wh, id, ok := split2(it.Item().Key()[len(pfxOpen):])
			if !ok {
				continue
			}
			var o Order
			found, err := getCBOR(txn, orderKey(wh, id), &o)
			if err != nil {
				return err
			}
			if found && o.Status == StatusOpen {
				for i := range o.Lines {
					o.Lines[i].Reserved = o.Lines[i].Qty // until the picks are read
				}
				s.addOpen(&o)
			}
		}
		return forEach(txn, pfxChannel, func(_ []byte, v []byte) error {
			var c Channel
			if err := protocol.Unmarshal(v, &c); err != nil {
				return err
			}
			s.channels[c.Name] = c
			return nil
		})
	})
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
			s.Invalidate()
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
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	set, keys := s.dirty, s.dirtyK
	s.dirty, s.dirtyK = map[whsku]struct{}{}, map[ledger.Key]struct{}{}
	s.mu.Unlock()
	for k := range keys {
		set[whsku{k.WH, k.SKU}] = struct{}{}
	}
	if len(set) > 0 {
		if _, err := s.refresh(ctx, set, keys); err != nil {
			s.log.Error("availability not recomputed; retrying", "err", err)
			s.mu.Lock()
			for k := range set {
				s.dirty[k] = struct{}{}
			}
			for k := range keys {
				s.dirtyK[k] = struct{}{}
			}
			s.mu.Unlock()
			s.signal()
			return
		}
	}
	s.flushPublish()
}

func (s *Service) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Changed records ledger changes (from an applied batch or a server-origin
// op); availability follows after the debounce.
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

// Invalidate recomputes everything (after master data changed: sellable
// locations, safety stock, channel settings).
func (s *Service) Invalidate() {
	all := s.allSKUs()
	s.mu.Lock()
	for k := range all {
		s.dirty[k] = struct{}{}
	}
	s.publish = true
	s.mu.Unlock()
	s.signal()
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

// bump advances the reservation sequence; s.mu is held. The persisted
// lease keeps it monotonic across restarts.
func (s *Service) bump() uint64 {
	s.seq++
	if s.seq > s.lease {
		next := s.seq + 1000
		if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(keySeq), u64(next)) }); err != nil {
			s.log.Error("persist reservation sequence", "err", err)
		} else {
			s.lease = next
		}
	}
	return s.seq
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

// refresh re-reads, for the given skus, the picks of their open orders and
// their stock, from one snapshot of the store, and recomputes reservations
// and ATS. It returns the skus whose reservation changed.
func (s *Service) refresh(ctx context.Context, set map[whsku]struct{}, dirtyKeys map[ledger.Key]struct{}) (map[whsku]bool, error) {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()

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
	picks, rows, err := s.st.ReadOrdersAndStock(ctx, refs, queries)
	if err != nil {
		return nil, fmt.Errorf("read picks and stock: %w", err)
	}

	s.mu.Lock()
	for _, rs := range rows {
		for _, r := range rs {
			s.setKey(ledger.Key{WH: r.Warehouse, Location: r.Location, SKU: r.SKU, Lot: r.Lot}, r.OnHand)
		}
	}
	for ref, ps := range picks {
		if o := s.open[okey{ref.Warehouse, ref.ID}]; o != nil {
			applyPicks(o, ps, func(sku string) bool { _, in := set[whsku{ref.Warehouse, sku}]; return in })
		}
	}
	changed := map[whsku]bool{}
	var bumped bool
	for ws := range set {
		if s.recomputeSKU(ws) {
			changed[ws] = true
			bumped = true
		}
	}
	if bumped {
		s.bump()
	}
	s.publish = true
	stock := make(map[whsku]int64, len(set))
	for ws := range set {
		stock[ws] = s.ats[ws].OnHand
	}
	s.mu.Unlock()

	s.checkOversell(ctx, set)
	if s.cfg.OnStock != nil {
		for ws, n := range stock {
			s.cfg.OnStock(ws.wh, ws.sku, n)
		}
	}
	return changed, nil
}

// recomputeSKU recomputes the reservation and ATS of one sku of one
// warehouse and reports whether the reservation changed; s.mu is held.
func (s *Service) recomputeSKU(ws whsku) bool {
	var res int64
	for ok := range s.bySKU[ws] {
		for _, l := range s.open[ok].Lines {
			if l.SKU == ws.sku {
				res += l.Reserved
			}
		}
	}
	before := s.reserved[ws]
	if res == 0 {
		delete(s.reserved, ws)
	} else {
		s.reserved[ws] = res
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
	s.ats[ws] = a
	return before != res
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
	var work []todo
	s.mu.Lock()
	for ws := range set {
		a := s.ats[ws]
		prev, had := s.oversold[ws]
		holds := a.Reserved > a.Sellable-a.Safety
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
		c, written, err := s.st.RaiseConflict(ctx, conflicts.Oversell(w.ws.wh, w.ws.sku, w.a.Reserved, avail, at))
		if err != nil {
			s.log.Error("oversell conflict not recorded", "warehouse", w.ws.wh, "sku", w.ws.sku, "err", err)
			continue
		}
		s.mu.Lock()
		if w.a.Reserved > avail {
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
	var existing *okey
	rechecked, err := s.st.PutOrderWith(ctx, storeOrder(&o), func(txn *badger.Txn) error {
		existing = nil
		ref, found, err := getBytes(txn, idemKey(n.Channel, n.ExternalID))
		if err != nil {
			return err
		}
		if found {
			wh, id, _ := split2(ref)
			existing = &okey{wh, id}
			return errExists
		}
		var other Order
		if found, err := getCBOR(txn, orderKey(o.Warehouse, o.ID), &other); err != nil {
			return err
		} else if found {
			return fmt.Errorf("%w: order id %q of warehouse %s belongs to channel %s, external id %s; give another id", ErrConflict, o.ID, o.Warehouse, other.Channel, other.ExternalID)
		}
		if err := putCBOR(txn, orderKey(o.Warehouse, o.ID), o); err != nil {
			return err
		}
		if err := txn.Set(openKey(o.Warehouse, o.ID), nil); err != nil {
			return err
		}
		if err := txn.Set(idemKey(n.Channel, n.ExternalID), []byte(o.Warehouse+"\x00"+o.ID)); err != nil {
			return err
		}
		if found, err := txnHas(txn, channelKey(n.Channel)); err != nil {
			return err
		} else if !found {
			return putCBOR(txn, channelKey(n.Channel), Channel{Name: n.Channel, SharePct: 100, UpdatedMS: now})
		}
		return nil
	})
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
	if err != nil {
		return Order{}, false, fmt.Errorf("store order: %w", err)
	}
	if s.cfg.OnConflict != nil {
		for _, c := range rechecked { // picks that came before the order, beyond its lines
			s.cfg.OnConflict(c)
		}
	}
	s.mu.Lock()
	if _, ok := s.channels[n.Channel]; !ok {
		s.channels[n.Channel] = Channel{Name: n.Channel, SharePct: 100, UpdatedMS: now}
	}
	held := o
	held.Lines = append([]Line(nil), o.Lines...)
	for i := range held.Lines {
		held.Lines[i].Reserved = held.Lines[i].Qty // until the picks are read
	}
	s.addOpen(&held)
	s.mu.Unlock()

	set := map[whsku]struct{}{}
	for _, l := range o.Lines {
		set[whsku{o.Warehouse, l.SKU}] = struct{}{}
	}
	if _, err := s.refresh(ctx, set, nil); err != nil {
		s.log.Error("reservation of a new order not computed yet; the next recompute will", "order", o.ID, "err", err)
		s.mu.Lock()
		for ws := range set {
			s.dirty[ws] = struct{}{}
		}
		s.mu.Unlock()
	}
	s.mu.Lock()
	seq := s.bump() // the order counts in every snapshot from here on
	held.Seq = seq
	for ws := range set {
		if a := s.ats[ws]; a.Available < 0 {
			held.Short = append(held.Short, ws.sku)
		}
	}
	sort.Strings(held.Short)
	out := cloneOrder(&held)
	s.publish = true
	s.mu.Unlock()
	if err := s.db.Update(func(txn *badger.Txn) error { return putCBOR(txn, orderKey(o.Warehouse, o.ID), stored(&out)) }); err != nil {
		s.log.Warn("order record not updated with its sequence", "order", o.ID, "err", err)
	}
	s.signal()
	if s.cfg.OnOrder != nil {
		s.cfg.OnOrder(out, "created")
	}
	return out, true, nil
}

var errExists = errors.New("idempotency key exists")

// Get returns an order with its picks and reservations.
func (s *Service) Get(ctx context.Context, wh, id string) (Order, error) {
	s.mu.Lock()
	if o := s.open[okey{wh, id}]; o != nil {
		out := cloneOrder(o)
		s.mu.Unlock()
		return out, nil
	}
	s.mu.Unlock()
	var o Order
	var found bool
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		found, err = getCBOR(txn, orderKey(wh, id), &o)
		return err
	})
	if err != nil {
		return Order{}, err
	}
	if !found {
		return Order{}, fmt.Errorf("order %s/%s: %w", wh, id, ErrNotFound)
	}
	ps, err := s.st.OrderPicks(ctx, wh, id)
	if err != nil {
		return Order{}, err
	}
	applyPicks(&o, ps, func(string) bool { return true })
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
func (s *Service) List(ctx context.Context, q Query) ([]Order, bool, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	prefix := pfxOrder
	if q.Warehouse != "" {
		prefix += q.Warehouse + "\x00"
	}
	var out []Order
	more := false
	skip := q.Offset
	err := s.db.View(func(txn *badger.Txn) error {
		return forEach(txn, prefix, func(_ []byte, v []byte) error {
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
				return errStop
			}
			out = append(out, o)
			return nil
		})
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, false, err
	}
	for i := range out {
		s.mu.Lock()
		if o := s.open[okey{out[i].Warehouse, out[i].ID}]; o != nil {
			out[i] = cloneOrder(o)
			s.mu.Unlock()
			continue
		}
		s.mu.Unlock()
		if ps, err := s.st.OrderPicks(ctx, out[i].Warehouse, out[i].ID); err == nil {
			applyPicks(&out[i], ps, func(string) bool { return true })
		}
	}
	return out, more, nil
}

var errStop = errors.New("stop")

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
	o, err := s.Get(ctx, wh, id)
	if err != nil {
		return Order{}, err
	}
	if o.Status == to {
		return o, nil // a replayed request
	}
	if o.Status != StatusOpen {
		return o, fmt.Errorf("%w: order %s/%s is %s", ErrConflict, wh, id, o.Status)
	}
	o.Status, o.UpdatedMS = to, s.cfg.Now().UnixMilli()
	_, err = s.st.PutOrderWith(ctx, storeOrder(&o), func(txn *badger.Txn) error {
		if err := putCBOR(txn, orderKey(wh, id), stored(&o)); err != nil {
			return err
		}
		return txn.Delete(openKey(wh, id))
	})
	if err != nil {
		return Order{}, fmt.Errorf("store order: %w", err)
	}
	s.mu.Lock()
	if held := s.open[okey{wh, id}]; held != nil {
		s.removeOpen(held)
	}
	for i := range o.Lines {
		o.Lines[i].Reserved = 0
	}
	for _, l := range o.Lines {
		s.recomputeSKU(whsku{wh, l.SKU})
	}
	o.Seq = s.bump()
	s.publish = true
	set := map[whsku]struct{}{}
	for _, l := range o.Lines {
		set[whsku{wh, l.SKU}] = struct{}{}
	}
	s.mu.Unlock()
	if err := s.db.Update(func(txn *badger.Txn) error { return putCBOR(txn, orderKey(wh, id), stored(&o)) }); err != nil {
		s.log.Warn("order record not updated with its sequence", "order", id, "err", err)
	}
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
