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
// It holds per sku of a warehouse a short list of its lots' keys (one
// entry each: location, lot, owner, status and on-hand), not a map per
// key: a stock import of millions of new lots keeps one small entry per
// key.
type Shelf struct {
	cfg ShelfConfig

	mu    sync.Mutex
	keys  map[whSKU][]lotKey // every key of a lot whose origin was read
	exp   map[lotID]string   // a lot's expiry (YYYY-MM-DD)
	names map[string]string  // interned warehouse and location names
}

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

// set records key k (a key of a lot) with its on-hand; s.mu is held.
func (s *Shelf) set(k ledger.Key, onHand int64) {
	ws := whSKU{s.intern(k.WH), k.SKU}
	keys := s.keys[ws]
	if i := keyIndex(keys, k); i >= 0 {
		keys[i].onHand = onHand
		return
	}
	s.keys[ws] = append(keys, lotKey{loc: s.intern(k.Location), lot: k.Lot, owner: k.Owner, status: k.Status, onHand: onHand})
}

// has reports whether the Shelf knows key k; s.mu is held.
func (s *Shelf) has(k ledger.Key) bool {
	return keyIndex(s.keys[whSKU{k.WH, k.SKU}], k) >= 0
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
	return &Shelf{cfg: cfg, keys: map[whSKU][]lotKey{}, exp: map[lotID]string{}, names: map[string]string{}}
}

// Load reads every stock key of a lot again (at start, and after lost
// change events).
func (s *Shelf) Load(ctx context.Context) error {
	var rows []store.StockRow // the keys of lots only
	err := s.cfg.Store.StockEach(ctx, store.StockQuery{}, func(r store.StockRow) error {
		if r.Lot != "" {
			rows = append(rows, r)
		}
		return nil
	})
	if err != nil {
		return err
	}
	fresh := &Shelf{keys: map[whSKU][]lotKey{}, exp: map[lotID]string{}, names: map[string]string{}}
	err = s.cfg.Store.View(func(tx store.Tx) error {
		clear(fresh.keys)
		clear(fresh.exp)
		for _, r := range rows {
			k := r.Key()
			if err := readExpiry(tx, k, fresh.exp); err != nil {
				return err
			}
			fresh.set(k, r.OnHand)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.keys, s.exp, s.names = fresh.keys, fresh.exp, fresh.names
	s.mu.Unlock()
	return nil
}

// Changed follows ledger changes: the on-hand of available keys, and the
// expiry of keys not seen before (read from their origin).
func (s *Shelf) Changed(changes []ledger.Change) error {
	var fresh []ledger.Key
	s.mu.Lock()
	for _, c := range changes {
		if c.Key.Lot != "" && !s.has(c.Key) {
			fresh = append(fresh, c.Key)
		}
	}
	s.mu.Unlock()
	exp := map[lotID]string{}
	if len(fresh) > 0 {
		if err := s.cfg.Store.View(func(tx store.Tx) error {
			clear(exp)
			for _, k := range fresh {
				if err := readExpiry(tx, k, exp); err != nil {
					return err
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
		if cur := s.exp[id]; cur == "" || e < cur {
			s.exp[id] = e
		}
	}
	for _, c := range changes {
		if c.Key.Lot != "" {
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
