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
	// absent are the stock keys the transaction found without state;
	// added, the deltas it recorded. A key's deltas are recorded with its
	// state, so those of an absent key are all in added, and SumAfter
	// reads them there instead of opening an iterator (which would sort
	// every write of the transaction).
	absent map[ledger.Key]bool
	added  map[ledger.Key][]addedDelta
	// states caches the key states the transaction read or wrote: the
	// apply reads a key's state several times per op (the quantity bound,
	// the merge, the detector, the downstream log), and a Badger point
	// read of a key the transaction has not written walks the memtables
	// and levels and decodes the CBOR each time. Only PutKey writes stock
	// keys, so the cache stays true.
	states map[ledger.Key]cachedState
	skews  map[string]time.Duration // SkewWindow's answers (settings are not written by the apply)
}

type cachedState struct {
	s  ledger.KeyState
	ok bool
}

type addedDelta struct {
	o   ledger.Order
	qty int64
}

var _ ledger.Store = (*txnLedger)(nil)

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
	if c, hit := l.states[k]; hit {
		return c.s, c.ok, nil
	}
	var s ledger.KeyState
	ok, err := l.getCBOR(stockKey(k), &s)
	if err != nil {
		return s, ok, err
	}
	if !ok {
		if l.absent == nil {
			l.absent = map[ledger.Key]bool{}
		}
		l.absent[k] = true
	}
	l.cache(k, s, ok)
	return s, ok, nil
}

func (l *txnLedger) cache(k ledger.Key, s ledger.KeyState, ok bool) {
	if l.states == nil {
		l.states = map[ledger.Key]cachedState{}
	}
	l.states[k] = cachedState{s, ok}
}

func (l *txnLedger) PutKey(k ledger.Key, s ledger.KeyState) error {
	if err := putCBOR(l.txn, stockKey(k), s); err != nil {
		return err
	}
	l.cache(k, s, true)
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
	key := append(deltaPrefix(k), orderBytes(o)...)
	// One op may touch a key twice (a move whose from and to are the same
	// location, which validation rejects but the ledger must still sum
	// right): accumulate. Ops merge exactly once (the watermark), so an
	// op's delta can only have been recorded earlier in this transaction:
	// the transaction's own list answers, without a point read (its last
	// entries: one op's effects are recorded one after the other).
	prev := int64(0)
	ds := l.added[k]
	for i := len(ds) - 1; i >= 0 && ds[i].o == o; i-- {
		prev += ds[i].qty
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(prev+qty))
	if l.added == nil {
		l.added = map[ledger.Key][]addedDelta{}
	}
	l.added[k] = append(l.added[k], addedDelta{o, qty})
	return l.txn.Set(key, b[:])
}

// SumAfter sums the deltas of k after o: those the transaction added when
// k had no state before it, else by a scan.
func (l *txnLedger) SumAfter(k ledger.Key, o ledger.Order) (int64, error) {
	if l.absent[k] {
		var sum int64
		for _, d := range l.added[k] {
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
