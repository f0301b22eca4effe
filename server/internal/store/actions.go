package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
)

// ErrNotFound reports an unknown record.
var ErrNotFound = errors.New("not found")

// update runs f in a read-write transaction, mapping Badger's conflict
// error to ErrConflict.
func (s *Badger) update(f func(txn *badger.Txn) error) error {
	err := s.db.Update(f)
	if errors.Is(err, badger.ErrConflict) {
		return ErrConflict
	}
	return err
}

// issueOp applies a server-origin op in txn: it takes the warehouse's next
// server seq, merges the op, runs conflict detection, logs the stock and the
// op downstream, and returns the stamped op.
func issueOp(txn *badger.Txn, wh string, op protocol.Op) (protocol.Op, Result, error) {
	var res Result
	seq, err := getU64(txn, wmKey(wh, protocol.ServerOrigin))
	if err != nil {
		return op, res, err
	}
	seq++
	op.Seq, op.GW = seq, protocol.ServerOrigin
	if err := op.Validate(); err != nil {
		return op, res, err
	}
	ls := &txnLedger{txn: txn}
	if err := putCBOR(txn, opKey(pfxOp, wh, protocol.ServerOrigin, seq), op); err != nil {
		return op, res, err
	}
	ch, err := ledger.Apply(ls, wh, protocol.ServerOrigin, &op)
	if err != nil {
		return op, res, err
	}
	res.Changes = ch
	if res.Conflicts, err = (&conflicts.Detector{}).Observe(ls, ls, wh, protocol.ServerOrigin, &op, ch); err != nil {
		return op, res, err
	}
	if err := appendStock(txn, ls, ch); err != nil {
		return op, res, err
	}
	if err := appendDown(txn, wh, "", protocol.DownOp, fmt.Sprintf("op/%d", seq), op); err != nil {
		return op, res, err
	}
	res.Applied, res.WM = 1, seq
	return op, res, txn.Set(wmKey(wh, protocol.ServerOrigin), []byte(u64(seq)))
}

// IssueOp applies an op issued by the server itself (origin "@server").
func (s *Badger) IssueOp(_ context.Context, wh string, op protocol.Op) (protocol.Op, Result, error) {
	var out protocol.Op
	var res Result
	err := s.update(func(txn *badger.Txn) error {
		var err error
		out, res, err = issueOp(txn, wh, op)
		return err
	})
	return out, res, err
}

// Conflicts lists conflicts matching q.
func (s *Badger) Conflicts(_ context.Context, q conflicts.Query) ([]conflicts.Conflict, error) {
	var out []conflicts.Conflict
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		out, err = listConflicts(txn, q)
		return err
	})
	return out, err
}

// Resolution is a person's decision on a conflict.
type Resolution struct {
	Action string // accept, adjust, recount
	By     string
	// Qty is the signed adjustment for "adjust" (default: bring a
	// negative key back to 0).
	Qty  int64
	HLC  protocol.HLC
	Note string
}

// ResolveResult is what resolving did.
type ResolveResult struct {
	Conflict conflicts.Conflict `json:"conflict"`
	Op       *protocol.Op       `json:"op,omitempty"`   // the adjust op issued
	Task     *protocol.Task     `json:"task,omitempty"` // the count task sent
	Result   Result             `json:"-"`
}

