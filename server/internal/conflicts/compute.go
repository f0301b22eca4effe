package conflicts

import (
	"cmp"
	"slices"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
)

// Compute finds, from scratch, the conflicts that hold for a set of ops
// (duplicates, same gateway and seq, count once), given the known order-line
// quantities and the count-race window (0: DefaultSkewWindow). It is the
// reference implementation: the open conflicts a Detector keeps after
// observing the same ops, in any order, are exactly these. Quarantined ops
// and oversells are not functions of the op set and are not computed.
func Compute(ops []ledger.Sourced, lines map[OrderLineKey]int64, skew time.Duration) map[string]Conflict {
	if skew <= 0 {
		skew = DefaultSkewWindow
	}
	type rec struct {
		wh  string
		ord ledger.Order
		op  *protocol.Op
	}
	seen := map[ledger.Order]bool{}
	var all []rec
	var unique []ledger.Sourced
	for i := range ops {
		s := &ops[i]
		ord := ledger.OrderOf(s.GW, &s.Op)
		if id := (ledger.Order{GW: ord.GW, Seq: ord.Seq}); !seen[id] {
			seen[id] = true
			all = append(all, rec{s.WH, ord, &s.Op})
			unique = append(unique, *s)
		}
	}
	slices.SortFunc(all, func(a, b rec) int { return cmp.Or(a.ord.Compare(b.ord), cmp.Compare(a.wh, b.wh)) })

	// Everything below is in merge order.
	deltas := map[ledger.Key][]Delta{}
	counted := map[ledger.Key][]CountLine{}
	locCounts := map[[2]string][]ledger.Order{}
	keysAt := map[[2]string]map[ledger.Key]bool{}
	note := func(k ledger.Key) {
		lk := [2]string{k.WH, k.Location}
		if keysAt[lk] == nil {
			keysAt[lk] = map[ledger.Key]bool{}
		}
		keysAt[lk][k] = true
	}
	picks := map[OrderLineKey][]LinePick{}
	out := map[string]Conflict{}
	add := func(c Conflict) {
		if c.Holds {
			out[c.ID] = c
		}
	}
	for _, r := range all {
		for _, e := range ledger.Deltas(r.wh, r.op) {
			deltas[e.Key] = append(deltas[e.Key], Delta{r.ord, e.Qty})
			note(e.Key)
		}
		for _, l := range ledger.CountLines(r.wh, r.op) {
			counted[l.Key] = append(counted[l.Key], CountLine{r.ord, l.Qty})
			note(l.Key)
		}
		if r.op.Kind.IsCount() && r.op.Scope == protocol.ScopeLocation {
			lk := [2]string{r.wh, r.op.Location}
			locCounts[lk] = append(locCounts[lk], r.ord)
		}
		if r.op.Kind == protocol.OpPick && r.op.Refs != nil && r.op.Refs.Order != "" {
			l := OrderLineKey{r.wh, r.op.Refs.Order, r.op.Refs.OrderLine}
			picks[l] = append(picks[l], LinePick{refOf(r.wh, r.ord), r.op.Qty})
		}
		if r.op.Kind == protocol.OpReceive && r.op.Flags&receiptFlags != 0 {
			add(receiptConflict(r.wh, r.ord, r.op))
		}
	}

	// base returns the last count covering k ordered before o (zero o: any).
	base := func(k ledger.Key, o ledger.Order) (c CountLine) {
		for _, l := range counted[k] {
			if o.IsZero() || l.Order.Compare(o) < 0 {
				c = l
			}
		}
		for _, lo := range locCounts[[2]string{k.WH, k.Location}] {
			if k.CoveredByLocCount() && (o.IsZero() || lo.Compare(o) < 0) && lo.Compare(c.Order) > 0 {
				c = CountLine{lo, 0} // a later location count not listing k
			}
		}
		return c
	}

	// negative-stock: walk forward from the covering count; the run starts
	// at the last step from ≥ 0 to < 0.
	for k, v := range ledger.Fold(unique) {
		if v >= 0 {
			continue
		}
		b := base(k, ledger.Order{})
		run, sum := []OpRef(nil), b.Qty
		for _, d := range deltas[k] {
			if d.Order.Compare(b.Order) <= 0 {
				continue
			}
			prev := sum
			sum += d.Qty
			if prev >= 0 && sum < 0 {
				run = nil
			}
			if d.Qty < 0 && sum < 0 { // the step below zero is one of these
				run = append(run, refOf(k.WH, d.Order))
			}
		}
		if len(run) > maxNegOps {
			run = run[:maxNegOps]
		}
		add(negConflict(k, v, run))
	}

	// variance and count-race, per count op.
	for _, r := range all {
		if !r.op.Kind.IsCount() {
			continue
		}
		targets := map[ledger.Key]int64{}
		for _, l := range ledger.CountLines(r.wh, r.op) {
			targets[l.Key] = l.Qty
		}
		race := raceBase(r.wh, r.ord, r.op.Scope == protocol.ScopeLocation,
			ledger.Key{WH: r.wh, Location: r.op.Location, SKU: r.op.SKU, Lot: r.op.Lot, Owner: r.op.Owner, Status: r.op.Status})
		if r.op.Scope == protocol.ScopeLocation {
			for k := range keysAt[[2]string{r.wh, r.op.Location}] {
				if _, ok := targets[k]; !ok && k.CoveredByLocCount() {
					targets[k] = 0
				}
			}
		}
		for k, observed := range targets {
			b := base(k, r.ord)
			expected := b.Qty
			for _, d := range deltas[k] {
				if d.Order.Compare(b.Order) > 0 && d.Order.Compare(r.ord) < 0 {
					expected += d.Qty
				}
				if races(r.ord, d.Order, skew) {
					race.Ops = append(race.Ops, refOf(k.WH, d.Order))
				}
			}
			add(varianceConflict(k, r.ord, expected, observed))
		}
		if len(race.Ops) > 1 {
			race.Ops = sortRefs(race.Ops)
			describe(&race)
			add(race)
		}
	}

	// over-pick, per known order line.
	for l, ps := range picks {
		if qty, ok := lines[l]; ok {
			add(overPickConflict(l, qty, ps))
		}
	}
	return out
}
