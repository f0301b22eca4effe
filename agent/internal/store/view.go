package store

import (
	"encoding/binary"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
)

func parseViewKey(b []byte, pfx string) (ledger.Key, bool) {
	parts := strings.Split(strings.TrimPrefix(string(b), pfx), "\x00")
	if len(parts) != 3 {
		return ledger.Key{}, false
	}
	return ledger.Key{Location: parts[0], SKU: parts[1], Lot: parts[2]}, true
}

// StockRow is one key of the local view.
type StockRow struct {
	Location string `json:"location"`
	SKU      string `json:"sku"`
	Lot      string `json:"lot"`
	OnHand   int64  `json:"on_hand"`
}

// Stock lists the local view, filtered by location and sku when not empty.
func (s *Store) Stock(location, sku string) ([]StockRow, error) {
	prefix := pView
	if location != "" {
		prefix += location + "\x00"
	}
	var out []StockRow
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k, ok := parseViewKey(it.Item().Key(), pView)
			if !ok || (sku != "" && k.SKU != sku) {
				continue
			}
			var v int64
			_ = it.Item().Value(func(b []byte) error { v = int64(binary.BigEndian.Uint64(b)); return nil })
			out = append(out, StockRow{Location: k.Location, SKU: k.SKU, Lot: k.Lot, OnHand: v})
		}
		return nil
	})
	return out, err
}

// ApplyServerStock applies a downstream batch's stock values: it records
// each server value, drops pending effects of ops the server has applied
// (seq ≤ upWM), and recomputes the local view of every touched key as the
// server value plus the remaining pending effects in seq order. It also
// moves the downstream watermark to last. All in one transaction.
func (s *Store) ApplyServerStock(values []protocol.StockValue, upWM, last uint64) error {
	return s.ApplyDown(values, nil, upWM, last)
}

// ApplyDown applies a downstream batch: stock values (as ApplyServerStock)
// and tasks (stored by id, replacing older versions), in one transaction.
func (s *Store) ApplyDown(values []protocol.StockValue, tasks []protocol.Task, upWM, last uint64) error {
	return s.update(func(txn *badger.Txn) error {
		for _, t := range tasks {
			b, err := protocol.Marshal(t)
			if err != nil {
				return err
			}
			if err := txn.Set([]byte(pTask+t.ID), b); err != nil {
				return err
			}
		}
		touched := map[ledger.Key]bool{}
		for _, v := range values {
			k := ledger.Key{Location: v.Location, SKU: v.SKU, Lot: v.Lot}
			if err := txn.Set(viewKey(pSrv, k), be(uint64(v.OnHand))); err != nil {
				return err
			}
			touched[k] = true
		}
		old, err := readU64(txn, kUpWM)
		if err != nil {
			return err
		}
		if upWM > old {
			if err := txn.Set([]byte(kUpWM), be(upWM)); err != nil {
				return err
			}
			// Drop reflected pending effects; their keys need recomputing.
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pPend)})
			var dead [][]byte
			for it.Rewind(); it.Valid(); it.Next() {
				key := it.Item().KeyCopy(nil)
				seq := binary.BigEndian.Uint64(key[len(key)-8:])
				if seq <= upWM {
					dead = append(dead, key)
					if k, ok := parseViewKey(key[:len(key)-9], pPend); ok {
						touched[k] = true
					}
				}
			}
			it.Close()
			for _, k := range dead {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
		}
		for k := range touched {
			v, _, err := readI64(txn, viewKey(pSrv, k))
			if err != nil {
				return err
			}
			it := txn.NewIterator(badger.IteratorOptions{Prefix: append(viewKey(pPend, k), 0), PrefetchValues: true})
			for it.Rewind(); it.Valid(); it.Next() {
				var p pending
				if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &p) }); err != nil {
					it.Close()
					return err
				}
				if p.Set {
					v = p.Qty
				} else {
					v += p.Qty
				}
			}
			it.Close()
			if err := txn.Set(viewKey(pView, k), be(uint64(v))); err != nil {
				return err
			}
		}
		down, err := readU64(txn, kDown)
		if err != nil {
			return err
		}
		if last > down {
			return txn.Set([]byte(kDown), be(last))
		}
		return nil
	})
}

// ResetDown forgets the downstream position and the server values (the
// server's state changed epoch); the next downstream starts from seq 1 and
// rebuilds them. Pending own ops stay and the view keeps showing them.
func (s *Store) ResetDown() error {
	if err := s.db.DropPrefix([]byte(pSrv)); err != nil {
		return err
	}
	return s.update(func(txn *badger.Txn) error {
		if err := txn.Set([]byte(kDown), be(0)); err != nil {
			return err
		}
		return txn.Set([]byte(kUpWM), be(0))
	})
}

// Tasks lists the tasks the server sent.
func (s *Store) Tasks() ([]protocol.Task, error) {
	var out []protocol.Task
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pTask), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var t protocol.Task
			if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &t) }); err != nil {
				return err
			}
			out = append(out, t)
		}
		return nil
	})
	return out, err
}
