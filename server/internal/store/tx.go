package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
)

// KV is the ordered key-value space in which the packages of this module
// that keep records beside the ledger (master data, pick routing, orders,
// alerts, webhooks) store them, each under its own key prefix ("md/",
// "or/", "al/", "wh/", …). Keys compare byte-wise in both backends.
type KV interface {
	// Get returns the value of k (a copy the caller may keep).
	Get(k []byte) (v []byte, ok bool, err error)
	Set(k, v []byte) error
	Delete(k []byte) error
	// Scan calls fn for every key with prefix in key order (descending
	// with Reverse), with the whole key; k and v are the caller's to keep.
	// fn returning ErrStopScan ends the scan without error. fn may read
	// and write through the same transaction.
	Scan(prefix []byte, o ScanOptions, fn func(k, v []byte) error) error
}

// ScanOptions tune KV.Scan.
type ScanOptions struct {
	Reverse  bool
	KeysOnly bool // v is nil
}

// ErrStopScan ends a KV.Scan early.
var ErrStopScan = errors.New("store: stop scan")

// Tx is one transaction over the records beside the ledger (KV) and the
// parts of the ledger those records work with, so that a record, the
// downstream item carrying it and the conflicts it raises are written
// together or not at all. Both backends implement it (Records).
type Tx interface {
	KV
	// AppendDown adds a downstream item for every gateway of wh (target
	// "") or for one gateway, replacing the older entry of the same key.
	AppendDown(wh, target string, kind protocol.DownKind, itemKey string, body any) error
	// RaiseConflict records a conflict with conflicts.Raise's lifecycle
	// rules and reports whether anything was written.
	RaiseConflict(c conflicts.Conflict) (conflicts.Conflict, bool, error)
	// Watermark returns the upstream watermark of wh/gw.
	Watermark(wh, gw string) (uint64, error)
	// Task returns a task of wh.
	Task(wh, id string) (protocol.Task, bool, error)
	// PutTask stores a task of wh (listed by Tasks) and sends it
	// downstream to target ("" for every gateway of wh), compacted per id.
	PutTask(wh, target string, task protocol.Task) error
	// Tasks lists the tasks of wh.
	Tasks(wh string) ([]protocol.Task, error)
	// ScanOps calls fn for every applied op of wh (every gateway, and the
	// server's own), in (gateway, seq) order: for occasional work such as
	// closing a receipt.
	ScanOps(wh string, fn func(gw string, op *protocol.Op) error) error
	// Origin returns the earliest positive delta of k and the op behind it.
	Origin(k ledger.Key) (Origin, bool, error)
	// Stock lists the on-hand of wh's keys of sku (every sku when empty).
	Stock(wh, sku string) ([]StockRow, error)
	// StockWhere lists the stock matching q.
	StockWhere(q StockQuery) ([]StockRow, error)
	// PutSettings writes the settings the conflict detector reads.
	PutSettings(wh string, st Settings) error
	// PutOrder creates or replaces an order and its line quantities, and
	// re-checks over-picks of its lines (picks may have come first).
	PutOrder(o Order) ([]conflicts.Conflict, error)
	// OrderPicks returns every pick recorded against order id of wh.
	OrderPicks(wh, id string) ([]OrderPick, error)
}

// Records runs transactions over Tx. Update retries f when it lost a race
// with another writer (ingest, API, another replica), so f must be safe to
// run again; it returns ErrConflict after repeated losses.
type Records interface {
	Update(f func(Tx) error) error
	View(f func(Tx) error) error
}

var _ Records = (*Badger)(nil)

// Origin is the earliest op, in merge order, that added to a stock key:
// when its stock first came in (FIFO) and the expiry it carried (FEFO).
type Origin struct {
	HLC    protocol.HLC
	Expiry string
	Kind   protocol.OpKind
}

// badgerTx is the Badger Tx.
type badgerTx struct {
	txn *badger.Txn
}

// Update runs f in a read-write transaction, retrying when it lost a race
// with another writer (ingest, API); f must be safe to run again.
func (s *Badger) Update(f func(Tx) error) error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		err = s.db.Update(func(txn *badger.Txn) error { return f(badgerTx{txn}) })
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
		// Back off a little, growing and jittered, so that writers racing
		// for one key take turns instead of colliding again.
		time.Sleep(time.Duration(attempt+1)*time.Millisecond + time.Duration(rand.IntN(1000))*time.Microsecond)
	}
	return ErrConflict
}

// View runs f in a read-only transaction.
func (s *Badger) View(f func(Tx) error) error {
	return s.db.View(func(txn *badger.Txn) error { return f(badgerTx{txn}) })
}

func (t badgerTx) Get(k []byte) ([]byte, bool, error) {
	item, err := t.txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v, err := item.ValueCopy(nil)
	return v, err == nil, err
}

func (t badgerTx) Set(k, v []byte) error {
	// Badger keeps the slices until commit: hand it copies.
	return t.txn.Set(bytes.Clone(k), bytes.Clone(v))
}

