package conflicts

import (
	"fmt"
	"slices"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
)

// raceWindow returns the orders [lo, hi) of the ops whose HLC wall time is
// within skew of h's.
func raceWindow(h protocol.HLC, skew time.Duration) (lo, hi ledger.Order) {
	ms, w := h.Millis(), skew.Milliseconds()
	lo = ledger.Order{HLC: protocol.MakeHLC(max(ms-w, 0), 0)}
	hi = ledger.Order{HLC: protocol.MakeHLC(ms+w+1, 0)}
	return lo, hi
}

// races reports whether a count and a delta race: different gateways, HLC
// wall times at most skew apart.
func races(count, delta ledger.Order, skew time.Duration) bool {
	if count.GW == delta.GW {
		return false
	}
	d := count.HLC.Millis() - delta.HLC.Millis()
	return max(d, -d) <= skew.Milliseconds()
}

// observeCount indexes a count op and evaluates, on every key it covers, its
// variance, the variance of the next count (whose records now start here),
// and its races with deltas already merged.
func observeCount(col *collector, ls ledger.Store, wh string, ord ledger.Order, op *protocol.Op, changes []ledger.Change, skew time.Duration) error {
	st := col.st
	lines := ledger.CountLines(wh, op)
	keys := make([]ledger.Key, 0, len(lines))
	counted := make(map[ledger.Key]int64, len(lines))
	for _, l := range lines {
		if err := st.PutCountLine(l.Key, ord, l.Qty); err != nil {
			return fmt.Errorf("index count of %s: %w", l.Key, err)
		}
		keys, counted[l.Key] = append(keys, l.Key), l.Qty
	}
	before := make(map[ledger.Key]int64, len(changes))
	for _, ch := range changes {
		if _, ok := before[ch.Key]; !ok {
			before[ch.Key] = ch.Before
		}
	}
	base := raceBase(wh, ord, false, ledger.Key{WH: wh, Location: op.Location, SKU: op.SKU, Lot: op.Lot, Owner: op.Owner, Status: op.Status})
	if op.Scope == protocol.ScopeLocation {
		if err := st.AddLocCount(wh, op.Location, ord); err != nil {
			return fmt.Errorf("index location count of %s/%s: %w", wh, op.Location, err)
		}
		at, err := ls.KeysAt(wh, op.Location)
		if err != nil {
			return fmt.Errorf("keys at %s/%s: %w", wh, op.Location, err)
		}
		slices.SortFunc(at, compareKeys)
		for _, k := range at {
			if _, ok := counted[k]; !ok && k.CoveredByLocCount() {
				keys = append(keys, k)
			}
		}
		base = raceBase(wh, ord, true, ledger.Key{WH: wh, Location: op.Location})
	}
	lo, hi := raceWindow(ord.HLC, skew)
	var racing []OpRef
	for _, k := range keys {
		ks, _, err := ls.GetKey(k)
		if err != nil {
			return fmt.Errorf("state of %s: %w", k, err)
		}
		if b, touched := before[k]; touched && ks.Count == ord {
			// The newest count of k (the usual case): its records are the
			// on-hand before it less the deltas already merged after it, and
			// no later count's records change.
			later, err := sumDeltas(st, k, ord, ledger.Order{})
			if err != nil {
				return fmt.Errorf("deltas of %s after the count: %w", k, err)
			}
			if err := col.raise(varianceConflict(k, ord, b-later, counted[k])); err != nil {
				return err
			}
		} else if err := lateCount(col, k, ord); err != nil {
			return err
		}
		ds, err := st.Deltas(k, Range{From: lo, To: hi})
		if err != nil {
			return fmt.Errorf("deltas of %s near the count: %w", k, err)
		}
		for _, d := range ds {
			if races(ord, d.Order, skew) {
				racing = append(racing, refOf(wh, d.Order))
			}
		}
	}
	return addRace(col, base, racing)
}

// observeDelta evaluates, on every key a delta op touches, its races with
// counts already merged and the variance of the next count covering the key.
func observeDelta(col *collector, ls ledger.Store, wh string, ord ledger.Order, op *protocol.Op, skew time.Duration) error {
	st := col.st
	lo, hi := raceWindow(ord.HLC, skew)
	var prev ledger.Key
	var buf [ledger.MaxEffects]ledger.Effect
	for i, e := range ledger.AppendDeltas(buf[:0], wh, op) {
		k := e.Key
		if i > 0 && k == prev {
			continue // a move within one location
		}
		prev = k
		ks, _, err := ls.GetKey(k)
		if err != nil {
			return fmt.Errorf("state of %s: %w", k, err)
		}
		// Fast path: ks.Count is the latest count covering k (a count of k
		// or of its location; a late one is earlier; none: zero). When it
		// lies before the race window, or there is none, no count lies in
		// the window, and the two range scans are skipped
		// (TestCountRaceFastPathEqualsScan).
		if scanAlways || (!ks.Count.IsZero() && ks.Count.Compare(lo) >= 0) {
			cs, err := coveringCounts(st, k, Range{From: lo, To: hi})
			if err != nil {
				return fmt.Errorf("counts of %s near the op: %w", k, err)
			}
			for _, c := range cs {
				if races(c.Order, ord, skew) {
					if err := addRace(col, raceBase(wh, c.Order, c.Loc, k), []OpRef{refOf(wh, ord)}); err != nil {
						return err
					}
				}
			}
		}
		if ord.Compare(ks.Count) > 0 {
			continue // after every count of k: no count's records change
		}
		next, ok, err := nextCovering(st, k, ord)
		if err != nil {
			return fmt.Errorf("next count of %s: %w", k, err)
		}
		if ok {
			if err := variance(col, k, next.Order); err != nil {
				return err
			}
		}
	}
	return nil
}

// lateCount evaluates a count that arrived after a later count of k: its
// own variance and that of the next count, whose records now start here.
func lateCount(col *collector, k ledger.Key, c ledger.Order) error {
	if err := variance(col, k, c); err != nil {
		return err
	}
	next, ok, err := nextCovering(col.st, k, c)
	if err != nil {
		return fmt.Errorf("next count of %s: %w", k, err)
	}
	if !ok {
		return nil
	}
	return variance(col, k, next.Order)
}

// addRace adds racing deltas to the count-race conflict of a count. Races
// only accumulate: a race found stays found.
func addRace(col *collector, base Conflict, racing []OpRef) error {
	if len(racing) == 0 {
		return nil
	}
	old, ok, err := col.st.GetConflict(base.ID)
	if err != nil {
		return fmt.Errorf("get conflict %s: %w", base.ID, err)
	}
	if ok {
		base.Ops = append(base.Ops, old.Ops...)
	}
	base.Ops = sortRefs(append(base.Ops, racing...))
	describe(&base)
	return col.raise(base)
}

// variance evaluates the count at order c on key k against the records just
// before it: the previous count covering k plus the deltas between.
func variance(col *collector, k ledger.Key, c ledger.Order) error {
	st := col.st
	own, err := st.CountLines(k, Range{From: c, To: succ(c)})
	if err != nil {
		return fmt.Errorf("count line of %s: %w", k, err)
	}
	var observed int64 // a location count that does not list k observed 0
	if len(own) > 0 {
		observed = own[0].Qty
	}
	prev, _, err := prevCovering(st, k, c)
	if err != nil {
		return fmt.Errorf("previous count of %s: %w", k, err)
	}
	sum, err := sumDeltas(st, k, prev.Order, c)
	if err != nil {
		return fmt.Errorf("deltas of %s before the count: %w", k, err)
	}
	return col.raise(varianceConflict(k, c, prev.Qty+sum, observed))
}
