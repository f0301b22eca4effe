package masterdata

import (
	"context"
	"fmt"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// StockRules are the rules a gateway's scanner applies to a stock line,
// loaded once so that an import can check every row of a large file
// against the same master data without a read per row: a location the
// warehouse has not defined (once it defines locations), a sku a strict
// catalog lacks, a lot-tracked item without a lot, an expiry-tracked item
// without an expiry date, an item of one owner at a location of another.
type StockRules struct {
	wh      string
	managed bool
	strict  bool
	locs    map[string]protocol.Location
	items   map[string]protocol.Item
}

// StockRules loads the rules of wh.
func (s *Service) StockRules(_ context.Context, wh string) (*StockRules, error) {
	r := &StockRules{wh: wh, locs: map[string]protocol.Location{}, items: map[string]protocol.Item{}}
	err := s.b.View(func(tx store.Tx) error {
		var st protocol.Settings
		if _, err := getCBOR(tx, key(pSettings, wh), &st); err != nil {
			return err
		}
		r.strict = st.StrictCatalog
		var err error
		if r.managed, err = exists(tx, key(pLocManaged, wh)); err != nil {
			return err
		}
		locs, err := listCBOR[protocol.Location](tx, pLoc, wh)
		if err != nil {
			return err
		}
		for _, l := range locs {
			r.locs[l.Code] = l
		}
		items, err := listCBOR[protocol.Item](tx, pItem, wh)
		for _, it := range items {
			r.items[it.SKU] = it
		}
		return err
	})
	return r, err
}

// Location reports why a location cannot hold stock ("" when it can).
func (r *StockRules) Location(code string) error {
	if code == "" {
		return fmt.Errorf("%w: location is empty", ErrInvalid)
	}
	if _, ok := r.locs[code]; r.managed && !ok {
		return fmt.Errorf("%w: unknown location %q in %s: the scanner refuses it too; add the location first", ErrInvalid, code, r.wh)
	}
	return nil
}

// Line reports why a stock line (sku, lot, expiry YYYY-MM-DD or "") breaks
// the catalog's rules ("" when it does not). The location is checked
// separately (Location).
func (r *StockRules) Line(sku, lot, expiry string) error {
	if err := field("sku", sku, true); err != nil {
		return err
	}
	if err := field("lot", lot, false); err != nil {
		return err
	}
	if expiry != "" {
		if _, err := time.Parse(time.DateOnly, expiry); err != nil {
			return fmt.Errorf("%w: expiry %q: want YYYY-MM-DD", ErrInvalid, expiry)
		}
	}
	it, ok := r.items[sku]
	switch {
	case !ok && r.strict:
		return fmt.Errorf("%w: unknown sku %q in the strict catalog of %s: add the item first", ErrInvalid, sku, r.wh)
	case it.TrackLot && lot == "":
		return fmt.Errorf("%w: %s is lot-tracked: give its lot", ErrInvalid, sku)
	case it.TrackExpiry && expiry == "":
		return fmt.Errorf("%w: %s is expiry-tracked: give the lot's expiry (YYYY-MM-DD)", ErrInvalid, sku)
	}
	return nil
}

// Owner reports why sku may not be at location: the location holds
// another owner's units (the scanner refuses it too); "" passes, and so
// does an item without an owner.
func (r *StockRules) Owner(location, sku string) error {
	lo, it := r.locs[location].Owner, r.items[sku]
	if lo != "" && it.Owner != "" && it.Owner != lo {
		return fmt.Errorf("%w: %s is %s's, and %s holds %s's units: the scanner refuses it too; give a location of %s", ErrInvalid, sku, it.Owner, location, lo, it.Owner)
	}
	return nil
}
