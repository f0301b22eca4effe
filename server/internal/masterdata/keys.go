package masterdata

import (
	"errors"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Keys, beside the store's (fields joined with NUL, which validation keeps
// out of every field):
//
//	md/i/{wh}\0{sku}            protocol.Item (CBOR)
//	md/g/{wh}\0{gtin}           sku of a GTIN-14
//	md/l/{wh}\0{code}           protocol.Location (CBOR)
//	md/L/{wh}                   marker: the warehouse manages locations (ops must name defined ones)
//	md/z/{wh}\0{zone}           Zone (CBOR)
//	md/t/{wh}\0{sku}            protocol.Threshold (CBOR)
//	md/p/{wh}\0{po}             poRecord (CBOR)
//	md/s/{wh}                   protocol.Settings (CBOR)
//	md/n/{wh}\0{gw}\0{id}       noticeRecord (CBOR): a gateway's notice, pending or taken
//	md/a/{wh}\0{sku}            ReorderAlert (CBOR) raised by a gateway
const (
	pItem = "md/i/"
	pGTIN = "md/g/"
	pLoc  = "md/l/"
	// pLocManaged marks a warehouse that has defined locations.
	pLocManaged = "md/L/"
	pZone       = "md/z/"
	pThresh     = "md/t/"
	pPO         = "md/p/"
	pSettings   = "md/s/"
	pNotice     = "md/n/"
	pAlert      = "md/a/"
)

func key(prefix string, parts ...string) []byte {
	return []byte(prefix + strings.Join(parts, "\x00"))
}

func putCBOR(txn *badger.Txn, k []byte, v any) error {
	b, err := protocol.Marshal(v)
	if err != nil {
		return err
	}
	return txn.Set(k, b)
}

func getCBOR(txn *badger.Txn, k []byte, v any) (bool, error) {
	it, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, it.Value(func(b []byte) error { return protocol.Unmarshal(b, v) })
}

func getString(txn *badger.Txn, k []byte, v *string) (bool, error) {
	it, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	b, err := it.ValueCopy(nil)
	*v = string(b)
	return true, err
}

// listCBOR decodes every record under prefix+wh+NUL, in key order.
func listCBOR[T any](tx store.Tx, prefix, wh string) ([]T, error) {
	it := tx.Txn.NewIterator(badger.IteratorOptions{Prefix: key(prefix, wh, ""), PrefetchValues: true})
	defer it.Close()
	out := []T{}
	for it.Rewind(); it.Valid(); it.Next() {
		var v T
		if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &v) }); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
