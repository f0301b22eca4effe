package conflicts

import (
	"cmp"
	"slices"
	"sort"
	"time"

	"github.com/shelfsync/shelfsync/protocol/ledger"
)

// MemStore is an in-memory Store that is also the ledger.Store it reads
// deltas from, as the server's Badger transaction is both. It is for tests
// and for views rebuilt at start.
type MemStore struct {
	*ledger.MemStore
	// Lines holds the known order-line quantities.
	Lines map[OrderLineKey]int64
	// Skew, when set, is every warehouse's count-race window.
	Skew time.Duration

	conflicts  map[string]Conflict
	deltas     map[ledger.Key][]Delta
	countLines map[ledger.Key][]CountLine
	locCounts  map[[2]string][]ledger.Order
	picks      map[OrderLineKey][]LinePick
	picked     map[OrderLineKey]int64
}

var (
	_ Store        = (*MemStore)(nil)
	_ ledger.Store = (*MemStore)(nil)
)

// NewMemStore returns an empty store.
func NewMemStore() *MemStore {
	return &MemStore{
		MemStore:   ledger.NewMemStore(),
		Lines:      map[OrderLineKey]int64{},
		conflicts:  map[string]Conflict{},
		deltas:     map[ledger.Key][]Delta{},
		countLines: map[ledger.Key][]CountLine{},
		locCounts:  map[[2]string][]ledger.Order{},
		picks:      map[OrderLineKey][]LinePick{},
		picked:     map[OrderLineKey]int64{},
	}
}

// AddDelta implements ledger.Store, keeping the deltas in merge order for
// Deltas.
func (m *MemStore) AddDelta(k ledger.Key, o ledger.Order, qty int64) error {
	m.deltas[k] = insert(m.deltas[k], Delta{o, qty}, func(d Delta) ledger.Order { return d.Order })
	return m.MemStore.AddDelta(k, o, qty)
}

// insert adds v to s, kept sorted by order; an equal order goes after the
// ones already there.
func insert[T any](s []T, v T, order func(T) ledger.Order) []T {
	i := sort.Search(len(s), func(i int) bool { return order(s[i]).Compare(order(v)) > 0 })
	return slices.Insert(s, i, v)
}

// window returns the part of s (sorted by order) that r selects.
func window[T any](s []T, r Range, order func(T) ledger.Order) []T {
	lo := sort.Search(len(s), func(i int) bool { return order(s[i]).Compare(r.From) >= 0 })
	hi := len(s)
	if !r.To.IsZero() {
		hi = sort.Search(len(s), func(i int) bool { return order(s[i]).Compare(r.To) >= 0 })
	}
	if hi < lo {
		hi = lo
	}
	if r.Limit > 0 && hi-lo > r.Limit {
		if r.Desc {
			lo = hi - r.Limit
		} else {
			hi = lo + r.Limit
		}
	}
	out := slices.Clone(s[lo:hi])
	if r.Desc {
		slices.Reverse(out)
	}
	return out
}

// GetConflict implements Store.
func (m *MemStore) GetConflict(id string) (Conflict, bool, error) {
	c, ok := m.conflicts[id]
	c.Ops = slices.Clone(c.Ops)
	return c, ok, nil
}

// PutConflict implements Store.
func (m *MemStore) PutConflict(c Conflict) error {
	c.Ops = slices.Clone(c.Ops)
	m.conflicts[c.ID] = c
	return nil
}

// ListConflicts implements Store.
func (m *MemStore) ListConflicts(q Query) ([]Conflict, error) {
	var out []Conflict
	for _, c := range m.conflicts {
		if q.Match(c) {
			c.Ops = slices.Clone(c.Ops)
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Conflict) int { return cmp.Compare(a.ID, b.ID) })
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// PutCountLine implements Store.
func (m *MemStore) PutCountLine(k ledger.Key, o ledger.Order, qty int64) error {
	m.countLines[k] = insert(m.countLines[k], CountLine{o, qty}, func(c CountLine) ledger.Order { return c.Order })
	return nil
}

// CountLines implements Store.
func (m *MemStore) CountLines(k ledger.Key, r Range) ([]CountLine, error) {
	return window(m.countLines[k], r, func(c CountLine) ledger.Order { return c.Order }), nil
}

// AddLocCount implements Store.
func (m *MemStore) AddLocCount(wh, loc string, o ledger.Order) error {
	lk := [2]string{wh, loc}
	m.locCounts[lk] = insert(m.locCounts[lk], o, func(o ledger.Order) ledger.Order { return o })
	return nil
}

// LocCounts implements Store.
func (m *MemStore) LocCounts(wh, loc string, r Range) ([]ledger.Order, error) {
	return window(m.locCounts[[2]string{wh, loc}], r, func(o ledger.Order) ledger.Order { return o }), nil
}

// Deltas implements Store.
func (m *MemStore) Deltas(k ledger.Key, r Range) ([]Delta, error) {
	return window(m.deltas[k], r, func(d Delta) ledger.Order { return d.Order }), nil
}

// AddLinePick implements Store.
func (m *MemStore) AddLinePick(wh, order string, line uint32, p LinePick) error {
	l := OrderLineKey{wh, order, line}
	m.picks[l] = append(m.picks[l], p)
	m.picked[l] += p.Qty
	return nil
}

// LinePicked implements Store.
func (m *MemStore) LinePicked(wh, order string, line uint32) (int64, error) {
	return m.picked[OrderLineKey{wh, order, line}], nil
}

// LinePicks implements Store.
func (m *MemStore) LinePicks(wh, order string, line uint32) ([]LinePick, error) {
	return slices.Clone(m.picks[OrderLineKey{wh, order, line}]), nil
}

// OrderLineQty implements Store.
func (m *MemStore) OrderLineQty(wh, order string, line uint32) (int64, bool, error) {
	q, ok := m.Lines[OrderLineKey{wh, order, line}]
	return q, ok, nil
}

// SkewWindow implements Store.
func (m *MemStore) SkewWindow(string) (time.Duration, error) { return m.Skew, nil }