// ResolveConflict marks a conflict resolved and carries out the action in
// the same transaction: "adjust" issues a server-origin adjust op on the
// conflict's key; "recount" sends a count task for its location to the
// warehouse's gateways; "accept" keeps the records as they are.
func (s *Badger) ResolveConflict(_ context.Context, id string, r Resolution) (ResolveResult, error) {
	var out ResolveResult
	err := s.update(func(txn *badger.Txn) error {
		ls := &txnLedger{txn: txn}
		c, ok, err := ls.GetConflict(id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("conflict %q: %w", id, conflicts.ErrNotFound)
		}
		switch r.Action {
		case conflicts.ResolutionAdjust:
			if c.Location == "" || c.SKU == "" {
				return fmt.Errorf("conflict %q names no stock key to adjust; resolve with accept or recount", id)
			}
			qty := r.Qty
			if qty == 0 {
				ks, _, err := ls.GetKey(ledger.Key{WH: c.Warehouse, Location: c.Location, SKU: c.SKU, Lot: c.Lot})
				if err != nil {
					return err
				}
				qty = -ks.OnHand()
			}
			if qty == 0 {
				return fmt.Errorf("conflict %q: nothing to adjust (on-hand is 0); give qty", id)
			}
			op, res, err := issueOp(txn, c.Warehouse, protocol.Op{HLC: r.HLC, Kind: protocol.OpAdjust, Location: c.Location, SKU: c.SKU, Lot: c.Lot, Qty: qty,
				Reason: "CONFLICT-RESOLUTION", Operator: r.By, Refs: &protocol.Refs{Conflict: id}})
			if err != nil {
				return err
			}
			out.Op, out.Result = &op, res
		case conflicts.ResolutionRecount:
			if c.Location == "" {
				return fmt.Errorf("conflict %q names no location to recount", id)
			}
			t := protocol.Task{ID: "recount-" + shortID(id), Kind: "count", Location: c.Location, Conflict: id, Reason: "recount: " + string(c.Kind), Status: "open"}
			if err := putCBOR(txn, []byte(pfxTask+join(c.Warehouse, t.ID)), t); err != nil {
				return err
			}
			if err := appendDown(txn, c.Warehouse, "", protocol.DownTask, "task/"+t.ID, t); err != nil {
				return err
			}
			out.Task = &t
		}
		res, err := conflicts.Resolve(ls, id, r.Action, r.By)
		if err != nil {
			return err
		}
		out.Conflict = res
		return nil
	})
	return out, err
}

const pfxTask = "t/"

func shortID(id string) string {
	r := strings.NewReplacer(":", "-", "/", "-", "%", "")
	s := r.Replace(id)
	if len(s) > 48 {
		s = s[len(s)-48:]
	}
	return s
}

// Tasks lists the tasks of a warehouse.
func (s *Badger) Tasks(_ context.Context, wh string) ([]protocol.Task, error) {
	var out []protocol.Task
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfxTask + wh + "\x00"), PrefetchValues: true})
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

// HistoryEntry is one op behind a stock number, with the running on-hand
// after it in merge order.
type HistoryEntry struct {
	Gateway  string         `json:"gateway"`
	Seq      uint64         `json:"seq"`
	HLC      protocol.HLC   `json:"hlc"`
	At       string         `json:"at"`
	Kind     string         `json:"kind"`
	Qty      int64          `json:"qty"` // signed effect on the key, or the counted qty
	Count    bool           `json:"count"`
	OnHand   int64          `json:"on_hand"`
	Device   string         `json:"device,omitempty"`
	Operator string         `json:"operator,omitempty"`
	Raw      []string       `json:"raw,omitempty"`
	Reason   string         `json:"reason,omitempty"`
	Refs     *protocol.Refs `json:"refs,omitempty"`
}

// History explains a key's on-hand op by op, in merge order.
func (s *Badger) History(_ context.Context, k ledger.Key) ([]HistoryEntry, error) {
	type ev struct {
		o     ledger.Order
		qty   int64
		count bool
	}
	var evs []ev
	err := s.db.View(func(txn *badger.Txn) error {
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
			if !counted[o] { // a location count that did not list the key observed 0
				evs = append(evs, ev{o, 0, true})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].o.Compare(evs[j].o) < 0 })
	out := make([]HistoryEntry, 0, len(evs))
	var onHand int64
	err = s.db.View(func(txn *badger.Txn) error {
		for _, e := range evs {
			if e.count {
				onHand = e.qty
			} else {
				onHand += e.qty
			}
			h := HistoryEntry{Gateway: e.o.GW, Seq: e.o.Seq, HLC: e.o.HLC, At: e.o.HLC.Time().Format("2006-01-02T15:04:05.000Z07:00"), Qty: e.qty, Count: e.count, OnHand: onHand}
			var op protocol.Op
			if ok, err := (&txnLedger{txn}).getCBOR(opKey(pfxOp, k.WH, e.o.GW, e.o.Seq), &op); err != nil {
				return err
			} else if ok {
				h.Kind, h.Device, h.Operator, h.Raw, h.Reason, h.Refs = op.Kind.String(), op.Device, op.Operator, op.Raw, op.Reason, op.Refs
			}
			out = append(out, h)
		}
		return nil
	})
	return out, err
}

