package badger

import (
	"encoding/binary"
	"errors"
	"time"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
)

// txnLedger adapts a Badger transaction to ledger.Store.
type txnLedger struct {
	txn *bdb.Txn
	// keys is what the transaction knows of each stock key it touched
	// (see keyEntry); last is the entry used most recently, which answers
	// the several calls one op makes on one key without hashing it.
	keys map[ledger.Key]*keyEntry
	last *keyEntry
	// deferKeys makes PutKey keep a key's new state in keys and write it
	// once, at flushKeys (the apply's transactions: backend.Update flushes
	// before commit), instead of encoding and setting it on every op.
	// Readers of stock keys other than GetKey flush first: KeysAt here,
	// and the record reads of Records (recordTx.keys).
	deferKeys bool
	dirty     []*keyEntry              // entries with a state not yet written, in the order they became so
	skews     map[string]time.Duration // SkewWindow's answers (settings are not written by the apply)
	slab      []byte                   // carve keys and values the transaction hands Badger from it
}

// keyEntry is one stock key as the transaction knows it.
type keyEntry struct {
	k ledger.Key
	// s and ok cache the key's state once read (read): the apply reads a
	// key's state several times per op (the quantity bound, the merge, the
	// detector, the downstream log), and a Badger point read of a key the
	// transaction has not written walks the memtables and levels and
	// decodes the CBOR each time. Only PutKey writes stock keys, so the
	// cache stays true.
	s    ledger.KeyState
	ok   bool
	read bool
	// absent: the key had no state when the transaction first read it.
	// A key's deltas are recorded with its state, so those of an absent
	// key are all in added, and SumAfter reads them there instead of
	// opening an iterator (which would sort every write of the
	// transaction).
	absent bool
	dirty  bool // s is newer than what Badger holds (deferKeys)
	added  []addedDelta
}

type addedDelta struct {
	o   ledger.Order
	qty int64
}

var _ ledger.Store = (*txnLedger)(nil)

// entry returns k's entry, creating it.
func (l *txnLedger) entry(k ledger.Key) *keyEntry {
	if e := l.last; e != nil && e.k == k {
		return e
	}
	e, hit := l.keys[k]
	if !hit {
		if l.keys == nil {
			l.keys = map[ledger.Key]*keyEntry{}
		}
		e = &keyEntry{k: k}
		l.keys[k] = e
	}
	l.last = e
	return e
}

// alloc returns n bytes for a key or value the transaction hands Badger,
// which keeps them until the transaction ends: carved from a slab, so
// that an op's writes cost no allocation each.
func (l *txnLedger) alloc(n int) []byte {
	const slabSize = 32 << 10
	if n > slabSize/4 {
		return make([]byte, n)
	}
	if len(l.slab) < n {
		l.slab = make([]byte, slabSize)
	}
	b := l.slab[:n:n]
	l.slab = l.slab[n:]
	return b
}

func (l *txnLedger) getCBOR(key []byte, v any) (bool, error) {
	it, err := l.txn.Get(key)
	if errors.Is(err, bdb.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, it.Value(func(b []byte) error { return protocol.Unmarshal(b, v) })
}

func (l *txnLedger) GetKey(k ledger.Key) (ledger.KeyState, bool, error) {
	e := l.entry(k)
	if e.read {
		return e.s, e.ok, nil
	}
	var s ledger.KeyState
	ok, err := l.getCBOR(stockKey(k), &s)
	if err != nil {
		return s, ok, err
	}
	e.s, e.ok, e.read, e.absent = s, ok, true, !ok
	return s, ok, nil
}

func (l *txnLedger) PutKey(k ledger.Key, s ledger.KeyState) error {
	e := l.entry(k)
	if !l.deferKeys {
		if err := putCBOR(l.txn, stockKey(k), s); err != nil {
			return err
		}
	} else if !e.dirty {
		e.dirty = true
		l.dirty = append(l.dirty, e)
	}
	e.s, e.ok, e.read = s, true, true
	return nil
}

// flushKeys writes the states PutKey deferred.
func (l *txnLedger) flushKeys() error {
	for _, e := range l.dirty {
		if err := putCBOR(l.txn, stockKey(e.k), e.s); err != nil {
			return err
		}
		e.dirty = false
	}
	clear(l.dirty)
	l.dirty = l.dirty[:0]
	return nil
}

func (l *txnLedger) GetLocCount(wh, loc string) (ledger.Order, bool, error) {
	var o ledger.Order
	ok, err := l.getCBOR(locKey(wh, loc), &o)
	return o, ok, err
}

func (l *txnLedger) PutLocCount(wh, loc string, o ledger.Order) error {
	return putCBOR(l.txn, locKey(wh, loc), o)
}

func (l *txnLedger) KeysAt(wh, loc string) ([]ledger.Key, error) {
	if err := l.flushKeys(); err != nil { // the keys that got state in this transaction too
		return nil, err
	}
	it := l.txn.NewIterator(bdb.IteratorOptions{Prefix: []byte(pfxKey + join(wh, loc) + "\x00")})
	defer it.Close()
	var out []ledger.Key
	for it.Rewind(); it.Valid(); it.Next() {
		if k, ok := parseStockKey(it.Item().KeyCopy(nil)); ok {
			out = append(out, k)
		}
	}
	return out, nil
}

func (l *txnLedger) AddDelta(k ledger.Key, o ledger.Order, qty int64) error {
	e := l.entry(k)
	// One op may touch a key twice (a move whose from and to are the same
	// location, which validation rejects but the ledger must still sum
	// right): accumulate. Ops merge exactly once (the watermark), so an
	// op's delta can only have been recorded earlier in this transaction:
	// the transaction's own list answers, without a point read (its last
	// entries: one op's effects are recorded one after the other).
	prev := int64(0)
	for i := len(e.added) - 1; i >= 0 && e.added[i].o == o; i-- {
		prev += e.added[i].qty
	}
	e.added = append(e.added, addedDelta{o, qty})
	n := deltaKeyLen(k, o)
	b := l.alloc(n + 8)
	key := appendDeltaKey(b[:0], k, o)
	val := b[n:]
	binary.BigEndian.PutUint64(val, uint64(prev+qty))
	return l.txn.Set(key, val)
}

// SumAfter sums the deltas of k after o: those the transaction added when
// k had no state before it, else by a scan.
func (l *txnLedger) SumAfter(k ledger.Key, o ledger.Order) (int64, error) {
	if e := l.entry(k); e.absent {
		var sum int64
		for _, d := range e.added {
			if d.o.Compare(o) > 0 {
				sum += d.qty
			}
		}
		return sum, nil
	}
	return l.sumAfterScan(k, o)
}

// sumAfterScan scans the deltas of k from o onwards; keys sort in merge
// order.
func (l *txnLedger) sumAfterScan(k ledger.Key, o ledger.Order) (int64, error) {
	prefix := deltaPrefix(k)
	start := append(append([]byte{}, prefix...), orderBytes(o)...)
	it := l.txn.NewIterator(bdb.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 256})
	defer it.Close()
	var sum int64
	for it.Seek(start); it.Valid(); it.Next() {
		key := it.Item().Key()
		if !o.IsZero() && string(key) == string(start) {
			continue // the count's own position is not after it
		}
		err := it.Item().Value(func(b []byte) error {
			sum += int64(binary.BigEndian.Uint64(b))
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	return sum, nil
}
