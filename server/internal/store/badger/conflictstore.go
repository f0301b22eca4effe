package badger

import (
	"encoding/binary"
	"fmt"
	"time"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Conflict-detection indexes, beside the ledger's keys:
//
//	c/{id}                               conflicts.Conflict (CBOR)
//	cl/{key}\0{order}                    counted qty of a key by one count op
//	cL/{wh}\0{loc}\0{order}              a location-scope count
//	ol/{wh}\0{order}\0{line}             ordered qty of a customer order line
//	pk/{wh}\0{order}\0{line}\0{order}    a pick against the line (CBOR)
//	pt/{wh}\0{order}\0{line}             picked total of the line
//	ws/{wh}                              warehouse settings (CBOR)
const (
	pfxConflict  = "c/"
	pfxCountLine = "cl/"
	pfxLocCount  = "cL/"
	pfxOrderLine = "ol/"
	pfxLinePick  = "pk/"
	pfxLineTotal = "pt/"
	pfxSettings  = "ws/"
)

var _ conflicts.Store = (*txnLedger)(nil)

func lineKey(pfx, wh, order string, line uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], line)
	return pfx + join(wh, order, string(b[:]))
}

// parseOrder reads an order encoded by orderBytes.
func parseOrder(b []byte) (ledger.Order, error) {
	if len(b) < 17 {
		return ledger.Order{}, fmt.Errorf("corrupt order key")
	}
	o := ledger.Order{HLC: protocol.HLC(binary.BigEndian.Uint64(b[:8]))}
	rest := b[8:]
	i := len(rest) - 9
	if i < 0 || rest[i] != 0 {
		return ledger.Order{}, fmt.Errorf("corrupt order key")
	}
	o.GW = string(rest[:i])
	o.Seq = binary.BigEndian.Uint64(rest[i+1:])
	return o, nil
}

// scanRange iterates the keys prefix+orderBytes whose order lies in r.
func (l *txnLedger) scanRange(prefix string, r conflicts.Range, fn func(o ledger.Order, val []byte) error) error {
	p := []byte(prefix)
	it := l.txn.NewIterator(bdb.IteratorOptions{Prefix: p, Reverse: r.Desc, PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	from := append(append([]byte{}, p...), orderBytes(r.From)...)
	var to []byte
	if !r.To.IsZero() {
		to = append(append([]byte{}, p...), orderBytes(r.To)...)
	}
	if r.Desc {
		if to != nil {
			it.Seek(to)
		} else {
			it.Seek(append(append([]byte{}, p...), 0xff))
		}
	} else {
		it.Seek(from)
	}
	n := 0
	for ; it.Valid(); it.Next() {
		o, err := parseOrder(it.Item().Key()[len(p):])
		if err != nil {
			return err
		}
		if !r.Contains(o) {
			if r.Desc && !r.To.IsZero() && o.Compare(r.To) >= 0 {
				continue // the seek lands on To itself, which is excluded
			}
			break
		}
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			return err
		}
		if err := fn(o, v); err != nil {
			return err
		}
		if n++; r.Limit > 0 && n >= r.Limit {
			break
		}
	}
	return nil
}

func (l *txnLedger) GetConflict(id string) (conflicts.Conflict, bool, error) {
	var c conflicts.Conflict
	ok, err := l.getCBOR([]byte(pfxConflict+id), &c)
	return c, ok, err
}

func (l *txnLedger) PutConflict(c conflicts.Conflict) error {
	return putCBOR(l.txn, []byte(pfxConflict+c.ID), c)
}

func (l *txnLedger) ListConflicts(q conflicts.Query) ([]conflicts.Conflict, error) {
	return listConflicts(l.txn, q)
}

func listConflicts(txn *bdb.Txn, q conflicts.Query) ([]conflicts.Conflict, error) {
	it := txn.NewIterator(bdb.IteratorOptions{Prefix: []byte(pfxConflict), PrefetchValues: true})
	defer it.Close()
	var out []conflicts.Conflict
	for it.Rewind(); it.Valid(); it.Next() {
		var c conflicts.Conflict
		if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &c) }); err != nil {
			return nil, err
		}
		if q.Match(c) {
			out = append(out, c)
			if q.Limit > 0 && len(out) >= q.Limit {
				break
			}
		}
	}
	return out, nil
}

