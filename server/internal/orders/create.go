package orders

import (
	"context"
	"fmt"
)

// Taking orders: admission against what can ship, idempotency keys.

// Create takes an order from a channel. It is admitted (open, reserving
// its lines) when its warehouse can ship every line once every open
// reservation is met and the channel is offered that much (its share,
// its cap); an order naming a checkout hold (NewOrder.Hold) converts it
// and is admitted with the hold's units. Otherwise the channel's policy
// decides: refuse (a *Refusal wrapping ErrUnavailable, nothing reserved)
// or backorder (taken as backordered, reserving nothing until stock
// arrives). A replay of the same channel and external id returns the
// order it created (created false); the same external id with other
// lines is ErrConflict.
func (s *Service) Create(ctx context.Context, n NewOrder) (Order, bool, error) {
	if err := n.Validate(); err != nil {
		return Order{}, false, err
	}
	r := &request{kind: kindOrder, n: n}
	s.submit(ctx, r)
	return s.answer(ctx, r, "channel %s already sent external id %s with other lines (order %s/%s)")
}

// answer turns an intake request's outcome into the caller's result.
func (s *Service) answer(ctx context.Context, r *request, otherLines string) (Order, bool, error) {
	if r.existing != nil {
		prev, err := s.Get(ctx, r.existing.wh, r.existing.id)
		if err != nil {
			return Order{}, false, err
		}
		if !r.n.sameLines(&prev) {
			return prev, false, fmt.Errorf("%w: "+otherLines, ErrConflict, r.n.Channel, r.n.ExternalID, prev.Warehouse, prev.ID)
		}
		return prev, false, nil
	}
	if r.err != nil {
		return Order{}, false, r.err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.open[okey{r.o.Warehouse, r.o.ID}]; h != nil && h.Seq == r.o.Seq {
		return cloneOrder(h), true, nil // with the picks read since
	}
	return cloneOrder(&r.o), true, nil
}
