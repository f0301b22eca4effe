package expiry

import (
	"context"
	"sync"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// ShelfStore is what a Shelf reads: stock rows and their origins.
type ShelfStore interface {
	store.Records
	Stock(ctx context.Context, q store.StockQuery) ([]store.StockRow, error)
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
type Shelf struct {
	cfg ShelfConfig

	mu    sync.Mutex
	avail map[whSKU]map[ledger.Key]int64 // available keys of lots, with on-hand > 0
	exp   map[lotID]string               // a lot's expiry (YYYY-MM-DD)
	known map[ledger.Key]bool            // keys whose origin was read
}

type whSKU struct{ wh, sku string }

// NewShelf returns an empty Shelf; Load fills it.
func NewShelf(cfg ShelfConfig) *Shelf {
	if cfg.Today == nil {
		cfg.Today = time.Now
	}
	if cfg.Sellable == nil {
		cfg.Sellable = func(string, string) bool { return true }
	}
	return &Shelf{cfg: cfg, avail: map[whSKU]map[ledger.Key]int64{}, exp: map[lotID]string{}, known: map[ledger.Key]bool{}}
}

// Load reads every stock key of a lot again (at start, and after lost
// change events).
func (s *Shelf) Load(ctx context.Context) error {
	rows, err := s.cfg.Store.Stock(ctx, store.StockQuery{})
	if err != nil {
		return err
	}
	avail := map[whSKU]map[ledger.Key]int64{}
	exp := map[lotID]string{}
	known := map[ledger.Key]bool{}
	err = s.cfg.Store.View(func(tx store.Tx) error {
		clear(avail)
		clear(exp)
		clear(known)
		for _, r := range rows {
			if r.Lot == "" {
				continue
			}
			k := r.Key()
			if err := readExpiry(tx, k, exp, known); err != nil {
				return err
			}
			setAvail(avail, k, r.OnHand)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.avail, s.exp, s.known = avail, exp, known
	s.mu.Unlock()
	return nil
}

// Changed follows ledger changes: the on-hand of available keys, and the
// expiry of keys not seen before (read from their origin).
func (s *Shelf) Changed(changes []ledger.Change) error {
	var fresh []ledger.Key
	s.mu.Lock()
	for _, c := range changes {
		if c.Key.Lot != "" && !s.known[c.Key] {
			fresh = append(fresh, c.Key)
		}
	}
	s.mu.Unlock()
	exp := map[lotID]string{}
	known := map[ledger.Key]bool{}
	if len(fresh) > 0 {
		if err := s.cfg.Store.View(func(tx store.Tx) error {
			clear(exp)
			clear(known)
			for _, k := range fresh {
				if err := readExpiry(tx, k, exp, known); err != nil {
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
	for k := range known {
		s.known[k] = true
	}
	for id, e := range exp {
		if cur := s.exp[id]; cur == "" || e < cur {
			s.exp[id] = e
		}
	}
	for _, c := range changes {
		if c.Key.Lot != "" {
			setAvail(s.avail, c.Key, c.After)
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
	for k, q := range s.avail[whSKU{wh, sku}] {
		e := s.exp[lotID{k.WH, k.SKU, k.Lot, k.Owner}]
		if e != "" && e < cutoff && s.cfg.Sellable(wh, k.Location) {
			n += q
		}
	}
	return n
}

// readExpiry reads key k's origin into the expiry of its lot.
func readExpiry(tx store.Tx, k ledger.Key, exp map[lotID]string, known map[ledger.Key]bool) error {
	o, ok, err := tx.Origin(k)
	if err != nil {
		return err
	}
	known[k] = true
	id := lotID{k.WH, k.SKU, k.Lot, k.Owner}
	if ok && o.Expiry != "" && (exp[id] == "" || o.Expiry < exp[id]) {
		exp[id] = o.Expiry
	}
	return nil
}

// setAvail records the on-hand of an available key (nothing for another
// status, or nothing on hand).
func setAvail(avail map[whSKU]map[ledger.Key]int64, k ledger.Key, onHand int64) {
	if k.Status != protocol.StatusAvailable {
		return
	}
	ws := whSKU{k.WH, k.SKU}
	if onHand <= 0 {
		delete(avail[ws], k)
		return
	}
	m := avail[ws]
	if m == nil {
		m = map[ledger.Key]int64{}
		avail[ws] = m
	}
	m[k] = onHand
}