func putI64(txn *bdb.Txn, key []byte, v int64) error { return txn.Set(key, []byte(u64(uint64(v)))) }

func (l *txnLedger) PutCountLine(k ledger.Key, o ledger.Order, qty int64) error {
	return putI64(l.txn, []byte(pfxCountLine+keyPath(k)+"\x00"+orderBytes(o)), qty)
}

func (l *txnLedger) CountLines(k ledger.Key, r conflicts.Range) ([]conflicts.CountLine, error) {
	var out []conflicts.CountLine
	err := l.scanRange(pfxCountLine+keyPath(k)+"\x00", r, func(o ledger.Order, v []byte) error {
		out = append(out, conflicts.CountLine{Order: o, Qty: int64(binary.BigEndian.Uint64(v))})
		return nil
	})
	return out, err
}

func (l *txnLedger) AddLocCount(wh, loc string, o ledger.Order) error {
	return l.txn.Set([]byte(pfxLocCount+join(wh, loc)+"\x00"+orderBytes(o)), nil)
}

func (l *txnLedger) LocCounts(wh, loc string, r conflicts.Range) ([]ledger.Order, error) {
	var out []ledger.Order
	err := l.scanRange(pfxLocCount+join(wh, loc)+"\x00", r, func(o ledger.Order, _ []byte) error {
		out = append(out, o)
		return nil
	})
	return out, err
}

func (l *txnLedger) Deltas(k ledger.Key, r conflicts.Range) ([]conflicts.Delta, error) {
	var out []conflicts.Delta
	err := l.scanRange(string(deltaPrefix(k)), r, func(o ledger.Order, v []byte) error {
		out = append(out, conflicts.Delta{Order: o, Qty: int64(binary.BigEndian.Uint64(v))})
		return nil
	})
	return out, err
}

func (l *txnLedger) AddLinePick(wh, order string, line uint32, p conflicts.LinePick) error {
	if err := putCBOR(l.txn, []byte(lineKey(pfxLinePick, wh, order, line)+"\x00"+orderBytes(p.Ref.Order())), p); err != nil {
		return err
	}
	tot, err := l.LinePicked(wh, order, line)
	if err != nil {
		return err
	}
	return putI64(l.txn, []byte(lineKey(pfxLineTotal, wh, order, line)), tot+p.Qty)
}

func (l *txnLedger) LinePicked(wh, order string, line uint32) (int64, error) {
	v, ok, err := getI64(l.txn, []byte(lineKey(pfxLineTotal, wh, order, line)))
	if !ok {
		return 0, err
	}
	return v, err
}

func (l *txnLedger) LinePicks(wh, order string, line uint32) ([]conflicts.LinePick, error) {
	var out []conflicts.LinePick
	err := l.scanRange(lineKey(pfxLinePick, wh, order, line)+"\x00", conflicts.Range{}, func(_ ledger.Order, v []byte) error {
		var p conflicts.LinePick
		if err := protocol.Unmarshal(v, &p); err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

func (l *txnLedger) OrderLineQty(wh, order string, line uint32) (int64, bool, error) {
	return getI64(l.txn, []byte(lineKey(pfxOrderLine, wh, order, line)))
}

func (l *txnLedger) SkewWindow(wh string) (time.Duration, error) {
	if w, ok := l.skews[wh]; ok { // read once per transaction (the detector asks per op)
		return w, nil
	}
	var s store.Settings
	if _, err := l.getCBOR([]byte(pfxSettings+wh), &s); err != nil {
		return 0, err
	}
	if l.skews == nil {
		l.skews = map[string]time.Duration{}
	}
	l.skews[wh] = s.SkewWindow()
	return s.SkewWindow(), nil
}

func getI64(txn *bdb.Txn, key []byte) (int64, bool, error) {
	it, err := txn.Get(key)
	if err == bdb.ErrKeyNotFound {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	var v int64
	err = it.Value(func(b []byte) error { v = int64(binary.BigEndian.Uint64(b)); return nil })
	return v, true, err
}