func (t badgerTx) Delete(k []byte) error { return t.txn.Delete(bytes.Clone(k)) }

func (t badgerTx) Scan(prefix []byte, o ScanOptions, fn func(k, v []byte) error) error {
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: o.Reverse, PrefetchValues: !o.KeysOnly, PrefetchSize: 64})
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
			if errors.Is(err, ErrStopScan) {
				return nil
			}
			return err
		}
	}
	return nil
}

func (t badgerTx) AppendDown(wh, target string, kind protocol.DownKind, itemKey string, body any) error {
	return appendDown(t.txn, wh, target, kind, itemKey, body)
}

func (t badgerTx) RaiseConflict(c conflicts.Conflict) (conflicts.Conflict, bool, error) {
	return conflicts.Raise(&txnLedger{txn: t.txn}, c)
}

func (t badgerTx) Watermark(wh, gw string) (uint64, error) { return getU64(t.txn, wmKey(wh, gw)) }

func (t badgerTx) Task(wh, id string) (protocol.Task, bool, error) {
	var task protocol.Task
	ok, err := (&txnLedger{txn: t.txn}).getCBOR([]byte(pfxTask+join(wh, id)), &task)
	return task, ok, err
}

func (t badgerTx) PutTask(wh, target string, task protocol.Task) error {
	if err := putCBOR(t.txn, []byte(pfxTask+join(wh, task.ID)), task); err != nil {
		return err
	}
	return appendDown(t.txn, wh, target, protocol.DownTask, "task/"+task.ID, task)
}

func (t badgerTx) Tasks(wh string) ([]protocol.Task, error) {
	var out []protocol.Task
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxTask + wh + "\x00"), PrefetchValues: true})
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

func (t badgerTx) ScanOps(wh string, fn func(gw string, op *protocol.Op) error) error {
	prefix := []byte(pfxOp + wh + "\x00")
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 256})
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

func (t badgerTx) Origin(k ledger.Key) (Origin, bool, error) {
	prefix := deltaPrefix(k)
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var qty int64
		if err := it.Item().Value(func(b []byte) error {
			if len(b) == 8 {
				qty = int64(binary.BigEndian.Uint64(b))
			}
			return nil
		}); err != nil {
			return Origin{}, false, err
		}
		if qty <= 0 {
			continue
		}
		o, err := parseOrder(it.Item().KeyCopy(nil)[len(prefix):])
		if err != nil {
			return Origin{}, false, err
		}
		out := Origin{HLC: o.HLC}
		var op protocol.Op
		if ok, err := (&txnLedger{txn: t.txn}).getCBOR(opKey(pfxOp, k.WH, o.GW, o.Seq), &op); err != nil {
			return Origin{}, false, err
		} else if ok {
			out.Expiry, out.Kind = op.Expiry, op.Kind
		}
		return out, true, nil
	}
	return Origin{}, false, nil
}

func (t badgerTx) Stock(wh, sku string) ([]StockRow, error) {
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxKey + wh + "\x00"), PrefetchValues: true, PrefetchSize: 100})
	defer it.Close()
	var out []StockRow
	for it.Rewind(); it.Valid(); it.Next() {
		k, ok := parseStockKey(it.Item().Key())
		if !ok || (sku != "" && k.SKU != sku) {
			continue
		}
		var ks ledger.KeyState
		if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &ks) }); err != nil {
			return nil, err
		}
		out = append(out, StockRow{Warehouse: k.WH, Location: k.Location, SKU: k.SKU, Lot: k.Lot, OnHand: ks.OnHand()})
	}
	return out, nil
}

func (t badgerTx) StockWhere(q StockQuery) ([]StockRow, error) { return stockIn(t.txn, q) }

func (t badgerTx) PutSettings(wh string, st Settings) error {
	return putCBOR(t.txn, []byte(pfxSettings+wh), st)
}

func (t badgerTx) PutOrder(o Order) ([]conflicts.Conflict, error) { return putOrderIn(t.txn, o) }

func (t badgerTx) OrderPicks(wh, id string) ([]OrderPick, error) { return orderPicksIn(t.txn, wh, id) }

// GetCBOR reads k's CBOR value into v and reports whether k exists.
func GetCBOR(kv KV, k []byte, v any) (bool, error) {
	b, ok, err := kv.Get(k)
	if err != nil || !ok {
		return false, err
	}
	return true, protocol.Unmarshal(b, v)
}

// PutCBOR writes v at k in deterministic CBOR.
func PutCBOR(kv KV, k []byte, v any) error {
	b, err := protocol.Marshal(v)
	if err != nil {
		return err
	}
	return kv.Set(k, b)
}

// GetU64 reads k's big-endian uint64 (0 when k does not exist).
func GetU64(kv KV, k []byte) (uint64, error) {
	b, ok, err := kv.Get(k)
	if err != nil || !ok {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("corrupt value at %q: %d bytes, want 8", k, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}
