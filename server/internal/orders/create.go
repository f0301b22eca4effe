package orders

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
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
	owner, err := s.ownerOf(&n)
	if err != nil {
		return Order{}, false, err
	}
	r := &request{kind: kindOrder, n: n, owner: owner}
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

// ownerOf returns the owner of an order's lines: every line's item must
// have the same owner in master data (or none); an order mixing two
// owners' skus is ErrInvalid.
func (s *Service) ownerOf(n *NewOrder) (string, error) {
	if s.cfg.Owner == nil {
		return "", nil
	}
	skus := map[string][]string{} // owner → skus
	for _, l := range n.Lines {
		o, err := s.cfg.Owner(n.Warehouse, l.SKU)
		if err != nil {
			return "", fmt.Errorf("owner of sku %s: %w", l.SKU, err)
		}
		if o != "" && !slices.Contains(skus[o], l.SKU) {
			skus[o] = append(skus[o], l.SKU)
		}
	}
	if len(skus) > 1 {
		parts := make([]string, 0, len(skus))
		for o, ss := range skus {
			parts = append(parts, fmt.Sprintf("owner %s: %s", o, strings.Join(ss, ", ")))
		}
		sort.Strings(parts)
		return "", fmt.Errorf("%w: an order's skus must belong to one owner (%s); split it into one order per owner", ErrInvalid, strings.Join(parts, "; "))
	}
	for o := range skus {
		return o, nil
	}
	return "", nil
}
