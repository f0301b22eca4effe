package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
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
	k := ledger.Key{Location: parts[0], SKU: parts[1]}
	return k, k.SetStoredLot(parts[2])
}

// StockRow is one key of the local view. Status is "available" for
// sellable stock; Owner is "" when the warehouse has no owners.
type StockRow struct {
	Location string               `json:"location"`
	SKU      string               `json:"sku"`
	Lot      string               `json:"lot"`
	Owner    string               `json:"owner"`
	Status   protocol.StockStatus `json:"status"`
	OnHand   int64                `json:"on_hand"`
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
			out = append(out, StockRow{Location: k.Location, SKU: k.SKU, Lot: k.Lot, Owner: k.Owner, Status: k.Status, OnHand: v})
		}
		return nil
	})
	return out, err
}

// Applying a downstream batch (ApplyDownItems) records each server value,
// drops the pending effects of own ops the server has applied (seq ≤
// upWM), and recomputes the local view of every touched key as the server
// value plus the remaining pending effects in seq order; it also moves the
// downstream watermark to last.
//
// A gateway that was cut off for long may have many thousands of pending
// effects for the server to reflect at once, more than one Badger
// transaction can hold (ErrTxnTooBig). So the reflected effects are pruned
// first in bounded transactions that mark their keys dirty (m/pruned
// records progress), then one transaction records the batch, the
// up-watermark and the downstream watermark and recomputes the touched
// and dirty keys, and any dirty keys left over are recomputed in bounded
// transactions. A crash between the steps leaves dirty markers that the
// next batch recomputes.

// applyDown runs those steps; pre, when set, writes more of the batch
// (master data) in the main transaction.
func (s *Store) applyDown(pre func(*badger.Txn) error, values []protocol.StockValue, tasks []protocol.Task, upWM, last uint64) error {
	if err := s.prunePending(upWM); err != nil {
		return fmt.Errorf("prune pending: %w", err)
	}
	more := false
	err := s.update(func(txn *badger.Txn) error {
		if pre != nil {
			if err := pre(txn); err != nil {
				return err
			}
		}
		var err error
		more, err = s.applyDownTxn(txn, values, tasks, upWM, last)
		return err
	})
	for err == nil && more {
		err = s.update(func(txn *badger.Txn) error {
			var e error
			more, e = s.recomputeDirty(txn, nil)
			return e
		})
	}
	return err
}

// pruneBatch bounds the dirty keys recomputed per transaction.
const pruneBatch = 1000

// Pruning bounds: the keys whose aggregates one transaction updates (two
// writes each: the aggregate and the dirty marker), and the reflected
// entries one transaction deletes (two deletes each). A gateway store's
// transaction takes about 6,500 writes (Badger: 15% of the 4 MiB memtable
// over its node size). Variables for tests.
var (
	pruneKeys    = 2000
	pruneDeletes = 2500
)

