package badger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/apply"
)

// recordTx is store.Tx over one Badger transaction.
type recordTx struct {
	txn *bdb.Txn
	// reads, when set, caches Get's answers for the transaction (the
	// apply's master-data check reads the same few keys for every op);
	// Set and Delete through this recordTx keep it true, and the apply
	// writes no master data otherwise.
	reads map[string]cachedRead
	// keys, when set, is the transaction's ledger, whose deferred stock
	// key states (txnLedger.deferKeys) the reads of stock keys here
	// flush first.
	keys *txnLedger
}

// flushKeys writes the ledger's deferred stock key states, before a read
// of stock keys.
func (t recordTx) flushKeys() error {
	if t.keys == nil {
		return nil
	}
	return t.keys.flushKeys()
}

// readsStock reports whether a read of key, or of the keys under it,
// may read stock keys.
func readsStock(key []byte) bool {
	n := min(len(key), len(pfxKey))
	return string(key[:n]) == pfxKey[:n]
}

type cachedRead struct {
	v  []byte
	ok bool
}

var _ store.Records = (*Store)(nil)

// Update implements store.Records: f runs in a read-write transaction, again
// when it lost a race with another writer (ingest, API).
func (s *Store) Update(f func(store.Tx) error) error {
	return update(s.disk, s.db, func(txn *bdb.Txn) error { return f(recordTx{txn: txn}) })
}

// View implements store.Records.
func (s *Store) View(f func(store.Tx) error) error {
	return s.db.View(func(txn *bdb.Txn) error { return f(recordTx{txn: txn}) })
}

func (t recordTx) Get(k []byte) ([]byte, bool, error) {
	reads := t.reads
	if readsStock(k) {
		if err := t.flushKeys(); err != nil {
			return nil, false, err
		}
		reads = nil // the apply writes stock keys: not cached
	}
	if c, hit := reads[string(k)]; hit {
		return bytes.Clone(c.v), c.ok, nil
	}
	item, err := t.txn.Get(k)
	if errors.Is(err, bdb.ErrKeyNotFound) {
		if reads != nil {
			reads[string(k)] = cachedRead{}
		}
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v, err := item.ValueCopy(nil)
	if err == nil && reads != nil {
		reads[string(k)] = cachedRead{bytes.Clone(v), true}
	}
	return v, err == nil, err
}

func (t recordTx) Set(k, v []byte) error {
	if t.reads != nil {
		delete(t.reads, string(k))
	}
	// Badger keeps the slices until commit: hand it copies.
	return t.txn.Set(bytes.Clone(k), bytes.Clone(v))
}

func (t recordTx) Delete(k []byte) error {
	if t.reads != nil {
		delete(t.reads, string(k))
	}
	return t.txn.Delete(bytes.Clone(k))
}

func (t recordTx) Scan(prefix []byte, o store.ScanOptions, fn func(k, v []byte) error) error {
	if readsStock(prefix) {
		if err := t.flushKeys(); err != nil {
			return err
		}
	}
	it := t.txn.NewIterator(bdb.IteratorOptions{Prefix: prefix, Reverse: o.Reverse, PrefetchValues: !o.KeysOnly, PrefetchSize: 64})
	defer it.Close()
	if o.Reverse {
		it.Seek(append(bytes.Clone(prefix), bytes.Repeat([]byte{0xff}, 16)...))
	} else {
		it.Rewind()
	}
	for ; it.Valid(); it.Next() {
		k := it.Item().KeyCopy(nil)
		var v []byte
		if !o.KeysOnly {
			var err error
			if v, err = it.Item().ValueCopy(nil); err != nil {
				return err
			}
		}
		if err := fn(k, v); err != nil {
			if errors.Is(err, store.ErrStopScan) {
				return nil
			}
			return err
		}
	}
	return nil
}

func (t recordTx) AppendDown(wh, target string, kind protocol.DownKind, itemKey string, body any) error {
	return appendDown(t.txn, wh, target, kind, itemKey, body)
}

func (t recordTx) RaiseConflict(c conflicts.Conflict) (conflicts.Conflict, bool, error) {
	return apply.Raise(&txnLedger{txn: t.txn}, c)
}

func (t recordTx) Watermark(wh, gw string) (uint64, error) { return getU64(t.txn, wmKey(wh, gw)) }

func (t recordTx) Task(wh, id string) (protocol.Task, bool, error) {
	var task protocol.Task
	ok, err := (&txnLedger{txn: t.txn}).getCBOR([]byte(pfxTask+join(wh, id)), &task)
	return task, ok, err
}

func (t recordTx) PutTask(wh, target string, task protocol.Task) error {
	return apply.PutTask(&tx{txnLedger: txnLedger{txn: t.txn}}, wh, target, task)
}

func (t recordTx) Tasks(wh string) ([]protocol.Task, error) {
	var out []protocol.Task
	it := t.txn.NewIterator(bdb.IteratorOptions{Prefix: []byte(pfxTask + wh + "\x00"), PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var task protocol.Task
		if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &task) }); err != nil {
			return nil, err
		}
		out = append(out, task)
	}
	return out, nil
}

