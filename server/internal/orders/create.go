package orders

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Taking orders: reservations at creation, idempotency keys, shortfalls.

// Create takes an order from a channel and reserves its lines at once. A
// replay of the same channel and external id returns the order it created
// (created false); the same external id with other lines is ErrConflict.
func (s *Service) Create(ctx context.Context, n NewOrder) (Order, bool, error) {
	if err := n.Validate(); err != nil {
		return Order{}, false, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	now := s.cfg.Now().UnixMilli()
	o := Order{Warehouse: n.Warehouse, ID: n.ID, Channel: n.Channel, ExternalID: n.ExternalID, Lines: n.Lines, Status: StatusOpen, CreatedMS: now, UpdatedMS: now}
	set := map[whsku]struct{}{}
	for _, l := range o.Lines {
		set[whsku{o.Warehouse, l.SKU}] = struct{}{}
	}
	// The transaction judges from the model which lines cannot be met
	// (Short): bring the stock and reservations of the order's skus up to
	// date first.
	if _, err := s.refresh(ctx, set, false); err != nil {
		s.log.Warn("stock of a new order's skus not read again; its shortfall is judged from the model as it is", "order", o.ID, "err", err)
	}
	var (
		existing  *okey
		caught    []Order
		rechecked []conflicts.Conflict
		channel   Channel
		view      Order // the order as written, its picks applied
	)
	s.ordMu.Lock()
	s.mu.Lock()
	cursor := s.cursor
	s.mu.Unlock()
	err := s.st.Update(func(tx store.Tx) error {
		existing, caught, rechecked, channel, view = nil, nil, nil, Channel{}, Order{}
		o.Short = nil
		ref, found, err := tx.Get(idemKey(n.Channel, n.ExternalID))
		if err != nil {
			return err
		}
		if found {
			wh, id, _ := split2(ref)
			existing = &okey{wh, id}
			return errExists
		}
		var other Order
		if found, err := getCBOR(tx, orderKey(o.Warehouse, o.ID), &other); err != nil {
			return err
		} else if found {
			return fmt.Errorf("%w: order id %q of warehouse %s belongs to channel %s, external id %s; give another id", ErrConflict, o.ID, o.Warehouse, other.Channel, other.ExternalID)
		}
		if caught, o.Seq, err = nextSeq(tx, cursor); err != nil {
			return err
		}
		ps, err := tx.OrderPicks(o.Warehouse, o.ID) // picks may come before their order
		if err != nil {
			return err
		}
		view = cloneOrder(&o)
		applyPicks(&view, ps, func(string) bool { return true })
		s.mu.Lock()
		view.Short = s.shortfall(&view, caught)
		s.mu.Unlock()
		o.Short = view.Short
		if err := putCBOR(tx, orderKey(o.Warehouse, o.ID), stored(&o)); err != nil {
			return err
		}
		if err := tx.Set(openKey(o.Warehouse, o.ID), []byte{}); err != nil {
			return err
		}
		if err := tx.Set(idemKey(n.Channel, n.ExternalID), orderRef(o.Warehouse, o.ID)); err != nil {
			return err
		}
		if err := logOrder(tx, o.Warehouse, o.ID, o.Seq, 0); err != nil {
			return err
		}
		if found, err := getCBOR(tx, channelKey(n.Channel), &channel); err != nil {
			return err
		} else if !found {
			channel = Channel{Name: n.Channel, SharePct: 100, UpdatedMS: now}
			if err := putCBOR(tx, channelKey(n.Channel), channel); err != nil {
				return err
			}
		}
		if rechecked, err = tx.PutOrder(stored(&o)); err != nil {
			return err
		}
		if s.cfg.OnOrderTx != nil {
			return s.cfg.OnOrderTx(tx, cloneOrder(&view), "created")
		}
		return nil
	})
	if err != nil {
		s.ordMu.Unlock()
		if errors.Is(err, errExists) {
			prev, err := s.Get(ctx, existing.wh, existing.id)
			if err != nil {
				return Order{}, false, err
			}
			if !n.sameLines(&prev) {
				return prev, false, fmt.Errorf("%w: channel %s already sent external id %s with other lines (order %s/%s)", ErrConflict, n.Channel, n.ExternalID, prev.Warehouse, prev.ID)
			}
			return prev, false, nil
		}
		if errors.Is(err, ErrConflict) {
			return Order{}, false, err
		}
		return Order{}, false, fmt.Errorf("store order: %w", err)
	}
	// The order counts in every snapshot from here on: the model holds it
	// (with the picks read in its transaction) and every order written
	// before it, before it claims its sequence.
	s.mu.Lock()
	s.markDirty(s.applyRecords(caught))
	if _, ok := s.channels[n.Channel]; !ok {
		s.channels[n.Channel] = channel
	}
	held := cloneOrder(&view)
	if prev := s.open[okey{o.Warehouse, o.ID}]; prev != nil {
		s.removeOpen(prev)
	}
	s.addOpen(&held)
	md := s.masterView()
	for ws := range set {
		s.recomputeSKU(ws, md)
	}
	s.seq, s.cursor = max(s.seq, o.Seq), max(s.cursor, o.Seq)
	s.publish = true
	s.mu.Unlock()
	s.ordMu.Unlock()
	if s.cfg.OnConflict != nil {
		for _, c := range rechecked { // picks that came before the order, beyond its lines
			s.cfg.OnConflict(c)
		}
	}

	if _, err := s.refresh(ctx, set, false); err != nil {
		s.log.Error("reservation of a new order not computed yet; the next recompute will", "order", o.ID, "err", err)
		s.mu.Lock()
		s.markDirty(set)
		s.mu.Unlock()
	}
	s.mu.Lock()
	h := s.open[okey{o.Warehouse, o.ID}]
	if h == nil || h.Seq != o.Seq { // closed meanwhile by another replica
		h = &held
	}
	h.Short = append([]string(nil), view.Short...)
	out := cloneOrder(h)
	s.publish = true
	s.mu.Unlock()
	s.signal()
	if s.cfg.OnOrder != nil {
		s.cfg.OnOrder(out, "created")
	}
	return out, true, nil
}

// shortfall returns, sorted, the skus of o (a new order, its picks
// applied) whose available-to-sell the model puts below zero once o
// reserves what it does, counting the orders of other replicas its
// transaction caught up with (caught) as applyRecords will; s.mu is held.
func (s *Service) shortfall(o *Order, caught []Order) []string {
	need := map[string]int64{}
	for _, l := range o.Lines {
		need[l.SKU] += l.Reserved
	}
	reservedOf := func(x *Order, sku string, qty bool) int64 {
		var n int64
		for _, l := range x.Lines {
			if l.SKU == sku {
				if qty {
					n += l.Qty
				} else {
					n += l.Reserved
				}
			}
		}
		return n
	}
	var out []string
	md := s.masterView()
	for sku, n := range need {
		ws := whsku{o.Warehouse, sku}
		a := s.computeATS(ws, md)
		res := a.Reserved + n
		if held := s.open[okey{o.Warehouse, o.ID}]; held != nil {
			res -= reservedOf(held, sku, false)
		}
		for i := range caught {
			rec := &caught[i]
			if rec.Warehouse != o.Warehouse || rec.ID == o.ID {
				continue
			}
			held := s.open[okey{rec.Warehouse, rec.ID}]
			if held != nil && rec.Status == StatusOpen && held.Seq == rec.Seq {
				continue
			}
			if held != nil {
				res -= reservedOf(held, sku, false)
			}
			if rec.Status == StatusOpen {
				res += reservedOf(rec, sku, true) // whole until its picks are read
			}
		}
		if a.Sellable-res-a.Safety < 0 {
			out = append(out, sku)
		}
	}
	sort.Strings(out)
	return out
}

var errExists = errors.New("idempotency key exists")