// prunePending removes the pending effects with seq ≤ upWM not yet
// pruned, in two steps per chunk of keys. First one transaction takes the
// chunk's effects out of their keys' aggregates, marks the keys dirty and
// moves m/agg-pruned past them; then bounded transactions delete their
// entries, moving m/pruned. A key's aggregate is so written once per
// chunk, however many of its effects the server reflected — pruning an
// entry at a time wrote it (and its dirty marker, and later its view) once
// per transaction of entries, which in a catch-up touch every key again.
// Entries up to m/agg-pruned that are not yet deleted are dead: the
// aggregates leave them out and recompute skips them.
func (s *Store) prunePending(upWM uint64) error {
	for {
		done, err := s.pruneAggs(upWM)
		if err != nil {
			return err
		}
		if err := s.deletePruned(); err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// aggPruned returns the highest seq whose pending effects the aggregates
// leave out: m/agg-pruned, or m/pruned in a store of an older agent (which
// deleted entries and updated aggregates together).
func aggPruned(txn *badger.Txn) (uint64, error) {
	a, err := readU64(txn, kAggPruned)
	if err != nil {
		return 0, err
	}
	p, err := readU64(txn, kPruned)
	return max(a, p), err
}

// aggDelta is what pruning takes out of one key's aggregate.
type aggDelta struct {
	sum, sets int64
	any       bool // an effect was found (a key is dirtied all the same)
}

// pruneAggs takes the next chunk of reflected effects (seq ≤ upWM) out of
// their keys' aggregates; done reports that it reached upWM.
func (s *Store) pruneAggs(upWM uint64) (done bool, err error) {
	// The chunk is read outside the writing transaction: entries up to
	// upWM are only ever removed by pruning (one goroutine), and the
	// writing transaction checks that m/agg-pruned did not move.
	var from, reached uint64
	removed := map[ledger.Key]*aggDelta{}
	err = s.db.View(func(txn *badger.Txn) error {
		var err error
		if from, err = aggPruned(txn); err != nil {
			return err
		}
		if u, err := readU64(txn, kUpWM); err != nil {
			return err
		} else if u > from {
			from = u
		}
		if from >= upWM {
			done = true
			return nil
		}
		reached = upWM
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pPendQ), PrefetchValues: true, PrefetchSize: 256})
		defer it.Close()
		// One seq's entries (an op's effects) are taken whole: the next
		// chunk starts after the seq this one reached.
		var group []ledger.Key
		var groupP []*pending
		var groupSeq uint64
		flush := func() {
			for i, k := range group {
				d := removed[k]
				if d == nil {
					d = &aggDelta{}
					removed[k] = d
				}
				if p := groupP[i]; p != nil {
					d.any = true
					if p.Set {
						d.sets++
					} else {
						d.sum += p.Qty
					}
				}
			}
			group, groupP = group[:0], groupP[:0]
		}
		for it.Seek(append([]byte(pPendQ), be(from+1)...)); it.Valid(); it.Next() {
			key := it.Item().Key()
			seq := binary.BigEndian.Uint64(key[len(pPendQ) : len(pPendQ)+8])
			if seq > upWM {
				break
			}
			if seq != groupSeq {
				flush() // groupSeq's effects are all read
				groupSeq = seq
				if len(removed) >= pruneKeys {
					reached = seq - 1
					break
				}
			}
			k, ok := parseViewKey(key[len(pPendQ)+8:], "")
			if !ok {
				continue
			}
			var p pending
			found := false
			// The index entry holds the effect (empty in stores of
			// older agents: then the entry is read).
			err := it.Item().Value(func(v []byte) error {
				if len(v) == 0 {
					return nil
				}
				found = true
				return protocol.Unmarshal(v, &p)
			})
			if err == nil && !found {
				found, err = getPending(txn, append(viewKey(pPend, k), append([]byte{0}, be(seq)...)...), &p)
			}
			if err != nil {
				return err
			}
			group = append(group, k)
			if found {
				groupP = append(groupP, &p)
			} else {
				groupP = append(groupP, nil)
			}
		}
		flush()
		return nil
	})
	if err != nil || done {
		return done, err
	}
	err = s.update(func(txn *badger.Txn) error {
		if now, err := aggPruned(txn); err != nil {
			return err
		} else if now > from {
			return fmt.Errorf("pending effects pruned meanwhile (%d, read from %d)", now, from)
		}
		// Each key's aggregate and dirty marker once (sorted: the same
		// writes in the same order every run).
		keys := make([]ledger.Key, 0, len(removed))
		for k := range removed {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, ledger.CompareKeys)
		for _, k := range keys {
			if d := removed[k]; d.any {
				if err := s.subAgg(txn, k, d.sum, d.sets); err != nil {
					return err
				}
			}
			if err := txn.Set(viewKey(pDirty, k), nil); err != nil {
				return err
			}
		}
		if reached == upWM {
			// Reflected own location counts: their locations' keys
			// need recomputing too.
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
				loc := string(k[len(pLocP) : len(k)-9])
				keys, err := s.viewKeysAt(txn, loc)
				if err != nil {
					return err
				}
				for _, vk := range keys {
					if err := txn.Set(viewKey(pDirty, vk), nil); err != nil {
						return err
					}
				}
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
		}
		return txn.Set([]byte(kAggPruned), be(reached))
	})
	return reached == upWM, err
}

// deletePruned deletes the dead pending entries (seq ≤ m/agg-pruned,
// above m/pruned) in bounded transactions.
func (s *Store) deletePruned() error {
	for {
		done := false
		err := s.update(func(txn *badger.Txn) error {
			done = false
			from, err := readU64(txn, kPruned)
			if err != nil {
				return err
			}
			to, err := aggPruned(txn)
			if err != nil {
				return err
			}
			if from >= to {
				done = true
				return nil
			}
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pPendQ)})
			var dead [][]byte
			reached := to
			for it.Seek(append([]byte(pPendQ), be(from+1)...)); it.Valid(); it.Next() {
				key := it.Item().KeyCopy(nil)
				seq := binary.BigEndian.Uint64(key[len(pPendQ) : len(pPendQ)+8])
				if seq > to {
					break
				}
				if len(dead) >= 2*pruneDeletes {
					reached = seq - 1 // resume at seq (its entries deleted so far are gone)
					break
				}
				dead = append(dead, key)
				if k, ok := parseViewKey(key[len(pPendQ)+8:], ""); ok {
					dead = append(dead, append(viewKey(pPend, k), append([]byte{0}, be(seq)...)...))
				}
			}
			it.Close()
			for _, k := range dead {
				if err := txn.Delete(k); err != nil {
					return err
				}
			}
			return txn.Set([]byte(kPruned), be(reached))
		})
		if err != nil || done {
			return err
		}
	}
}

