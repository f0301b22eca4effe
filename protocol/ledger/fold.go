package ledger

import "github.com/shelfsync/shelfsync/protocol"

// Sourced is an op with the gateway and warehouse it came from.
type Sourced struct {
	WH, GW string
	Op     protocol.Op
}

// Fold computes every key's on-hand from a set of ops straight from the
// merge rule. Duplicates (same gateway and seq) count once. It is the
// reference implementation; Apply must agree with it.
func Fold(ops []Sourced) map[Key]int64 {
	type countRec struct {
		ord Order
		qty int64
	}
	type deltaRec struct {
		ord Order
		qty int64
	}
	seen := map[Order]bool{}
	counts := map[Key]countRec{}       // best key-level count (incl. location lines)
	locCounts := map[[2]string]Order{} // best location count per (wh, loc)
	deltas := map[Key][]deltaRec{}
	keys := map[Key]bool{}
	for i := range ops {
		s := &ops[i]
		ord := OrderOf(s.GW, &s.Op)
		id := Order{GW: ord.GW, Seq: ord.Seq}
		if seen[id] {
			continue
		}
		seen[id] = true
		if s.Op.Kind.IsCount() {
			for _, l := range CountLines(s.WH, &s.Op) {
				keys[l.Key] = true
				if c, ok := counts[l.Key]; !ok || ord.Compare(c.ord) > 0 {
					counts[l.Key] = countRec{ord, l.Qty}
				}
			}
			if s.Op.Scope == protocol.ScopeLocation {
				lk := [2]string{s.WH, s.Op.Location}
				if c, ok := locCounts[lk]; !ok || ord.Compare(c) > 0 {
					locCounts[lk] = ord
				}
			}
			continue
		}
		for _, e := range Deltas(s.WH, &s.Op) {
			keys[e.Key] = true
			deltas[e.Key] = append(deltas[e.Key], deltaRec{ord, e.Qty})
		}
	}
	out := make(map[Key]int64, len(keys))
	for k := range keys {
		base := countRec{}
		if c, ok := counts[k]; ok {
			base = c
		}
		// A later location count covers k even if it does not list it.
		if lc, ok := locCounts[[2]string{k.WH, k.Location}]; ok && k.CoveredByLocCount() && lc.Compare(base.ord) > 0 {
			base = countRec{lc, 0}
		}
		v := base.qty
		for _, d := range deltas[k] {
			if d.ord.Compare(base.ord) > 0 {
				v += d.qty
			}
		}
		out[k] = v
	}
	return out
}
