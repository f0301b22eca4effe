package conflicts

import (
	"fmt"
	"slices"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
)

// DefaultSkewWindow is the count-race window when neither the Detector nor
// the warehouse sets one.
const DefaultSkewWindow = 5 * time.Second

// maxNegOps bounds the ops a negative-stock conflict lists: the op that
// pushed the key below zero and the decrements after it, in merge order.
const maxNegOps = 64

// receiptFlags are the receive flags that raise a receipt discrepancy.
const receiptFlags = protocol.FlagOverReceipt | protocol.FlagUnexpected | protocol.FlagLotMismatch | protocol.FlagExpired | protocol.FlagShortShelfLife

// Detector finds conflicts as ops are merged. The zero value is ready to
// use; it keeps no state of its own, so one Detector serves every
// transaction.
type Detector struct {
	// SkewWindow is how close (in HLC wall time) a count and a delta from
	// another gateway must be to race; 0 means DefaultSkewWindow. A
	// warehouse's Store.SkewWindow overrides it.
	SkewWindow time.Duration
}

// scanAlways turns the count-race fast path off (tests compare both).
var scanAlways bool

func (d *Detector) skew(st Store, wh string) (time.Duration, error) {
	w, err := st.SkewWindow(wh)
	if err != nil {
		return 0, fmt.Errorf("skew window of %s: %w", wh, err)
	}
	if w <= 0 {
		w = d.SkewWindow
	}
	if w <= 0 {
		w = DefaultSkewWindow
	}
	return w, nil
}

// collector raises conflicts and remembers the ones that changed, once
// each, in the order they first changed.
type collector struct {
	st  Store
	out []Conflict
	idx map[string]int
}

func (c *collector) raise(conf Conflict) error {
	got, changed, err := Raise(c.st, conf)
	if err != nil || !changed {
		return err
	}
	if c.idx == nil {
		c.idx = map[string]int{}
	}
	if i, ok := c.idx[got.ID]; ok {
		c.out[i] = got
		return nil
	}
	c.idx[got.ID] = len(c.out)
	c.out = append(c.out, got)
	return nil
}

// Observe updates the conflicts for op, from gateway gw of warehouse wh,
// which ledger.Apply has just merged into ls with the given changes. Call
// it once per new op, in the transaction that merged it. It returns the
// conflicts it created or changed.
func (d *Detector) Observe(st Store, ls ledger.Store, wh, gw string, op *protocol.Op, changes []ledger.Change) ([]Conflict, error) {
	ord := ledger.OrderOf(gw, op)
	wrap := func(err error) error { return fmt.Errorf("conflicts of op %s: %w", opPath(wh, ord), err) }
	skew, err := d.skew(st, wh)
	if err != nil {
		return nil, wrap(err)
	}
	col := &collector{st: st}
	if op.Kind.IsCount() {
		err = observeCount(col, ls, wh, ord, op, changes, skew)
	} else {
		err = observeDelta(col, ls, wh, ord, op, skew)
	}
	if err != nil {
		return nil, wrap(err)
	}
	if err := observeStock(col, ls, ord, op, changes); err != nil {
		return nil, wrap(err)
	}
	if op.Kind == protocol.OpPick && op.Refs != nil && op.Refs.Order != "" {
		l := OrderLineKey{wh, op.Refs.Order, op.Refs.OrderLine}
		if err := st.AddLinePick(l.WH, l.Order, l.Line, LinePick{Ref: refOf(wh, ord), Qty: op.Qty}); err != nil {
			return nil, wrap(fmt.Errorf("record pick: %w", err))
		}
		if err := checkLine(col, l, false); err != nil {
			return nil, wrap(err)
		}
	}
	if op.Kind == protocol.OpReceive && op.Flags&receiptFlags != 0 {
		if err := col.raise(receiptConflict(wh, ord, op)); err != nil {
			return nil, wrap(err)
		}
	}
	return col.out, nil
}

// RecheckOrderLine re-evaluates the over-pick conflict of an order line;
// the server calls it when the line's quantity becomes known or changes.
func RecheckOrderLine(st Store, wh, order string, line uint32) ([]Conflict, error) {
	col := &collector{st: st}
	if err := checkLine(col, OrderLineKey{wh, order, line}, true); err != nil {
		return nil, err
	}
	return col.out, nil
}