// recomputeDirty recomputes up to pruneBatch dirty keys (and the keys in
// also) and clears their markers; it reports whether dirty keys remain.
func (s *Store) recomputeDirty(txn *badger.Txn, also map[ledger.Key]bool) (bool, error) {
	keys := map[ledger.Key]bool{}
	for k := range also {
		keys[k] = true
	}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pDirty)})
	var marks [][]byte
	more := false
	for it.Rewind(); it.Valid(); it.Next() {
		if len(marks) >= pruneBatch {
			more = true
			break
		}
		key := it.Item().KeyCopy(nil)
		marks = append(marks, key)
		if k, ok := parseViewKey(key, pDirty); ok {
			keys[k] = true
		}
	}
	it.Close()
	locs, err := pendingLocCounts(txn)
	if err != nil {
		return false, err
	}
	dead, err := aggPruned(txn)
	if err != nil {
		return false, err
	}
	for k := range keys {
		if err := s.recompute(txn, k, locs, dead); err != nil {
			return false, err
		}
	}
	for _, m := range marks {
		if err := txn.Delete(m); err != nil {
			return false, err
		}
	}
	return more, nil
}

func (s *Store) applyDownTxn(txn *badger.Txn, values []protocol.StockValue, tasks []protocol.Task, upWM, last uint64) (bool, error) {
	for _, t := range tasks {
		if err := s.indexTask(txn, t); err != nil {
			return false, err
		}
	}
	touched := map[ledger.Key]bool{}
	for _, v := range values {
		k := ledger.Key{Location: v.Location, SKU: v.SKU, Lot: v.Lot, Owner: v.Owner, Status: v.Status}
		if err := txn.Set(viewKey(pSrv, k), be(uint64(v.OnHand))); err != nil {
			return false, err
		}
		touched[k] = true
	}
	old, err := readU64(txn, kUpWM)
	if err != nil {
		return false, err
	}
	if upWM > old {
		if err := txn.Set([]byte(kUpWM), be(upWM)); err != nil {
			return false, err
		}
	}
	more, err := s.recomputeDirty(txn, touched)
	if err != nil {
		return false, err
	}
	down, err := readU64(txn, kDown)
	if err != nil {
		return false, err
	}
	if last > down {
		return more, txn.Set([]byte(kDown), be(last))
	}
	return more, nil
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
		if err := txn.Delete([]byte(kDownEpoch)); err != nil {
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

// pendingLocCounts lists the locations with a pending own location count,
// in one pass. (Every iterator of a read-write transaction sorts the
// transaction's writes first, so one per recomputed key made a downstream
// batch of n keys cost n sorts of everything the batch wrote.)
func pendingLocCounts(txn *badger.Txn) (map[string]bool, error) {
	locs := map[string]bool{}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pLocP)})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		key := it.Item().Key()
		if len(key) < len(pLocP)+9 {
			return nil, fmt.Errorf("malformed pending location count key %q", key)
		}
		locs[string(key[len(pLocP):len(key)-9])] = true
	}
	return locs, nil
}

// recompute sets the view of k to its server value plus this gateway's
// pending effects in seq order: its own entries, and pending location
// counts of its location that did not list it (those observe 0). locs are
// the locations with a pending location count (pendingLocCounts); effects
// up to dead are pruned though not yet deleted (aggPruned), and left out.
func (s *Store) recompute(txn *badger.Txn, k ledger.Key, locs map[string]bool, dead uint64) error {
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
	locCount := k.CoveredByLocCount() && locs[k.Location]
	if ag.Sets == 0 && !locCount {
		return txn.Set(viewKey(pView, k), be(uint64(v+ag.Sum)))
	}
	var ents []viewEnt
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
		if seq <= dead {
			continue
		}
		ents = append(ents, viewEnt{seq, p})
		bySeq[seq] = true
	}
	it.Close()
	if !locCount {
		return s.setView(txn, k, v, ents)
	}
	lit := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pLocP + k.Location + "\x00")})
	for lit.Rewind(); lit.Valid(); lit.Next() {
		key := lit.Item().Key()
		if seq := binary.BigEndian.Uint64(key[len(key)-8:]); seq > dead && !bySeq[seq] {
			ents = append(ents, viewEnt{seq, pending{Set: true}})
		}
	}
	lit.Close()
	return s.setView(txn, k, v, ents)
}

// viewEnt is one pending effect on a key, at its seq.
type viewEnt struct {
	seq uint64
	p   pending
}

// setView sets the view of k to the server value v plus ents in seq order.
func (s *Store) setView(txn *badger.Txn, k ledger.Key, v int64, ents []viewEnt) error {
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

// subAgg takes pruned effects — deltas summing to sum and sets counts —
// out of k's aggregate, reading and writing it once.
func (s *Store) subAgg(txn *badger.Txn, k ledger.Key, sum, sets int64) error {
	var a agg
	if _, err := getPending(txn, viewKey(pAgg, k), &a); err != nil {
		return err
	}
	a.Sum -= sum
	a.Sets -= sets
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
