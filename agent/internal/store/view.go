package store

import (
	"encoding/binary"
	"errors"
	"sort"
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
	return s.update(func(txn *badger.Txn) error { return s.applyDownTxn(txn, values, tasks, upWM, last) })
}

func (s *Store) applyDownTxn(txn *badger.Txn, values []protocol.StockValue, tasks []protocol.Task, upWM, last uint64) error {
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
		// Drop reflected pending effects (seq in old..upWM, found through
		// the seq index); their keys need recomputing.
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pPendQ)})
		var dead [][]byte
		for it.Seek(append([]byte(pPendQ), be(old+1)...)); it.Valid(); it.Next() {
			key := it.Item().KeyCopy(nil)
			seq := binary.BigEndian.Uint64(key[len(pPendQ) : len(pPendQ)+8])
			if seq > upWM {
				break
			}
			dead = append(dead, key)
			rest := string(key[len(pPendQ)+8:])
			if k, ok := parseViewKey([]byte(rest), ""); ok {
				touched[k] = true
				pk := append(viewKey(pPend, k), append([]byte{0}, be(seq)...)...)
				var p pending
				if ok, err := getPending(txn, pk, &p); err != nil {
					it.Close()
					return err
				} else if ok {
					if err := s.addAgg(txn, k, p, -1); err != nil {
						it.Close()
						return err
					}
				}
				dead = append(dead, pk)
			}
		}
		it.Close()
		for _, k := range dead {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		// Reflected location counts.
		lit := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pLocP)})
		var deadLoc [][]byte
		for lit.Rewind(); lit.Valid(); lit.Next() {
			key := lit.Item().KeyCopy(nil)
			if binary.BigEndian.Uint64(key[len(key)-8:]) <= upWM {
				deadLoc = append(deadLoc, key)
			}
		}
		lit.Close()
		for _, k := range deadLoc {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
	}
	for k := range touched {
		if err := s.recompute(txn, k); err != nil {
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

// recompute sets the view of k to its server value plus this gateway's
// pending effects in seq order: its own entries, and pending location
// counts of its location that did not list it (those observe 0).
func (s *Store) recompute(txn *badger.Txn, k ledger.Key) error {
	v, _, err := readI64(txn, viewKey(pSrv, k))
	if err != nil {
		return err
	}
	// Fast path: only deltas pending (no own count of the key or its
	// location): the view is the server value plus their sum, kept in the
	// key's aggregate — no walk over the key's pending entries.
	var ag agg
	if _, err := getPending(txn, viewKey(pAgg, k), &ag); err != nil {
		return err
	}
	if ag.Sets == 0 {
		lit := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pLocP + k.Location + "\x00")})
		lit.Rewind()
		locCount := lit.Valid()
		lit.Close()
		if !locCount {
			return txn.Set(viewKey(pView, k), be(uint64(v+ag.Sum)))
		}
	}
	type ent struct {
		seq uint64
		p   pending
	}
	var ents []ent
	bySeq := map[uint64]bool{}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: append(viewKey(pPend, k), 0), PrefetchValues: true})
	for it.Rewind(); it.Valid(); it.Next() {
		var p pending
		if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &p) }); err != nil {
			it.Close()
			return err
		}
		key := it.Item().Key()
		seq := binary.BigEndian.Uint64(key[len(key)-8:])
		ents = append(ents, ent{seq, p})
		bySeq[seq] = true
	}
	it.Close()
	lit := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pLocP + k.Location + "\x00")})
	for lit.Rewind(); lit.Valid(); lit.Next() {
		key := lit.Item().Key()
		if seq := binary.BigEndian.Uint64(key[len(key)-8:]); !bySeq[seq] {
			ents = append(ents, ent{seq, pending{Set: true}})
		}
	}
	lit.Close()
	sort.Slice(ents, func(i, j int) bool { return ents[i].seq < ents[j].seq })
	for _, e := range ents {
		if e.p.Set {
			v = e.p.Qty
		} else {
			v += e.p.Qty
		}
	}
	return txn.Set(viewKey(pView, k), be(uint64(v)))
}

// agg is the aggregate of a key's pending entries: the sum of its deltas
// and how many of them are counts (sets).
type agg struct {
	Sum  int64 `cbor:"1,keyasint,omitempty"`
	Sets int64 `cbor:"2,keyasint,omitempty"`
}

// addAgg adds (sign 1) or removes (sign -1) a pending entry's share of the
// key's aggregate.
func (s *Store) addAgg(txn *badger.Txn, k ledger.Key, p pending, sign int64) error {
	var a agg
	if _, err := getPending(txn, viewKey(pAgg, k), &a); err != nil {
		return err
	}
	if p.Set {
		a.Sets += sign
	} else {
		a.Sum += sign * p.Qty
	}
	if a == (agg{}) {
		return txn.Delete(viewKey(pAgg, k))
	}
	b, err := protocol.Marshal(a)
	if err != nil {
		return err
	}
	return txn.Set(viewKey(pAgg, k), b)
}

// getPending decodes the CBOR value at key into v; false when absent.
func getPending(txn *badger.Txn, key []byte, v any) (bool, error) {
	it, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, it.Value(func(b []byte) error { return protocol.Unmarshal(b, v) })
}
