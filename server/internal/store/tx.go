package store

import (
	"encoding/binary"
	"errors"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
)

// Tx is a Badger transaction handed to the packages of this module that
// keep their own records beside the ledger (master data, pick routing), so
// that a record, the downstream item carrying it and the conflicts it
// raises are written together. Txn is theirs for their own key prefixes.
type Tx struct {
	Txn *badger.Txn
}

// Update runs f in a read-write transaction, retrying when it lost a race
// with another writer (ingest, API); f must be safe to run again.
func (s *Badger) Update(f func(Tx) error) error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		err = s.db.Update(func(txn *badger.Txn) error { return f(Tx{txn}) })
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
	return ErrConflict
}

// View runs f in a read-only transaction.
func (s *Badger) View(f func(Tx) error) error {
	return s.db.View(func(txn *badger.Txn) error { return f(Tx{txn}) })
}

// AppendDown adds a downstream item for every gateway of wh (target "")
// or for one gateway, replacing the older entry of the same item key.
func (t Tx) AppendDown(wh, target string, kind protocol.DownKind, itemKey string, body any) error {
	return appendDown(t.Txn, wh, target, kind, itemKey, body)
}

// RaiseConflict records a conflict with conflicts.Raise's lifecycle rules.
func (t Tx) RaiseConflict(c conflicts.Conflict) (conflicts.Conflict, bool, error) {
	return conflicts.Raise(&txnLedger{t.Txn}, c)
}

// Watermark returns the upstream watermark of wh/gw.
func (t Tx) Watermark(wh, gw string) (uint64, error) { return getU64(t.Txn, wmKey(wh, gw)) }

// Task returns a task of wh.
func (t Tx) Task(wh, id string) (protocol.Task, bool, error) {
	var task protocol.Task
	ok, err := (&txnLedger{t.Txn}).getCBOR([]byte(pfxTask+join(wh, id)), &task)
	return task, ok, err
}

// PutTask stores a task of wh (listed by Tasks) and sends it downstream to
// target ("" for every gateway of wh), compacted per task id.
func (t Tx) PutTask(wh, target string, task protocol.Task) error {
	if err := putCBOR(t.Txn, []byte(pfxTask+join(wh, task.ID)), task); err != nil {
		return err
	}
	return appendDown(t.Txn, wh, target, protocol.DownTask, "task/"+task.ID, task)
}

// Tasks lists the tasks of wh.
func (t Tx) Tasks(wh string) ([]protocol.Task, error) {
	var out []protocol.Task
	it := t.Txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxTask + wh + "\x00"), PrefetchValues: true})
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

// ScanOps calls fn for every applied op of wh (every gateway, and the
// server's own), in (gateway, seq) order. It reads the whole op log of the
// warehouse: for occasional work such as closing a receipt.
func (t Tx) ScanOps(wh string, fn func(gw string, op *protocol.Op) error) error {
	prefix := []byte(pfxOp + wh + "\x00")
	it := t.Txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 256})
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

// Origin is the earliest op, in merge order, that added to a stock key:
// when its stock first came in (FIFO) and the expiry it carried (FEFO).
type Origin struct {
	HLC    protocol.HLC
	Expiry string
	Kind   protocol.OpKind
}

// Origin returns the earliest positive delta of k and the op behind it.
func (t Tx) Origin(k ledger.Key) (Origin, bool, error) {
	prefix := deltaPrefix(k)
	it := t.Txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true})
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
		if ok, err := (&txnLedger{t.Txn}).getCBOR(opKey(pfxOp, k.WH, o.GW, o.Seq), &op); err != nil {
			return Origin{}, false, err
		} else if ok {
			out.Expiry, out.Kind = op.Expiry, op.Kind
		}
		return out, true, nil
	}
	return Origin{}, false, nil
}

// Stock lists the on-hand of wh's keys of sku (every sku when empty).
func (t Tx) Stock(wh, sku string) ([]StockRow, error) {
	it := t.Txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxKey + wh + "\x00"), PrefetchValues: true, PrefetchSize: 100})
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

// PutSettings writes the settings the conflict detector reads.
func (t Tx) PutSettings(wh string, st Settings) error {
	return putCBOR(t.Txn, []byte(pfxSettings+wh), st)
}
