package orders

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// Checkout holds: units held for a channel's checkout for a few minutes,
// granted or refused at once, converted by the order that names them,
// returned to the pool when they expire.

// Hold TTL bounds.
const (
	DefaultHoldTTL = 10 * time.Minute
	MaxHoldTTL     = 24 * time.Hour
)

// NewHold is a channel's request to hold units at checkout.
type NewHold struct {
	Warehouse string `json:"warehouse"`
	Channel   string `json:"channel"`
	// CheckoutID is the channel's id of the checkout: a replay with the
	// same one returns the hold it made.
	CheckoutID string `json:"checkout_id"`
	// ID is the hold's id (default "hold-{channel}-{checkout_id}"); an
	// order converts it by naming it (NewOrder.Hold).
	ID    string `json:"id,omitempty"`
	Lines []Line `json:"lines"`
	// TTLSeconds is how long the units are held (default 600, at most
	// 86400).
	TTLSeconds int64 `json:"ttl_s,omitempty"`
}

// order returns the hold as an order-shaped request, validated.
func (h *NewHold) order() (NewOrder, time.Duration, error) {
	ttl := DefaultHoldTTL
	if h.TTLSeconds != 0 {
		ttl = time.Duration(h.TTLSeconds) * time.Second
	}
	n := NewOrder{Warehouse: h.Warehouse, Channel: h.Channel, ExternalID: h.CheckoutID, ID: h.ID, Lines: h.Lines}
	if n.ID == "" && h.Channel != "" && h.CheckoutID != "" {
		n.ID = "hold-" + h.Channel + "-" + h.CheckoutID
	}
	err := n.Validate()
	if h.TTLSeconds < 0 || ttl > MaxHoldTTL {
		bad := fmt.Errorf("%w: ttl_s: %d must be 1..%d", ErrInvalid, h.TTLSeconds, int64(MaxHoldTTL/time.Second))
		if err == nil {
			err = bad
		} else {
			err = fmt.Errorf("%w; %s", err, bad.Error()[len(ErrInvalid.Error())+2:])
		}
	}
	return n, ttl, err
}

// Hold holds units for a channel's checkout: granted (status "held", its
// lines reserved until ExpiresMS) when its warehouse can ship them once
// every reservation is met and the channel is offered that much, else
// refused at once with what is available (a *Refusal wrapping
// ErrUnavailable; nothing is held). A replay of the same channel and
// checkout id returns the hold it made (created false).
func (s *Service) Hold(ctx context.Context, h NewHold) (Order, bool, error) {
	n, ttl, err := h.order()
	if err != nil {
		return Order{}, false, err
	}
	owner, err := s.ownerOf(&n)
	if err != nil {
		return Order{}, false, err
	}
	r := &request{kind: kindHold, n: n, ttl: ttl.Milliseconds(), owner: owner}
	s.submit(ctx, r)
	return s.answer(ctx, r, "channel %s already held checkout %s with other lines (hold %s/%s)")
}

// ReleaseHold gives a hold's units back to the pool before it expires.
func (s *Service) ReleaseHold(ctx context.Context, wh, id string) (Order, error) {
	o, err := s.Get(ctx, wh, id)
	if err != nil {
		return Order{}, err
	}
	if o.Status != StatusHeld && o.Status != StatusCancelled {
		return Order{}, fmt.Errorf("%w: %s/%s is %s, not a hold that can be released", ErrConflict, wh, id, o.Status)
	}
	return s.close(ctx, wh, id, StatusCancelled, nil)
}

// ExpireHolds returns the units of every hold past its expiry to the pool
// (status "expired") and reports how many it expired. The active replica
// runs it every second (Run); an expired hold no order can convert.
func (s *Service) ExpireHolds(ctx context.Context) (int, error) {
	now := s.cfg.Now().UnixMilli()
	s.mu.Lock()
	var due []okey
	for k, o := range s.open {
		if o.Status == StatusHeld && o.ExpiresMS <= now {
			due = append(due, k)
		}
	}
	s.mu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i].wh+"\x00"+due[i].id < due[j].wh+"\x00"+due[j].id })
	n := 0
	for _, k := range due {
		if _, err := s.close(ctx, k.wh, k.id, StatusExpired, nil); err != nil {
			return n, fmt.Errorf("expire hold %s/%s: %w", k.wh, k.id, err)
		}
		n++
	}
	return n, nil
}

// ReleaseBackorders releases backordered orders to picking, first come
// first served: in the order they were taken, each whose warehouse can now
// ship all of it once every reservation is met becomes open. An order that
// cannot be met keeps the skus it needs from the orders after it. A
// backordered order its warehouse cannot ship alone is released when the
// owner's other warehouses can ship the rest (parts there, as at intake).
// The
// units an open order's lines backordered after a short pick are released
// the same way, in the same queue. It returns the orders released.
func (s *Service) ReleaseBackorders(ctx context.Context) []Order {
	owners := s.splitOwners()
	s.mu.Lock()
	var waiting []*Order
	for _, o := range s.open {
		if o.Status == StatusBackordered || o.Status == StatusOpen && backorderedOf(o) != nil {
			waiting = append(waiting, o)
		}
	}
	sort.Slice(waiting, func(i, j int) bool {
		if waiting[i].CreatedMS != waiting[j].CreatedMS {
			return waiting[i].CreatedMS < waiting[j].CreatedMS
		}
		return waiting[i].Seq < waiting[j].Seq
	})
	var reqs []*request
	taken := map[whsku]int64{}
	blocked := map[whsku]bool{}
	for _, o := range waiting {
		need := needOf(o)
		if o.Status == StatusOpen {
			need = backorderedOf(o)
		}
		ok, pooled := true, o.Status == StatusBackordered
		for sku, n := range need {
			ws := whsku{o.Warehouse, sku}
			if blocked[ws] {
				ok, pooled = false, false
			}
			if n > s.ats[ws].Available-taken[ws] {
				ok = false
			}
			if pooled && n > s.pooled(o, sku, owners, taken) { // the owner's other warehouses may ship it (allocate.go)
				pooled = false
			}
		}
		if !ok && !pooled {
			for sku := range need {
				blocked[whsku{o.Warehouse, sku}] = true
			}
			continue
		}
		for sku, n := range need {
			s.takePooled(o.Warehouse, sku, n, taken)
		}
		reqs = append(reqs, &request{kind: kindRelease, n: NewOrder{Warehouse: o.Warehouse, ID: o.ID, Channel: o.Channel, ExternalID: o.ExternalID, Lines: o.Lines}})
	}
	s.mu.Unlock()
	if len(reqs) == 0 {
		return nil
	}
	s.submit(ctx, reqs...)
	var out []Order
	for _, r := range reqs {
		if r.created {
			out = append(out, r.o)
		}
	}
	return out
}
