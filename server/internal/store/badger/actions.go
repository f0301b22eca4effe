package badger

import (
	"context"
	"encoding/binary"
	"fmt"
	"sort"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// The reads behind the conflict, history, order and task endpoints; the
// writes are store/apply's.

const (
	pfxTask  = "t/"
	pfxOrder = "od/"
)

// Conflicts lists conflicts matching q.
func (s *Store) Conflicts(_ context.Context, q conflicts.Query) ([]conflicts.Conflict, error) {
	var out []conflicts.Conflict
	err := s.db.View(func(txn *bdb.Txn) error {
		var err error
		out, err = listConflicts(txn, q)
		return err
	})
	return out, err
}

// Tasks lists the tasks of a warehouse.
func (s *Store) Tasks(_ context.Context, wh string) ([]protocol.Task, error) {
	var out []protocol.Task
	err := s.db.View(func(txn *bdb.Txn) error {
		var err error
		out, err = recordTx{txn: txn}.Tasks(wh)
		return err
	})
	return out, err
}

// History explains a key's on-hand op by op, in merge order.
func (s *Store) History(_ context.Context, k ledger.Key) ([]store.HistoryEntry, error) {
	type ev struct {
		o     ledger.Order
		qty   int64
		count bool
	}
	var out []store.HistoryEntry
	err := s.db.View(func(txn *bdb.Txn) error {
		var evs []ev
		ls := &txnLedger{txn: txn}
		ds, err := ls.Deltas(k, conflicts.Range{})
		if err != nil {
			return err
		}
		for _, d := range ds {
			evs = append(evs, ev{d.Order, d.Qty, false})
		}
		cls, err := ls.CountLines(k, conflicts.Range{})
		if err != nil {
			return err
		}
		counted := map[ledger.Order]bool{}
		for _, c := range cls {
			evs = append(evs, ev{c.Order, c.Qty, true})
			counted[c.Order] = true
		}
		lcs, err := ls.LocCounts(k.WH, k.Location, conflicts.Range{})
		if err != nil {
			return err
		}
		for _, o := range lcs {
			if !counted[o] && k.CoveredByLocCount() { // a location count that did not list the key observed 0
				evs = append(evs, ev{o, 0, true})
			}
		}
		sort.Slice(evs, func(i, j int) bool { return evs[i].o.Compare(evs[j].o) < 0 })
		out = make([]store.HistoryEntry, 0, len(evs))
		var onHand int64
		for _, e := range evs {
			if e.count {
				onHand = e.qty
			} else {
				onHand += e.qty
			}
			h := store.HistoryEntry{Gateway: e.o.GW, Seq: e.o.Seq, HLC: e.o.HLC, At: e.o.HLC.Time().Format("2006-01-02T15:04:05.000Z07:00"), Qty: e.qty, Count: e.count, OnHand: onHand}
			var op protocol.Op
			if ok, err := ls.getCBOR(opKey(pfxOp, k.WH, e.o.GW, e.o.Seq), &op); err != nil {
				return err
			} else if ok {
				h.Describe(op)
			}
			out = append(out, h)
		}
		return nil
	})
	return out, err
}

// GetOrder returns an order with each line's picked total.
func (s *Store) GetOrder(_ context.Context, wh, id string) (store.Order, map[uint32]int64, error) {
	var o store.Order
	picked := map[uint32]int64{}
	err := s.db.View(func(txn *bdb.Txn) error {
		ls := &txnLedger{txn: txn}
		ok, err := ls.getCBOR([]byte(pfxOrder+join(wh, id)), &o)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("order %s/%s: %w", wh, id, store.ErrNotFound)
		}
		for _, l := range o.Lines {
			p, err := ls.LinePicked(wh, id, l.Line)
			if err != nil {
				return err
			}
			picked[l.Line] = p
		}
		return nil
	})
	return o, picked, err
}

func orderPicksIn(txn *bdb.Txn, wh, id string) ([]store.OrderPick, error) {
	var out []store.OrderPick
	prefix := []byte(pfxLinePick + join(wh, id) + "\x00")
	ls := &txnLedger{txn: txn}
	it := txn.NewIterator(bdb.IteratorOptions{Prefix: prefix, PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		rest := it.Item().Key()[len(prefix):]
		if len(rest) < 5 || rest[4] != 0 {
			continue
		}
		line := binary.BigEndian.Uint32(rest[:4])
		var p conflicts.LinePick
		if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &p) }); err != nil {
			return nil, err
		}
		var op protocol.Op
		if _, err := ls.getCBOR(opKey(pfxOp, wh, p.Ref.GW, p.Ref.Seq), &op); err != nil {
			return nil, err
		}
		out = append(out, store.OrderPick{Line: line, SKU: op.SKU, Lot: op.Lot, Qty: p.Qty, Gateway: p.Ref.GW, Seq: p.Ref.Seq})
	}
	return out, nil
}
