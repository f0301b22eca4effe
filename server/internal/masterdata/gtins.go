package masterdata

import (
	"bytes"
	"fmt"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// gtinSKUs returns the skus listing a GTIN-14: the entries written
// before owners (one sku per GTIN) and those of md/G/ (keys.go).
func gtinSKUs(tx store.Tx, wh, gtin string) ([]string, error) {
	var out []string
	var legacy string
	if ok, err := getString(tx, key(pGTIN, wh, gtin), &legacy); err != nil {
		return nil, err
	} else if ok {
		out = append(out, legacy)
	}
	prefix := key(pGTINs, wh, gtin, "")
	err := tx.Scan(prefix, store.ScanOptions{}, func(k, _ []byte) error {
		sku := string(bytes.TrimPrefix(k, prefix))
		if sku != legacy {
			out = append(out, sku)
		}
		return nil
	})
	return out, err
}

// shareableGTIN refuses a GTIN of it that another item lists, unless both
// have owners and they differ: a 3PL's clients may each keep the same
// product under their own sku, and the gateway tells them apart by the
// location's owner or an OWNER: scan. Without owners a GTIN names one sku.
func shareableGTIN(tx store.Tx, wh, gtin string, it protocol.Item) error {
	skus, err := gtinSKUs(tx, wh, gtin)
	if err != nil {
		return err
	}
	for _, sku := range skus {
		if sku == it.SKU {
			continue
		}
		other, ok, err := ItemOf(tx, wh, sku)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		switch {
		case other.Owner == "" || it.Owner == "":
			return fmt.Errorf("%w: gtin %s already belongs to sku %s: a GTIN is shared only by items of different owners (give both an owner)", ErrInvalid, gtin, sku)
		case other.Owner == it.Owner:
			return fmt.Errorf("%w: gtin %s already belongs to sku %s of the same owner %s: one owner's GTIN names one sku", ErrInvalid, gtin, sku, it.Owner)
		}
	}
	return nil
}

// dropGTIN removes the mapping of a GTIN to sku, in either layout.
func dropGTIN(tx store.Tx, wh, gtin, sku string) error {
	var legacy string
	if ok, err := getString(tx, key(pGTIN, wh, gtin), &legacy); err != nil {
		return err
	} else if ok && legacy == sku {
		if err := tx.Delete(key(pGTIN, wh, gtin)); err != nil {
			return err
		}
	}
	return tx.Delete(key(pGTINs, wh, gtin, sku))
}