func (t recordTx) ScanOps(wh string, fn func(gw string, op *protocol.Op) error) error {
	prefix := []byte(pfxOp + wh + "\x00")
	it := t.txn.NewIterator(bdb.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 256})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		rest := string(it.Item().Key()[len(prefix):])
		gw, _, ok := strings.Cut(rest, "\x00")
		if !ok {
			continue
		}
		var op protocol.Op
		if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &op) }); err != nil {
			return err
		}
		if err := fn(gw, &op); err != nil {
			return err
		}
	}
	return nil
}

func (t recordTx) Origin(k ledger.Key) (store.Origin, bool, error) {
	prefix := deltaPrefix(k)
	it := t.txn.NewIterator(bdb.IteratorOptions{Prefix: prefix, PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var qty int64
		if err := it.Item().Value(func(b []byte) error {
			if len(b) == 8 {
				qty = int64(binary.BigEndian.Uint64(b))
			}
			return nil
		}); err != nil {
			return store.Origin{}, false, err
		}
		if qty <= 0 {
			continue
		}
		o, err := parseOrder(it.Item().KeyCopy(nil)[len(prefix):])
		if err != nil {
			return store.Origin{}, false, err
		}
		out := store.Origin{HLC: o.HLC}
		var op protocol.Op
		if ok, err := (&txnLedger{txn: t.txn}).getCBOR(opKey(pfxOp, k.WH, o.GW, o.Seq), &op); err != nil {
			return store.Origin{}, false, err
		} else if ok {
			out.Expiry, out.Kind = op.Expiry, op.Kind
		}
		return out, true, nil
	}
	return store.Origin{}, false, nil
}

func (t recordTx) Stock(wh, sku string) ([]store.StockRow, error) {
	if err := t.flushKeys(); err != nil {
		return nil, err
	}
	it := t.txn.NewIterator(bdb.IteratorOptions{Prefix: []byte(pfxKey + wh + "\x00"), PrefetchValues: true, PrefetchSize: 100})
	defer it.Close()
	var out []store.StockRow
	for it.Rewind(); it.Valid(); it.Next() {
		k, ok := parseStockKey(it.Item().Key())
		if !ok || (sku != "" && k.SKU != sku) {
			continue
		}
		var ks ledger.KeyState
		if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &ks) }); err != nil {
			return nil, err
		}
		out = append(out, store.RowOf(k, ks.OnHand()))
	}
	return out, nil
}

func (t recordTx) StockWhere(q store.StockQuery) ([]store.StockRow, error) {
	if err := t.flushKeys(); err != nil {
		return nil, err
	}
	return stockIn(t.txn, q)
}

func (t recordTx) PutSettings(wh string, st store.Settings) error {
	return putCBOR(t.txn, []byte(pfxSettings+wh), st)
}

func (t recordTx) PutOrder(o store.Order) ([]conflicts.Conflict, error) {
	return apply.PutOrder(&tx{txnLedger: txnLedger{txn: t.txn}}, o)
}

func (t recordTx) OrderPicks(wh, id string) ([]store.OrderPick, error) {
	return orderPicksIn(t.txn, wh, id)
}
