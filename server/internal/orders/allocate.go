package orders

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Allocation across warehouses (docs/DESIGN.md, "Inventory behaviour the
// server owns": allocation). An order names one warehouse. What of a sku
// that warehouse cannot ship once every reservation is met is allocated
// to other warehouses of the same owner that can (the channel sells from
// them, the item has the same owner there): the order gets a part in each,
// an order record of the same id in that warehouse (PartOf naming the
// order's warehouse), reserving there and routed to that warehouse's
// gateways; the order's line keeps its quantity and says how much of it
// ships elsewhere (Line.Elsewhere). Only when the warehouses together
// cannot ship it does the channel's policy apply (refuse or backorder).
//
// A short pick re-allocates the same way (Reallocate): what of a line no
// other bin of its warehouse can give moves to a part in another
// warehouse, or waits for stock on the line (Line.Backordered), released
// first come first served like a backordered order.

// part is what an order allocates to one other warehouse.
type part struct {
	wh    string
	lines []Line
}

// otherWarehouses lists the warehouses other than wh that the channel
// sells from and whose item of sku has the given owner, with what each
// can still ship of sku to the channel (from lots with its minimum shelf
// life left), most first (then by name).
func (s *Service) otherWarehouses(g *group, c *Channel, wh, sku, owner string) []whAvail {
	s.mu.Lock()
	per := map[string]int64{}
	for w := range s.whs {
		if w != wh && c.sells(w) {
			per[w] = s.available(g, whsku{w, sku})
		}
	}
	per = s.freshEnough(c, sku, per) // the channel's own minimum shelf life
	s.mu.Unlock()
	var out []whAvail
	for w, a := range per {
		if a > 0 {
			out = append(out, whAvail{w, a})
		}
	}
	kept := out[:0]
	for _, wa := range out {
		if s.cfg.Owner != nil {
			o, err := s.cfg.Owner(wa.wh, sku)
			if err != nil || o != owner {
				continue
			}
		}
		kept = append(kept, wa)
	}
	sort.Slice(kept, func(i, j int) bool {
		if kept[i].n != kept[j].n {
			return kept[i].n > kept[j].n
		}
		return kept[i].wh < kept[j].wh
	})
	return kept
}

type whAvail struct {
	wh string
	n  int64
}

// planSplit allocates the shortfalls of order o (in its warehouse) to
// other warehouses; ok is false when they cannot ship all of it or the
// channel is not offered that much. It fills o's lines' Elsewhere and
// returns the parts. taken(w) reports a warehouse where the order's id
// is already used by another order.
func (s *Service) planSplit(g *group, c *Channel, o *Order, short []shortfall, taken func(wh string) (bool, error)) ([]part, bool, error) {
	alloc := map[string]map[string]int64{} // sku → warehouse → units
	var order []string                     // warehouses in allocation order
	local := map[string]int64{}
	for _, sf := range short {
		if sf.Requested > sf.offer {
			return nil, false, nil
		}
		rest := sf.Requested - sf.here
		local[sf.SKU] = sf.here
		alloc[sf.SKU] = map[string]int64{}
		for _, wa := range s.otherWarehouses(g, c, o.Warehouse, sf.SKU, o.Owner) {
			if rest == 0 {
				break
			}
			if t, err := taken(wa.wh); err != nil {
				return nil, false, err
			} else if t {
				continue
			}
			q := min(rest, wa.n)
			alloc[sf.SKU][wa.wh] += q
			if !slices.Contains(order, wa.wh) {
				order = append(order, wa.wh)
			}
			rest -= q
		}
		if rest > 0 {
			return nil, false, nil
		}
	}
	parts := map[string]*part{}
	for i := range o.Lines {
		l := &o.Lines[i]
		per, ok := alloc[l.SKU]
		if !ok {
			continue
		}
		want := l.Qty - l.Picked
		here := min(want, local[l.SKU])
		local[l.SKU] -= here
		rest := want - here
		for _, w := range order {
			if rest == 0 {
				break
			}
			q := min(rest, per[w])
			if q <= 0 {
				continue
			}
			per[w] -= q
			rest -= q
			l.Elsewhere += q
			p := parts[w]
			if p == nil {
				p = &part{wh: w}
				parts[w] = p
			}
			p.lines = append(p.lines, Line{Line: l.Line, SKU: l.SKU, Lot: l.Lot, Qty: q})
		}
	}
	out := make([]part, 0, len(order))
	for _, w := range order {
		if p := parts[w]; p != nil {
			out = append(out, *p)
		}
	}
	return out, true, nil
}

// idTaken reports whether (wh, id) holds an order other than a part of
// the order o.
func idTaken(tx store.Tx, wh, id string, o *Order) (bool, *Order, error) {
	var p Order
	found, err := getCBOR(tx, orderKey(wh, id), &p)
	if err != nil || !found {
		return false, nil, err
	}
	if p.Channel == o.Channel && p.ExternalID == o.ExternalID && p.Status == StatusOpen {
		return false, &p, nil
	}
	return true, nil, nil
}

// writePart writes a new part of o in warehouse p.wh: reserving there at
// once, with the picks that came before it.
func (s *Service) writePart(tx store.Tx, g *group, o *Order, p part, now int64, seq *uint64) (Order, error) {
	root := o.Warehouse
	if o.PartOf != "" {
		root = o.PartOf
	}
	po := Order{Warehouse: p.wh, ID: o.ID, Channel: o.Channel, ExternalID: o.ExternalID, Lines: p.lines, Status: StatusOpen,
		CreatedMS: now, UpdatedMS: now, Owner: o.Owner, PartOf: root}
	ps, err := tx.OrderPicks(po.Warehouse, po.ID)
	if err != nil {
		return po, err
	}
	applyPicks(&po, ps, func(string) bool { return true })
	*seq++
	po.Seq = *seq
	if err := s.writeRecord(tx, &po, 0); err != nil {
		return po, err
	}
	if _, err := tx.PutOrder(forDetector(&po)); err != nil {
		return po, err
	}
	if s.cfg.OnOrderTx != nil {
		if err := s.cfg.OnOrderTx(tx, cloneOrder(&po), "created"); err != nil {
			return po, err
		}
	}
	g.take(&po, 1)
	return po, nil
}

// Realloc is what Reallocate did with the units of a line.
type Realloc struct {
	// Order is the order as written (its line's Elsewhere or Backordered
	// grew by Units).
	Order Order `json:"order"`
	// Parts are the order's parts in the warehouses that took units over,
	// as written; Moved is how many they took, Backordered how many wait
	// for stock on the line.
	Parts       []Order `json:"parts,omitempty"`
	Moved       int64   `json:"moved"`
	Backordered int64   `json:"backordered"`
}

// Reallocate moves up to units of line `line` of open order (wh, id) —
// what its warehouse can no longer give after a short pick — to other
// warehouses of the same owner that can ship them, most available first
// (a part in each, created or grown), and backorders on the line what
// they cannot take: those units reserve nothing and are released first
// come first served when stock arrives. Units are capped at what the line
// still reserves. A zero Realloc means there was nothing to move.
func (s *Service) Reallocate(ctx context.Context, wh, id string, line uint32, units int64) (Realloc, error) {
	if units <= 0 {
		return Realloc{}, nil
	}
	r := &request{kind: kindReallocate, n: NewOrder{Warehouse: wh, ID: id}, line: line, asked: units, units: units}
	s.mu.Lock()
	if o := s.open[okey{wh, id}]; o != nil {
		for _, l := range o.Lines {
			if l.Line == line { // admission reads the sku's stock again first
				r.n.Lines = []Line{{Line: line, SKU: l.SKU}}
			}
		}
	}
	s.mu.Unlock()
	s.submit(ctx, r)
	if r.err != nil {
		return Realloc{}, r.err
	}
	if !r.created {
		return Realloc{}, nil
	}
	out := Realloc{Order: cloneOrder(&r.o), Moved: r.units - r.backordered, Backordered: r.backordered}
	for i := range r.parts {
		out.Parts = append(out.Parts, cloneOrder(&r.parts[i]))
	}
	return out, nil
}

// admitReallocate is Reallocate's work in the group's transaction.
func (s *Service) admitReallocate(tx store.Tx, g *group, r *request, now int64, seq *uint64) error {
	var o Order
	found, err := getCBOR(tx, orderKey(r.n.Warehouse, r.n.ID), &o)
	if err != nil {
		return err
	}
	if !found {
		r.err = fmt.Errorf("order %s/%s: %w", r.n.Warehouse, r.n.ID, ErrNotFound)
		return nil
	}
	if o.Status != StatusOpen {
		return nil
	}
	ps, err := tx.OrderPicks(o.Warehouse, o.ID)
	if err != nil {
		return err
	}
	applyPicks(&o, ps, func(string) bool { return true })
	li := slices.IndexFunc(o.Lines, func(l Line) bool { return l.Line == r.line })
	if li < 0 {
		return nil
	}
	l := &o.Lines[li]
	u := min(r.units, l.Reserved)
	if u <= 0 {
		return nil
	}
	c, err := g.channel(tx, o.Channel, now)
	if err != nil {
		return err
	}
	prevSeq := o.Seq
	event := "backordered"
	left := u
	for _, wa := range s.otherWarehouses(g, &c, o.Warehouse, l.SKU, o.Owner) {
		if left == 0 {
			break
		}
		taken, p, err := idTaken(tx, wa.wh, o.ID, &o)
		if err != nil {
			return err
		}
		if taken {
			continue
		}
		q := min(left, wa.n)
		var moved *Order
		if p == nil {
			np, err := s.writePart(tx, g, &o, part{wh: wa.wh, lines: []Line{{Line: l.Line, SKU: l.SKU, Lot: l.Lot, Qty: q}}}, now, seq)
			if err != nil {
				return err
			}
			moved = &np
			r.partEvents = append(r.partEvents, "created")
		} else {
			if moved, err = s.growPart(tx, g, p, *l, q, now, seq); err != nil {
				return err
			}
			r.partEvents = append(r.partEvents, "reallocated")
		}
		r.parts = append(r.parts, *moved)
		l.Elsewhere += q
		left -= q
		if !slices.Contains(o.Parts, wa.wh) {
			o.Parts = append(o.Parts, wa.wh)
		}
		event = "reallocated"
	}
	l.Backordered += left
	r.backordered = left
	g.delta[whsku{o.Warehouse, l.SKU}] -= u
	g.own[chsku{o.Channel, l.SKU}] -= u
	*seq++
	o.Seq, o.UpdatedMS = *seq, now
	applyPicks(&o, ps, func(string) bool { return true })
	if err := s.writeRecord(tx, &o, prevSeq); err != nil {
		return err
	}
	if _, err := tx.PutOrder(forDetector(&o)); err != nil {
		return err
	}
	if s.cfg.OnOrderTx != nil {
		if err := s.cfg.OnOrderTx(tx, cloneOrder(&o), event); err != nil {
			return err
		}
	}
	r.o, r.created, r.event, r.units = o, true, event, u
	return nil
}

// growPart adds u units of line l to p, an open order of the same id in
// another warehouse: what p's line shipped elsewhere comes back first,
// then the line (or a new one) grows.
func (s *Service) growPart(tx store.Tx, g *group, p *Order, l Line, u, now int64, seq *uint64) (*Order, error) {
	ps, err := tx.OrderPicks(p.Warehouse, p.ID)
	if err != nil {
		return nil, err
	}
	left := u
	i := slices.IndexFunc(p.Lines, func(x Line) bool { return x.Line == l.Line && x.SKU == l.SKU })
	if i < 0 {
		p.Lines = append(p.Lines, Line{Line: l.Line, SKU: l.SKU, Lot: l.Lot})
		i = len(p.Lines) - 1
	}
	back := min(p.Lines[i].Elsewhere, left)
	p.Lines[i].Elsewhere -= back
	left -= back
	p.Lines[i].Qty += left
	prev := p.Seq
	*seq++
	p.Seq, p.UpdatedMS = *seq, now
	applyPicks(p, ps, func(string) bool { return true })
	if err := s.writeRecord(tx, p, prev); err != nil {
		return nil, err
	}
	if _, err := tx.PutOrder(forDetector(p)); err != nil {
		return nil, err
	}
	if s.cfg.OnOrderTx != nil {
		if err := s.cfg.OnOrderTx(tx, cloneOrder(p), "reallocated"); err != nil {
			return nil, err
		}
	}
	g.delta[whsku{p.Warehouse, l.SKU}] += u
	g.own[chsku{p.Channel, l.SKU}] += u
	return p, nil
}

// releaseSplit plans the release of backordered order o (need: what it
// asks per sku) over its warehouse and the owner's others: nil when they
// cannot ship it all together. It fills o's lines' Elsewhere and Parts.
// The channel took the order already: its offer is not judged again.
func (s *Service) releaseSplit(tx store.Tx, g *group, o *Order, need map[string]int64, now int64) ([]part, error) {
	c, err := g.channel(tx, o.Channel, now)
	if err != nil {
		return nil, err
	}
	var short []shortfall
	s.mu.Lock()
	for sku, n := range need {
		here := max(s.freshEnough(&c, sku, map[string]int64{o.Warehouse: s.available(g, whsku{o.Warehouse, sku})})[o.Warehouse], 0)
		if n > here {
			short = append(short, shortfall{Shortfall{SKU: sku, Requested: n, Available: here}, here, n})
		}
	}
	s.mu.Unlock()
	sort.Slice(short, func(i, j int) bool { return short[i].SKU < short[j].SKU })
	split := cloneOrder(o)
	parts, ok, err := s.planSplit(g, &c, &split, short, func(wh string) (bool, error) {
		var other Order
		return getCBOR(tx, orderKey(wh, o.ID), &other) // any order of its id there is another's
	})
	if err != nil || !ok {
		return nil, err
	}
	*o = split
	for _, p := range parts {
		if !slices.Contains(o.Parts, p.wh) {
			o.Parts = append(o.Parts, p.wh)
		}
	}
	sort.Strings(o.Parts)
	return parts, nil
}

// splitOwners returns the owner of each sku in each warehouse for the
// backordered orders whose warehouse cannot ship a sku alone but all the
// warehouses together might (what pooled needs), read outside s.mu.
func (s *Service) splitOwners() map[whsku]string {
	s.mu.Lock()
	skus := map[string]bool{}
	for _, o := range s.open {
		if o.Status != StatusBackordered {
			continue
		}
		for sku, n := range needOf(o) {
			if n > s.ats[whsku{o.Warehouse, sku}].Available && !skus[sku] {
				var all int64
				for w := range s.whs {
					all += max(s.ats[whsku{w, sku}].Available, 0)
				}
				if n <= all {
					skus[sku] = true
				}
			}
		}
	}
	whs := make([]string, 0, len(s.whs))
	for w := range s.whs {
		whs = append(whs, w)
	}
	s.mu.Unlock()
	out := map[whsku]string{}
	if s.cfg.Owner == nil {
		return out
	}
	for sku := range skus {
		for _, w := range whs {
			o, err := s.cfg.Owner(w, sku)
			if err != nil {
				o = "\x00unknown" // matches no order's owner
			}
			out[whsku{w, sku}] = o
		}
	}
	return out
}

// pooled is what the warehouses that may ship order o's sku (o's own, and
// those of the same owner its channel sells from) can still ship of it,
// less what the releases before took: admission judges it exactly (the
// channel's shelf life too); s.mu is held.
func (s *Service) pooled(o *Order, sku string, owners map[whsku]string, taken map[whsku]int64) int64 {
	c := s.channels[o.Channel]
	var n int64
	for w := range s.whs {
		ws := whsku{w, sku}
		if w != o.Warehouse && (!c.sells(w) || owners[ws] != o.Owner) {
			continue
		}
		n += max(s.ats[ws].Available-taken[ws], 0)
	}
	return n
}

// takePooled counts n units of sku as taken by a release: from wh first,
// then from the others, most available first; s.mu is held.
func (s *Service) takePooled(wh, sku string, n int64, taken map[whsku]int64) {
	ws := whsku{wh, sku}
	q := min(n, max(s.ats[ws].Available-taken[ws], 0))
	taken[ws] += q
	n -= q
	if n <= 0 {
		return
	}
	var others []whAvail
	for w := range s.whs {
		if a := s.ats[whsku{w, sku}].Available - taken[whsku{w, sku}]; w != wh && a > 0 {
			others = append(others, whAvail{w, a})
		}
	}
	sort.Slice(others, func(i, j int) bool {
		if others[i].n != others[j].n {
			return others[i].n > others[j].n
		}
		return others[i].wh < others[j].wh
	})
	for _, o := range others {
		if n <= 0 {
			break
		}
		q := min(n, o.n)
		taken[whsku{o.wh, sku}] += q
		n -= q
	}
	taken[ws] += n // beyond every warehouse: counted where it was asked
}