// checkLine raises the over-pick conflict of l when its picks exceed its
// quantity. Picks only add up, so unless the quantity may have changed
// (recheck) a line within its quantity has no conflict to clear.
func checkLine(col *collector, l OrderLineKey, recheck bool) error {
	qty, known, err := col.st.OrderLineQty(l.WH, l.Order, l.Line)
	if err != nil || !known {
		return wrapf(err, "order line %s", OverPickID(l))
	}
	picked, err := col.st.LinePicked(l.WH, l.Order, l.Line)
	if err != nil {
		return fmt.Errorf("picked total of %s: %w", OverPickID(l), err)
	}
	if picked <= qty {
		if !recheck {
			return nil
		}
		return col.raise(Conflict{ID: OverPickID(l), Holds: false})
	}
	picks, err := col.st.LinePicks(l.WH, l.Order, l.Line)
	if err != nil {
		return fmt.Errorf("picks of %s: %w", OverPickID(l), err)
	}
	return col.raise(overPickConflict(l, qty, picks))
}

func wrapf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// observeStock keeps the negative-stock conflicts of the keys op changed:
// open while on-hand < 0, listing the op that pushed the key below zero in
// merge order and the decrements after it; cleared when on-hand is back.
func observeStock(col *collector, ls ledger.Store, ord ledger.Order, op *protocol.Op, changes []ledger.Change) error {
	type span struct {
		before, after int64
		n             int
	}
	negative := false
	for _, ch := range changes {
		negative = negative || ch.Before < 0 || ch.After < 0
	}
	if !negative {
		return nil // every key stayed at or above zero: no conflict held before, none holds now
	}
	spans := map[ledger.Key]*span{}
	var keys []ledger.Key
	for _, ch := range changes {
		if s, ok := spans[ch.Key]; ok { // a move within one location touches its key twice
			s.after, s.n = ch.After, s.n+1
			continue
		}
		spans[ch.Key] = &span{ch.Before, ch.After, 1}
		keys = append(keys, ch.Key)
	}
	for _, k := range keys {
		s := spans[k]
		if s.before >= 0 && s.after >= 0 {
			continue // no conflict held before, none holds now
		}
		if err := negativeStock(col, ls, k, ord, op, s.before, s.after, s.n == 1); err != nil {
			return fmt.Errorf("negative stock of %s: %w", k, err)
		}
	}
	return nil
}

func negativeStock(col *collector, ls ledger.Store, k ledger.Key, ord ledger.Order, op *protocol.Op, before, after int64, single bool) error {
	id := NegativeStockID(k)
	if after >= 0 {
		return col.raise(Conflict{ID: id, Holds: false})
	}
	ks, _, err := ls.GetKey(k)
	if err != nil {
		return err
	}
	old, exists, err := col.st.GetConflict(id)
	if err != nil {
		return err
	}
	if exists && old.Holds && before < 0 && single {
		if ord.Compare(ks.Count) < 0 {
			return nil // ordered before the covering count: on-hand and its history are unchanged
		}
		if !op.Kind.IsCount() {
			later, err := col.st.Deltas(k, Range{From: succ(ord), Limit: 1})
			if err != nil {
				return err
			}
			if len(later) == 0 { // the newest delta: the run below zero only grows
				c := old
				c.Observed = after
				if after < before && len(c.Ops) < maxNegOps {
					c.Ops = append(c.Ops, refOf(k.WH, ord))
				}
				describe(&c)
				return col.raise(c)
			}
		}
	}
	refs, err := negativeRun(col.st, k, ks)
	if err != nil {
		return err
	}
	return col.raise(negConflict(k, after, refs))
}

// negativeRun walks the deltas of k back from the newest, in merge order,
// to the op that took on-hand from ≥ 0 to < 0 for the last time; it returns
// that op and the decrements after it. The walk stops at the covering
// count, whose quantity is never negative.
func negativeRun(st Store, k ledger.Key, ks ledger.KeyState) ([]OpRef, error) {
	const page = 256
	v := ks.OnHand()
	var rev []OpRef
	r := Range{From: ks.Count, Desc: true, Limit: page}
	for {
		ds, err := st.Deltas(k, r)
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			if d.Qty < 0 {
				rev = append(rev, refOf(k.WH, d.Order))
			}
			if v -= d.Qty; v >= 0 {
				return firstRefs(rev), nil
			}
		}
		if len(ds) < page {
			return firstRefs(rev), nil
		}
		r.To = ds[len(ds)-1].Order
	}
}

// firstRefs returns the first maxNegOps refs, in merge order, of refs
// collected newest first.
func firstRefs(rev []OpRef) []OpRef {
	slices.Reverse(rev)
	if len(rev) > maxNegOps {
		rev = rev[:maxNegOps]
	}
	return rev
}
