package orders

import (
	"context"
	"errors"
	"fmt"

	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Closing orders: shipping and cancelling, and copies of the order record.

// Ship marks an open order shipped: what was picked left, what was not is
// released back to ATS.
func (s *Service) Ship(ctx context.Context, wh, id string) (Order, error) {
	return s.close(ctx, wh, id, StatusShipped, nil)
}

// ShipScanned is Ship for a pack session's ship notice: the same effect
// (and webhook), with the outbound label sscc ("" when none was scanned)
// and by (where it was packed) written on the order. Shipping an order
// already shipped changes nothing and returns it.
func (s *Service) ShipScanned(ctx context.Context, wh, id, sscc, by string) (Order, error) {
	return s.close(ctx, wh, id, StatusShipped, func(o *Order) { o.SSCC, o.ShippedBy = sscc, by })
}

// Cancel cancels an open order and releases its reservations. Units
// already picked stay off the shelf until a person puts them back (the
// order's lines say how many). The order's open parts in other warehouses
// (Order.Parts) are cancelled with it; each part ships on its own.
func (s *Service) Cancel(ctx context.Context, wh, id string) (Order, error) {
	o, err := s.close(ctx, wh, id, StatusCancelled, nil)
	if err != nil {
		return o, err
	}
	seen := map[string]bool{wh: true}
	next := append([]string(nil), o.Parts...)
	for len(next) > 0 { // a part re-allocated after a short pick may have parts of its own
		w := next[0]
		next = next[1:]
		if seen[w] {
			continue
		}
		seen[w] = true
		p, err := s.Get(ctx, w, id)
		if err != nil || p.Status != StatusOpen || p.Channel != o.Channel || p.ExternalID != o.ExternalID {
			continue
		}
		next = append(next, p.Parts...)
		if _, err := s.close(ctx, w, id, StatusCancelled, nil); err != nil && !errors.Is(err, ErrConflict) {
			return o, fmt.Errorf("cancel the order's part in warehouse %s: %w", w, err)
		}
	}
	return o, nil
}

// close moves an order to status to; mark, when set, also writes fields
// of the closing order.
func (s *Service) close(ctx context.Context, wh, id string, to Status, mark func(*Order)) (Order, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	now := s.cfg.Now().UnixMilli()
	var (
		o      Order
		caught []Order
		replay bool
	)
	s.ordMu.Lock()
	s.mu.Lock()
	cursor := s.cursor
	s.mu.Unlock()
	err := s.st.Update(func(tx store.Tx) error {
		o, caught, replay = Order{}, nil, false
		found, err := getCBOR(tx, orderKey(wh, id), &o)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("order %s/%s: %w", wh, id, ErrNotFound)
		}
		ps, err := tx.OrderPicks(wh, id)
		if err != nil {
			return err
		}
		if o.Status == to {
			replay = true // a replayed request
			applyPicks(&o, ps, func(string) bool { return true })
			return nil
		}
		if !mayClose(o.Status, to) {
			applyPicks(&o, ps, func(string) bool { return true })
			return fmt.Errorf("%w: order %s/%s is %s", ErrConflict, wh, id, o.Status)
		}
		prev := o.Seq
		if caught, o.Seq, err = nextSeq(tx, cursor); err != nil {
			return err
		}
		hold := o.Status == StatusHeld
		o.Status, o.UpdatedMS = to, now
		if mark != nil {
			mark(&o)
		}
		if err := s.writeRecord(tx, &o, prev); err != nil {
			return err
		}
		if hold {
			return nil // no order record of the detector's, no webhook
		}
		if _, err := tx.PutOrder(forDetector(&o)); err != nil {
			return err
		}
		applyPicks(&o, ps, func(string) bool { return true }) // nothing reserved any more
		if s.cfg.OnOrderTx != nil {
			return s.cfg.OnOrderTx(tx, cloneOrder(&o), string(to))
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrConflict) {
		s.ordMu.Unlock()
		if errors.Is(err, ErrNotFound) {
			return Order{}, err
		}
		return Order{}, fmt.Errorf("store order: %w", err)
	}
	s.mu.Lock()
	aff := s.applyRecords(append(caught, o)) // the model may not have seen another replica close it
	if err != nil || replay {
		s.markDirty(aff)
		s.mu.Unlock()
		s.ordMu.Unlock()
		if len(aff) > 0 {
			s.signal()
		}
		return o, err
	}
	set := map[whsku]struct{}{}
	for _, l := range o.Lines {
		set[whsku{wh, l.SKU}] = struct{}{}
		delete(aff, whsku{wh, l.SKU})
	}
	s.markDirty(aff) // the orders of other replicas, for their picks
	s.seq, s.cursor = max(s.seq, o.Seq), max(s.cursor, o.Seq)
	s.publish = true
	s.mu.Unlock()
	s.ordMu.Unlock()
	s.checkOversell(ctx, set)
	s.signal()
	if s.cfg.OnOrder != nil {
		s.cfg.OnOrder(o, string(to))
	}
	return o, nil
}

// mayClose reports whether an order or hold with status from may become
// to: an open order shipped or cancelled, a backordered one cancelled, a
// hold released (cancelled) or expired.
func mayClose(from, to Status) bool {
	switch from {
	case StatusOpen:
		return to == StatusShipped || to == StatusCancelled
	case StatusBackordered:
		return to == StatusCancelled
	case StatusHeld:
		return to == StatusCancelled || to == StatusExpired
	}
	return false
}

func cloneOrder(o *Order) Order {
	out := *o
	out.Lines = append([]Line(nil), o.Lines...)
	out.Short = append([]string(nil), o.Short...)
	out.Parts = append([]string(nil), o.Parts...)
	return out
}

// forDetector is the order as the store's order record (PutOrder) keeps
// it for the over-pick detector and pick routing: each line asks what this
// warehouse ships of it (what other warehouses ship is theirs to pick; a
// pick here beyond it is an over-pick).
func forDetector(o *Order) Order {
	out := stored(o)
	for i := range out.Lines {
		out.Lines[i].Qty -= out.Lines[i].Elsewhere
		out.Lines[i].Elsewhere = 0
	}
	return out
}

// stored strips computed fields before an order is written.
func stored(o *Order) Order {
	out := cloneOrder(o)
	for i := range out.Lines {
		out.Lines[i].Picked, out.Lines[i].Reserved = 0, 0
	}
	return out
}
