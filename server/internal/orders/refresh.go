package orders

import (
	"context"
	"fmt"

	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Recomputing reservations and ATS from one snapshot of the store.

// refresh reads into the model the orders written since the last refresh
// (catchUp), then re-reads, for the given skus, the ones those orders touch
// and, with pending, every sku and key marked dirty, the picks of their
// open orders and their stock, from one snapshot of the store, and
// recomputes reservations and ATS. It returns the skus whose reservation
// changed.
func (s *Service) refresh(ctx context.Context, in map[whsku]struct{}, pending bool) (_ map[whsku]bool, err error) {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()

	var dirtyGroups map[stockGroup]struct{}
	set := make(map[whsku]struct{}, len(in))
	for ws := range in {
		set[ws] = struct{}{}
	}
	if pending { // taken under refreshMu: a refresh that follows sees them applied
		s.mu.Lock()
		dirty := s.dirty
		dirtyGroups, s.dirty, s.dirtyG = s.dirtyG, map[whsku]struct{}{}, map[stockGroup]struct{}{}
		s.mu.Unlock()
		for ws := range dirty {
			set[ws] = struct{}{}
		}
	}
	defer func() {
		if err == nil {
			return
		}
		s.mu.Lock() // for the next flush
		s.markDirty(set)
		for g := range dirtyGroups {
			s.dirtyG[g] = struct{}{}
		}
		s.mu.Unlock()
	}()
	aff, err := s.catchUp()
	if err != nil {
		return nil, err
	}
	for ws := range aff {
		set[ws] = struct{}{}
	}
	for g := range dirtyGroups {
		set[whsku{g.wh, g.sku}] = struct{}{}
	}
	if len(set) == 0 {
		return nil, nil
	}

	s.mu.Lock()
	var refs []store.OrderRef
	seen := map[okey]bool{}
	groups := map[stockGroup]bool{}
	for ws := range set {
		for ok := range s.bySKU[ws] {
			if !seen[ok] {
				seen[ok] = true
				refs = append(refs, store.OrderRef{Warehouse: ok.wh, ID: ok.id})
			}
		}
		for _, l := range s.stock[ws] {
			groups[stockGroup{ws.wh, l.loc, ws.sku}] = true
		}
	}
	for g := range s.dirtyG { // changes not flushed yet: read them now too
		if _, in := set[whsku{g.wh, g.sku}]; in {
			groups[g] = true
			delete(s.dirtyG, g)
		}
	}
	s.mu.Unlock()
	for g := range dirtyGroups {
		groups[g] = true
	}
	queries := make([]store.StockGroup, 0, len(groups))
	for g := range groups {
		queries = append(queries, store.StockGroup{Warehouse: g.wh, Location: g.loc, SKU: g.sku})
	}
	picks := make(map[store.OrderRef][]store.OrderPick, len(refs))
	var rows []store.StockRow
	err = s.st.View(func(tx store.Tx) error {
		for _, r := range refs {
			ps, err := tx.OrderPicks(r.Warehouse, r.ID)
			if err != nil {
				return err
			}
			picks[r] = ps
		}
		var err error
		rows, err = tx.StockGroups(queries) // one statement, not one per group
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read picks and stock: %w", err)
	}

	got := groupRows(rows)
	s.mu.Lock()
	for g := range groups { // each read whole: its sums replace the model's
		if n, ok := got[g]; ok || s.hasGroup(g) {
			s.setGroup(g, n)
		}
	}
	for ref, ps := range picks {
		if o := s.open[okey{ref.Warehouse, ref.ID}]; o != nil {
			applyPicks(o, ps, func(sku string) bool { _, in := set[whsku{ref.Warehouse, sku}]; return in })
		}
	}
	changed := map[whsku]bool{}
	md := s.masterView()
	for ws := range set {
		if s.recomputeSKU(ws, md) {
			changed[ws] = true
		}
	}
	s.publish = true
	active := s.active
	stock := make(map[whsku]int64, len(set))
	for ws := range set {
		stock[ws] = s.ats[ws].OnHand
	}
	s.mu.Unlock()

	if len(changed) > 0 && active {
		// A snapshot built meanwhile shows the new reservations with the
		// old sequence: it accounts for no order it does not hold.
		if err := s.bumpSeq(); err != nil {
			s.log.Error("reservation sequence not advanced", "err", err)
		}
	}
	s.checkOversell(ctx, set)
	if s.cfg.OnStock != nil && active {
		for ws, n := range stock {
			s.cfg.OnStock(ws.wh, ws.sku, n)
		}
	}
	return changed, nil
}

// recomputeSKU recomputes the reservation and ATS of one sku of one
// warehouse and reports whether the reservation changed; s.mu is held.
func (s *Service) recomputeSKU(ws whsku, md *masterView) bool {
	a := s.computeATS(ws, md)
	before := s.reserved[ws]
	if a.Reserved == 0 {
		delete(s.reserved, ws)
	} else {
		s.reserved[ws] = a.Reserved
	}
	s.ats[ws] = a
	s.whs[ws.wh] = struct{}{}
	return before != a.Reserved
}

// computeATS computes the reservation and ATS of one sku of one warehouse
// from the model, changing nothing; s.mu is held.
func (s *Service) computeATS(ws whsku, md *masterView) ATS {
	var res int64
	for ok := range s.bySKU[ws] {
		for _, l := range s.open[ok].Lines {
			if l.SKU == ws.sku {
				res += l.Reserved
			}
		}
	}
	a := ATS{Warehouse: ws.wh, SKU: ws.sku, Reserved: res, Safety: md.safety(ws.wh, ws.sku)}
	for _, l := range s.stock[ws] {
		// A negative key is usually a pick booked at the wrong bin: the
		// units left another bin of the sku. Summing as recorded keeps ATS
		// at what the records can ship; clamping would offer them twice.
		a.OnHand += l.onHand
		if md.sellable(ws.wh, l.loc) { // on hold, damaged, expired: on hand, not for sale (l.avail leaves them out)
			a.Sellable += l.avail
		}
	}
	a.Available = a.Sellable - a.Reserved - a.Safety
	return a
}

// applyPicks attributes picks to the order's lines: a pick naming a line of
// the order counts there; one naming only the order goes to the lines of
// its sku in line order, filling each up to its quantity (the last takes
// any excess). Only lines whose sku passes `only` are updated.
func applyPicks(o *Order, picks []store.OrderPick, only func(sku string) bool) {
	picked := make([]int64, len(o.Lines))
	byLine := map[uint32]int{}
	for i, l := range o.Lines {
		byLine[l.Line] = i
	}
	var loose []store.OrderPick
	for _, p := range picks {
		if i, ok := byLine[p.Line]; ok && p.Line != 0 && o.Lines[i].SKU == p.SKU {
			picked[i] += p.Qty
			continue
		}
		loose = append(loose, p)
	}
	for _, p := range loose {
		last := -1
		qty := p.Qty
		for i, l := range o.Lines {
			if l.SKU != p.SKU {
				continue
			}
			last = i
			if room := l.Qty - picked[i]; room > 0 {
				take := min(room, qty)
				picked[i] += take
				qty -= take
			}
			if qty == 0 {
				break
			}
		}
		if last >= 0 && qty > 0 {
			picked[last] += qty
		}
	}
	for i := range o.Lines {
		l := &o.Lines[i]
		if !only(l.SKU) {
			continue
		}
		l.Picked = picked[i]
		l.Reserved = 0
		if reserving(o.Status) && l.Here() > l.Picked {
			l.Reserved = l.Here() - l.Picked
		}
	}
}

// masterView reads sellable locations and safety stock through Config's
// functions — each a store read — once per location and per sku until the
// master data changes: Invalidate, which every change of master data
// (this replica's or another's, after its commit) and every Reload calls,
// drops what it read, and then recomputes everything from fresh reads.
// Without it every recompute read them again, a read per sku and per
// location each time stock moved (on PostgreSQL, three round trips each),
// for values that change only with the master data. It is bounded
// (maxMasterView): past that it starts empty again. s.mu guards it.
type masterView struct {
	cfg  *Config
	sell map[[2]string]bool
	safe map[whsku]int64
}

// maxMasterView bounds the locations and skus a masterView keeps.
const maxMasterView = 1 << 17

// masterView returns the model's view of the master data; s.mu is held.
func (s *Service) masterView() *masterView {
	if s.mdv == nil || len(s.mdv.sell)+len(s.mdv.safe) > maxMasterView {
		s.mdv = &masterView{cfg: &s.cfg, sell: map[[2]string]bool{}, safe: map[whsku]int64{}}
	}
	return s.mdv
}

func (m *masterView) sellable(wh, loc string) bool {
	k := [2]string{wh, loc}
	v, ok := m.sell[k]
	if !ok {
		v = m.cfg.Sellable(wh, loc)
		m.sell[k] = v
	}
	return v
}

func (m *masterView) safety(wh, sku string) int64 {
	k := whsku{wh, sku}
	v, ok := m.safe[k]
	if !ok {
		v = m.cfg.Safety(wh, sku)
		m.safe[k] = v
	}
	return v
}