// OrderLine is one line of a customer order.
type OrderLine struct {
	Line uint32 `json:"line" cbor:"1,keyasint"`
	SKU  string `json:"sku" cbor:"2,keyasint"`
	Lot  string `json:"lot,omitempty" cbor:"3,keyasint,omitempty"`
	Qty  int64  `json:"qty" cbor:"4,keyasint"`
}

// Order is a customer order (the minimal model picks reference).
type Order struct {
	Warehouse string      `json:"warehouse" cbor:"1,keyasint"`
	ID        string      `json:"id" cbor:"2,keyasint"`
	Channel   string      `json:"channel,omitempty" cbor:"3,keyasint,omitempty"`
	Lines     []OrderLine `json:"lines" cbor:"4,keyasint"`
	Status    string      `json:"status" cbor:"5,keyasint"`
}

const pfxOrder = "od/"

// PutOrder creates or replaces an order and its line quantities, and
// re-checks over-picks of its lines (picks may have arrived before it).
func (s *Badger) PutOrder(ctx context.Context, o Order) ([]conflicts.Conflict, error) {
	return s.PutOrderWith(ctx, o, nil)
}

// PutOrderWith is PutOrder with within, when not nil, run first in the same
// transaction: the order package keeps its own records (idempotency keys,
// reservations) atomically with the order lines the over-pick detector
// reads. An error from within aborts the whole write and is returned as is.
func (s *Badger) PutOrderWith(_ context.Context, o Order, within func(Tx) error) ([]conflicts.Conflict, error) {
	var changed []conflicts.Conflict
	err := s.update(func(txn *badger.Txn) error {
		if within != nil {
			if err := within(badgerTx{txn}); err != nil {
				return err
			}
		}
		var err error
		changed, err = putOrderIn(txn, o)
		return err
	})
	return changed, err
}

func putOrderIn(txn *badger.Txn, o Order) ([]conflicts.Conflict, error) {
	var changed []conflicts.Conflict
	if err := putCBOR(txn, []byte(pfxOrder+join(o.Warehouse, o.ID)), o); err != nil {
		return nil, err
	}
	ls := &txnLedger{txn: txn}
	for _, l := range o.Lines {
		if err := putI64(txn, []byte(lineKey(pfxOrderLine, o.Warehouse, o.ID, l.Line)), l.Qty); err != nil {
			return nil, err
		}
		cs, err := conflicts.RecheckOrderLine(ls, o.Warehouse, o.ID, l.Line)
		if err != nil {
			return nil, err
		}
		changed = append(changed, cs...)
	}
	return changed, nil
}

// GetOrder returns an order with each line's picked total.
func (s *Badger) GetOrder(_ context.Context, wh, id string) (Order, map[uint32]int64, error) {
	var o Order
	picked := map[uint32]int64{}
	err := s.db.View(func(txn *badger.Txn) error {
		ls := &txnLedger{txn: txn}
		ok, err := ls.getCBOR([]byte(pfxOrder+join(wh, id)), &o)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("order %s/%s: %w", wh, id, ErrNotFound)
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

// OrderPick is one pick op recorded against an order: the line it named
// (0 when the pick named the order only) and the item it took.
type OrderPick struct {
	Line    uint32
	SKU     string
	Lot     string
	Qty     int64
	Gateway string
	Seq     uint64
}

// OrderPicks returns every pick recorded against order id of wh, with the
// sku and lot of each pick's op.
func (s *Badger) OrderPicks(_ context.Context, wh, id string) ([]OrderPick, error) {
	var out []OrderPick
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		out, err = orderPicksIn(txn, wh, id)
		return err
	})
	return out, err
}

// OrderRef names an order of a warehouse.
type OrderRef struct{ Warehouse, ID string }

// ReadOrdersAndStock reads, from one consistent snapshot, the picks of the
// given orders and the stock matching each query (rows[i] for queries[i]):
// the order model computes reservations and on-hand from the same state.
func (s *Badger) ReadOrdersAndStock(_ context.Context, orders []OrderRef, queries []StockQuery) (map[OrderRef][]OrderPick, [][]StockRow, error) {
	picks := make(map[OrderRef][]OrderPick, len(orders))
	rows := make([][]StockRow, len(queries))
	err := s.db.View(func(txn *badger.Txn) error {
		for _, o := range orders {
			ps, err := orderPicksIn(txn, o.Warehouse, o.ID)
			if err != nil {
				return err
			}
			picks[o] = ps
		}
		for i, q := range queries {
			rs, err := stockIn(txn, q)
			if err != nil {
				return err
			}
			rows[i] = rs
		}
		return nil
	})
	return picks, rows, err
}

func orderPicksIn(txn *badger.Txn, wh, id string) ([]OrderPick, error) {
	var out []OrderPick
	prefix := []byte(pfxLinePick + join(wh, id) + "\x00")
	ls := &txnLedger{txn: txn}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true})
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
		out = append(out, OrderPick{Line: line, SKU: op.SKU, Lot: op.Lot, Qty: p.Qty, Gateway: p.Ref.GW, Seq: p.Ref.Seq})
	}
	return out, nil
}

