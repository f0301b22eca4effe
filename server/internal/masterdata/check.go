package masterdata

import (
	"fmt"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// CheckOp reports why an op from a gateway cannot be applied against the
// warehouse's master data (the store then quarantines it with the reason):
// a sku the catalog lacks when the catalog is strict, or a location the
// warehouse has not defined once it has defined locations (it stays
// location-managed after that, even if every location is later deleted).
func CheckOp(tx store.Tx, wh string, op *protocol.Op) error {
	if err := stampOwner(tx, wh, op); err != nil {
		return err
	}
	var st protocol.Settings
	if _, err := getCBOR(tx, key(pSettings, wh), &st); err != nil {
		return err
	}
	if st.StrictCatalog {
		skus := []string{op.SKU}
		for _, l := range op.Lines {
			skus = append(skus, l.SKU)
		}
		for _, sku := range skus {
			if sku == "" {
				continue
			}
			if ok, err := exists(tx, key(pItem, wh, sku)); err != nil {
				return err
			} else if !ok {
				return fmt.Errorf("unknown sku %q in the strict catalog of %s: add the item, then re-apply", sku, wh)
			}
		}
	}
	// A point read, not a prefix scan: an iterator opened inside the apply
	// transaction makes Badger re-sort its pending writes, once per op.
	managed, err := exists(tx, key(pLocManaged, wh))
	if err != nil || !managed {
		return err
	}
	for _, loc := range []string{op.Location, op.To} {
		if loc == "" {
			continue
		}
		if ok, err := exists(tx, key(pLoc, wh, loc)); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("unknown location %q in %s: add the location, then re-apply", loc, wh)
		}
	}
	return nil
}

// stampOwner gives an op (or count line) that names no owner the owner of
// its item, in a warehouse whose items have owners: so the ops of a
// gateway that knows no owners (a version before them) land as stock of
// the item's owner (SPEC.md §5, "Quantities per op kind"). The op is
// logged as stamped, so the op set stays what the ledger merged.
func stampOwner(tx store.Tx, wh string, op *protocol.Op) error {
	owned, err := exists(tx, key(pOwned, wh))
	if err != nil || !owned {
		return err
	}
	ownerOf := func(sku string) (string, error) {
		it, _, err := ItemOf(tx, wh, sku)
		return it.Owner, err
	}
	if op.Owner == "" && op.SKU != "" {
		if op.Owner, err = ownerOf(op.SKU); err != nil {
			return err
		}
	}
	for i := range op.Lines {
		if l := &op.Lines[i]; l.Owner == "" {
			if l.Owner, err = ownerOf(l.SKU); err != nil {
				return err
			}
		}
	}
	return nil
}
