package expiry

import (
	"context"
	"sync"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// ShelfStore is what a Shelf reads: stock keys and their origins.
type ShelfStore interface {
	store.Records
	StockEach(ctx context.Context, q store.StockQuery, fn func(store.StockRow) error) error
}

// ShelfConfig wires a Shelf.
type ShelfConfig struct {
	Store ShelfStore
	// Today is the clock the dates are judged by (time.Now when nil).
	Today func() time.Time
	// Sellable reports whether stock at a location may be sold (nil: every
	// location).
	Sellable func(wh, loc string) bool
}

// Shelf knows, in memory, the available units of every lot with an
// expiry, so that ShortDated answers the order model (which asks with
// its lock held) without reading the store. It follows the ledger's
// changes (Changed) after one Load; a lot's expiry is the earliest any
// of its keys' first receipts carried, as for the sweep and routing.
//
// It holds per sku of a warehouse a short list of the keys of its lots
// that have an expiry (one entry each: location, lot, owner, status and
// on-hand), and nothing per key of a lot without one: a stock import of
// millions of new lots without expiry leaves it as it was. A key of such
// a lot that changes is looked up again (its first receipt, one read)
// unless it is among the last plainCap such keys seen.
//
// A lot whose first expiry arrives after keys of it were seen without
// one (a lot first received without its expiry date) has keys the Shelf
// does not hold: it marks itself stale, and Run reads everything again
// (Load) at its next tick. Until then ShortDated may count fewer units
// of that lot than it has.
type Shelf struct {
	cfg ShelfConfig

	mu    sync.Mutex
	keys  map[whSKU][]lotKey // every key of a lot with an expiry whose origin was read
	exp   map[lotID]string   // a lot's expiry (YYYY-MM-DD), for lots with one
	names map[string]string  // interned warehouse and location names
	// plain holds keys recently seen whose lot had no expiry, so that
	// their changes are not looked up again each time (at most plainCap,
	// emptied when full).
	plain map[ledger.Key]struct{}
	// unheld: keys of lots without an expiry were seen since the last
	// Load; stale: a lot gained its first expiry since then.
	unheld, stale bool
}

// plainCap bounds Shelf.plain.
const plainCap = 4096

type whSKU struct{ wh, sku string }

// lotKey is one stock key of a lot, within its warehouse and sku.
type lotKey struct {
	loc, lot, owner string
	status          protocol.StockStatus
	onHand          int64
}

// keyIndex returns the index of k in keys, or -1.
func keyIndex(keys []lotKey, k ledger.Key) int {
	for i := range keys {
		if l := &keys[i]; l.loc == k.Location && l.lot == k.Lot && l.owner == k.Owner && l.status == k.Status {
			return i
		}
	}
	return -1
}

func lotOf(k ledger.Key) lotID { return lotID{k.WH, k.SKU, k.Lot, k.Owner} }

// set records key k (a key of a lot with an expiry) with its on-hand;
// s.mu is held.
func (s *Shelf) set(k ledger.Key, onHand int64) {
	ws := whSKU{s.intern(k.WH), k.SKU}
	keys := s.keys[ws]
	if i := keyIndex(keys, k); i >= 0 {
		keys[i].onHand = onHand
		return
	}
	s.keys[ws] = append(keys, lotKey{loc: s.intern(k.Location), lot: k.Lot, owner: k.Owner, status: k.Status, onHand: onHand})
}

func (s *Shelf) intern(v string) string {
	if c, ok := s.names[v]; ok {
		return c
	}
	s.names[v] = v
	return v
}

// NewShelf returns an empty Shelf; Load fills it.
func NewShelf(cfg ShelfConfig) *Shelf {
	if cfg.Today == nil {
		cfg.Today = time.Now
	}
	if cfg.Sellable == nil {
		cfg.Sellable = func(string, string) bool { return true }
	}
	s := &Shelf{cfg: cfg}
	s.reset()
	return s
}

// reset empties s; s.mu is held (or s is not shared yet).
func (s *Shelf) reset() {
	s.keys, s.exp, s.names, s.plain = map[whSKU][]lotKey{}, map[lotID]string{}, map[string]string{}, map[ledger.Key]struct{}{}
	s.unheld, s.stale = false, false
}

// loadChunk is how many keys Load reads the origins of per transaction.
const loadChunk = 1024

// Load reads every stock key of a lot again (at start, after lost change
// events, and when stale), in two passes over the store's keys that hold
// nothing per key: the expiry of every lot, then the keys of the lots
// that have one.
func (s *Shelf) Load(ctx context.Context) error {
	fresh := &Shelf{}
	fresh.reset()
	var pending []ledger.Key
	origins := func() error {
		err := s.cfg.Store.View(func(tx store.Tx) error {
			for _, k := range pending {
				if err := readExpiry(tx, k, fresh.exp); err != nil {
					return err
				}
			}
			return nil
		})
		pending = pending[:0]
		return err
	}
	err := s.cfg.Store.StockEach(ctx, store.StockQuery{}, func(r store.StockRow) error {
		if r.Lot == "" {
			return nil
		}
		if pending = append(pending, r.Key()); len(pending) == loadChunk {
			return origins()
		}
		return nil
	})
	if err == nil {
		err = origins()
	}
	if err != nil {
		return err
	}
	err = s.cfg.Store.StockEach(ctx, store.StockQuery{}, func(r store.StockRow) error {
		if r.Lot == "" {
			return nil
		}
		k := r.Key()
		if fresh.exp[lotOf(k)] == "" {
			fresh.unheld = true
			return nil
		}
		fresh.set(k, r.OnHand)
		return nil
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.keys, s.exp, s.names, s.plain = fresh.keys, fresh.exp, fresh.names, fresh.plain
	s.unheld, s.stale = fresh.unheld, false
	s.mu.Unlock()
	return nil
}

// Stale reports whether a lot gained its first expiry while keys of lots
// without one went unheld: the Shelf may miss some of that lot's keys
// until the next Load.
func (s *Shelf) Stale() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stale
}

// Run loads the Shelf again every tick while it is stale, until ctx ends;
// a failed load is told to failed and tried at the next tick.
func (s *Shelf) Run(ctx context.Context, every time.Duration, failed func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.Stale() {
			continue
		}
		if err := s.Load(ctx); err != nil && ctx.Err() == nil {
			failed(err)
		}
	}
}

// Changed follows ledger changes: the on-hand of the keys of lots with an
// expiry, and the expiry of keys not seen before (read from their
// origin).
func (s *Shelf) Changed(changes []ledger.Change) error {
	var fresh []ledger.Key
	s.mu.Lock()
	for _, c := range changes {
		if c.Key.Lot == "" || s.exp[lotOf(c.Key)] != "" {
			continue
		}
		if _, ok := s.plain[c.Key]; !ok {
			fresh = append(fresh, c.Key)
		}
	}
	s.mu.Unlock()
	exp := map[lotID]string{}
	var plain []ledger.Key // fresh keys whose origin carries no expiry
	if len(fresh) > 0 {
		if err := s.cfg.Store.View(func(tx store.Tx) error {
			clear(exp)
			plain = plain[:0]
			for _, k := range fresh {
				o, ok, err := tx.Origin(k)
				if err != nil {
					return err
				}
				id := lotOf(k)
				switch {
				case ok && o.Expiry != "":
					if exp[id] == "" || o.Expiry < exp[id] {
						exp[id] = o.Expiry
					}
				default:
					plain = append(plain, k)
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, e := range exp {
		cur := s.exp[id]
		if cur == "" && s.unheld {
			s.stale = true // keys of this lot may have been seen without its expiry
		}
		if cur == "" || e < cur {
			s.exp[id] = e
		}
	}
	for _, k := range plain {
		if s.exp[lotOf(k)] != "" {
			continue // its lot has an expiry from another key: held below
		}
		if len(s.plain) >= plainCap {
			clear(s.plain)
		}
		s.plain[k] = struct{}{}
		s.unheld = true
	}
	for _, c := range changes {
		if c.Key.Lot != "" && s.exp[lotOf(c.Key)] != "" {
			s.set(c.Key, c.After) // its origin is read (fresh) or was
		}
	}
	return nil
}

// ShortDated returns the units of sku available in wh's sellable
// locations whose lot expires in fewer than days days (by the Shelf's
// clock): what a channel with that minimum shelf life may not be given.
func (s *Shelf) ShortDated(wh, sku string, days int) int64 {
	cutoff := day(s.cfg.Today()).AddDate(0, 0, days).Format(time.DateOnly)
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, k := range s.keys[whSKU{wh, sku}] {
		if k.status != protocol.StatusAvailable || k.onHand <= 0 {
			continue
		}
		e := s.exp[lotID{wh, sku, k.lot, k.owner}]
		if e != "" && e < cutoff && s.cfg.Sellable(wh, k.loc) {
			n += k.onHand
		}
	}
	return n
}

// readExpiry reads key k's origin into the expiry of its lot.
func readExpiry(tx store.Tx, k ledger.Key, exp map[lotID]string) error {
	o, ok, err := tx.Origin(k)
	if err != nil {
		return err
	}
	id := lotID{k.WH, k.SKU, k.Lot, k.Owner}
	if ok && o.Expiry != "" && (exp[id] == "" || o.Expiry < exp[id]) {
		exp[id] = o.Expiry
	}
	return nil
}
