package conflicts

import (
	"time"

	"github.com/shelfsync/shelfsync/protocol/ledger"
)

// Store is what the detector reads and writes. The server implements it
// over the Badger transaction that merges the op, beside ledger.Store;
// MemStore is the in-memory implementation. Implementations need not be
// safe for concurrent use.
//
// Ranges over ops are in merge order (ledger.Order.Compare); see Range.
type Store interface {
	// GetConflict returns the conflict with the given ID.
	GetConflict(id string) (Conflict, bool, error)
	// PutConflict creates or replaces the conflict with c.ID.
	PutConflict(c Conflict) error
	// ListConflicts returns the conflicts q matches, sorted by ID.
	ListConflicts(q Query) ([]Conflict, error)

	// PutCountLine records the quantity a count op (of either scope)
	// counted for key k; o is the count's merge order.
	PutCountLine(k ledger.Key, o ledger.Order, qty int64) error
	// CountLines returns the counted lines of k whose order is in r.
	CountLines(k ledger.Key, r Range) ([]CountLine, error)
	// AddLocCount records a location-scope count of (wh, loc).
	AddLocCount(wh, loc string, o ledger.Order) error
	// LocCounts returns the location-scope counts of (wh, loc) in r.
	LocCounts(wh, loc string, r Range) ([]ledger.Order, error)

	// Deltas returns the deltas recorded on k (ledger.Store.AddDelta) whose
	// order is in r.
	Deltas(k ledger.Key, r Range) ([]Delta, error)

	// AddLinePick records a pick against a customer order line and adds
	// its quantity to the line's picked total.
	AddLinePick(wh, order string, line uint32, p LinePick) error
	// LinePicked returns the picked total of an order line.
	LinePicked(wh, order string, line uint32) (int64, error)
	// LinePicks returns every pick recorded against an order line.
	LinePicks(wh, order string, line uint32) ([]LinePick, error)
	// OrderLineQty returns the ordered quantity of a line, when known.
	OrderLineQty(wh, order string, line uint32) (int64, bool, error)

	// SkewWindow returns the warehouse's count-race window; 0 means the
	// Detector's default.
	SkewWindow(wh string) (time.Duration, error)
}

// Range selects ops by merge order: From ≤ order < To, where a zero To
// means no upper bound. Results are ascending, or descending when Desc; at
// most Limit of them when Limit > 0.
type Range struct {
	From, To ledger.Order
	Desc     bool
	Limit    int
}

// Contains reports whether o lies in the range's bounds.
func (r Range) Contains(o ledger.Order) bool {
	return o.Compare(r.From) >= 0 && (r.To.IsZero() || o.Compare(r.To) < 0)
}

// Delta is one quantity an op added to a key.
type Delta struct {
	Order ledger.Order
	Qty   int64
}

// CountLine is the quantity one count op counted for a key.
type CountLine struct {
	Order ledger.Order
	Qty   int64
}

// LinePick is one pick against an order line.
type LinePick struct {
	Ref OpRef
	Qty int64
}

// Query filters ListConflicts; empty fields match everything.
type Query struct {
	Warehouse string
	Kind      Kind
	Status    Status
	Location  string
	SKU       string
	Limit     int
}

// Match reports whether c passes the filter (Limit aside).
func (q Query) Match(c Conflict) bool {
	return (q.Warehouse == "" || q.Warehouse == c.Warehouse) &&
		(q.Kind == "" || q.Kind == c.Kind) &&
		(q.Status == "" || q.Status == c.Status) &&
		(q.Location == "" || q.Location == c.Location) &&
		(q.SKU == "" || q.SKU == c.SKU)
}

// succ returns the smallest order greater than o.
func succ(o ledger.Order) ledger.Order {
	if o.Seq == ^uint64(0) {
		return ledger.Order{HLC: o.HLC, GW: o.GW + "\x00"}
	}
	o.Seq++
	return o
}

// covering is a count that covers one key.
type covering struct {
	Order ledger.Order
	Qty   int64 // what it counted for the key; 0 for a location count not listing it
	Loc   bool  // location scope
}

// coveringCounts returns the counts covering k in r, merged from the
// count lines of k and the location counts of its location. A location
// count listing k appears in both; it is reported once.
func coveringCounts(st Store, k ledger.Key, r Range) ([]covering, error) {
	lines, err := st.CountLines(k, r)
	if err != nil {
		return nil, err
	}
	locs, err := st.LocCounts(k.WH, k.Location, r)
	if err != nil {
		return nil, err
	}
	out := make([]covering, 0, len(lines)+len(locs))
	i, j := 0, 0
	for i < len(lines) || j < len(locs) {
		var c int
		switch {
		case i == len(lines):
			c = 1
		case j == len(locs):
			c = -1
		default:
			c = lines[i].Order.Compare(locs[j])
			if r.Desc {
				c = -c
			}
		}
		switch {
		case c < 0:
			out = append(out, covering{Order: lines[i].Order, Qty: lines[i].Qty})
			i++
		case c > 0:
			if k.CoveredByLocCount() { // else a location count covers k only by listing it
				out = append(out, covering{Order: locs[j], Loc: true})
			}
			j++
		default:
			out = append(out, covering{Order: locs[j], Qty: lines[i].Qty, Loc: true})
			i, j = i+1, j+1
		}
	}
	if r.Limit > 0 && len(out) > r.Limit {
		out = out[:r.Limit]
	}
	return out, nil
}

// prevCovering returns the covering count of k ordered last before o.
func prevCovering(st Store, k ledger.Key, o ledger.Order) (covering, bool, error) {
	cs, err := coveringCounts(st, k, Range{To: o, Desc: true, Limit: 1})
	if err != nil || len(cs) == 0 {
		return covering{}, false, err
	}
	return cs[0], true, nil
}

// nextCovering returns the covering count of k ordered first after o.
func nextCovering(st Store, k ledger.Key, o ledger.Order) (covering, bool, error) {
	cs, err := coveringCounts(st, k, Range{From: succ(o), Limit: 1})
	if err != nil || len(cs) == 0 {
		return covering{}, false, err
	}
	return cs[0], true, nil
}

// sumDeltas sums the deltas on k in [from, to).
func sumDeltas(st Store, k ledger.Key, from, to ledger.Order) (int64, error) {
	ds, err := st.Deltas(k, Range{From: from, To: to})
	if err != nil {
		return 0, err
	}
	var s int64
	for _, d := range ds {
		s += d.Qty
	}
	return s, nil
}