// RaiseConflict records a conflict built outside the apply path (an
// oversell from the order model) with the lifecycle rules of
// conflicts.Raise, and reports whether anything was written.
func (s *Badger) RaiseConflict(_ context.Context, c conflicts.Conflict) (conflicts.Conflict, bool, error) {
	var out conflicts.Conflict
	var written bool
	err := s.update(func(txn *badger.Txn) error {
		var err error
		out, written, err = conflicts.Raise(&txnLedger{txn: txn}, c)
		return err
	})
	return out, written, err
}

// QuarantineAction re-applies ("reapply") or rejects ("reject") a
// quarantined op. Re-applying validates the op again; an op that still
// fails stays quarantined and the error says why.
func (s *Badger) QuarantineAction(_ context.Context, wh, gw string, seq uint64, action, by string) (Result, error) {
	var res Result
	err := s.update(func(txn *badger.Txn) error {
		res = Result{}
		ls := &txnLedger{txn: txn}
		var q Quarantined
		ok, err := ls.getCBOR(opKey(pfxQuar, wh, gw, seq), &q)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("quarantined op %s/%s/%d: %w", wh, gw, seq, ErrNotFound)
		}
		if q.Status != "" {
			return fmt.Errorf("quarantined op %s/%s/%d was already %s", wh, gw, seq, q.Status)
		}
		switch action {
		case "reject":
			q.Status = "rejected"
		case "reapply":
			op := q.Op
			if err := s.validate(txn, wh, &op); err != nil {
				return fmt.Errorf("still invalid: %w — fix the master data or reject it", err)
			}
			if err := putCBOR(txn, opKey(pfxOp, wh, gw, seq), op); err != nil {
				return err
			}
			ch, err := ledger.Apply(ls, wh, gw, &op)
			if err != nil {
				return err
			}
			cs, err := (&conflicts.Detector{}).Observe(ls, ls, wh, gw, &op, ch)
			if err != nil {
				return err
			}
			if err := appendStock(txn, ls, ch); err != nil {
				return err
			}
			res.Changes, res.Conflicts, res.Applied = ch, cs, 1
			q.Status = "reapplied"
		default:
			return fmt.Errorf("action %q: want reapply or reject", action)
		}
		q.By = by
		if _, err := conflicts.Resolve(ls, conflicts.Quarantined(wh, gw, seq, "").ID, conflicts.ResolutionAccept, by); err != nil && !errors.Is(err, conflicts.ErrNotFound) && !errors.Is(err, conflicts.ErrResolved) {
			return err
		}
		return putCBOR(txn, opKey(pfxQuar, wh, gw, seq), q)
	})
	return res, err
}

// Put writes raw settings for a warehouse.
func (s *Badger) PutSettings(_ context.Context, wh string, st Settings) error {
	return s.update(func(txn *badger.Txn) error { return putCBOR(txn, []byte(pfxSettings+wh), st) })
}
