package masterdata

import (
	"fmt"
	"strings"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Keys, beside the store's (fields joined with NUL, which validation keeps
// out of every field):
//
//	md/i/{wh}\0{sku}            protocol.Item (CBOR)
//	md/g/{wh}\0{gtin}           sku of a GTIN-14 (written before owners; read, and dropped with its item)
//	md/G/{wh}\0{gtin}\0{sku}    owner: the GTIN-14 maps to the sku (several skus of different owners)
//	md/l/{wh}\0{code}           protocol.Location (CBOR)
//	md/L/{wh}                   marker: the warehouse manages locations (ops must name defined ones)
//	md/z/{wh}\0{zone}           Zone (CBOR)
//	md/t/{wh}\0{sku}            protocol.Threshold (CBOR)
//	md/p/{wh}\0{po}             poRecord (CBOR)
//	md/s/{wh}                   protocol.Settings (CBOR)
//	md/n/{wh}\0{gw}\0{id}       noticeRecord (CBOR): a gateway's notice, pending or taken
//	md/a/{wh}\0{sku}            ReorderAlert (CBOR) raised by a gateway
//	md/k/{wh}\0{task}           ShortPick (CBOR): a short pick whose action is not done (shorts.go)
const (
	pItem = "md/i/"
	pGTIN = "md/g/"
	// pGTINs maps a GTIN to each sku listing it; one GTIN is shared only
	// by items of different owners.
	pGTINs = "md/G/"
	pLoc   = "md/l/"
	// pLocManaged marks a warehouse that has defined locations.
	pLocManaged = "md/L/"
	// pOwned marks a warehouse with an item that has an owner.
	pOwned    = "md/O/"
	pZone     = "md/z/"
	pThresh   = "md/t/"
	pPO       = "md/p/"
	pSettings = "md/s/"
	pNotice   = "md/n/"
	pAlert    = "md/a/"
)

func key(prefix string, parts ...string) []byte {
	return []byte(prefix + strings.Join(parts, "\x00"))
}

func getString(kv store.KV, k []byte, v *string) (bool, error) {
	b, ok, err := kv.Get(k)
	if err != nil || !ok {
		return false, err
	}
	*v = string(b)
	return true, nil
}

func exists(kv store.KV, k []byte) (bool, error) {
	_, ok, err := kv.Get(k)
	return ok && err == nil, err
}

func mustExist(kv store.KV, k []byte, what string) error {
	ok, err := exists(kv, k)
	if err == nil && !ok {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return err
}

// listCBOR decodes every record under prefix+wh+NUL, in key order.
func listCBOR[T any](kv store.KV, prefix, wh string) ([]T, error) {
	out := []T{}
	err := kv.Scan(key(prefix, wh, ""), store.ScanOptions{}, func(_, b []byte) error {
		var v T
		if err := protocol.Unmarshal(b, &v); err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Record helpers shared by the packages beside the ledger (store/tx.go).
var (
	getCBOR = store.GetCBOR
	putCBOR = store.PutCBOR
)
