package badger

import (
	"bytes"
	"slices"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

func (t recordTx) StockGroups(gs []store.StockGroup) ([]store.StockRow, error) {
	return stockGroups(t.txn, gs)
}

// stockGroups lists the stock keys of each group with one iterator,
// seeking from group to group in key order (an iterator per group costs
// more than the few keys each holds).
func stockGroups(txn *bdb.Txn, gs []store.StockGroup) ([]store.StockRow, error) {
	if len(gs) == 0 {
		return nil, nil
	}
	prefixes := make([][]byte, 0, len(gs))
	for _, g := range gs {
		prefixes = append(prefixes, []byte(pfxKey+g.Warehouse+"\x00"+g.Location+"\x00"+g.SKU+"\x00"))
	}
	slices.SortFunc(prefixes, bytes.Compare)
	prefixes = slices.CompactFunc(prefixes, bytes.Equal)
	it := txn.NewIterator(bdb.IteratorOptions{Prefix: []byte(pfxKey)})
	defer it.Close()
	var out []store.StockRow
	for _, p := range prefixes {
		for it.Seek(p); it.ValidForPrefix(p); it.Next() {
			k, ok := parseStockKey(it.Item().Key())
			if !ok {
				continue
			}
			var ks ledger.KeyState
			if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &ks) }); err != nil {
				return nil, err
			}
			out = append(out, store.RowOf(k, ks.OnHand()))
		}
	}
	return out, nil
}
