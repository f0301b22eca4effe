package orders

import (
	"context"
	"fmt"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Reading orders: one, or a filtered page.

// Get returns an order with its picks and reservations.
func (s *Service) Get(_ context.Context, wh, id string) (Order, error) {
	s.mu.Lock()
	if o := s.open[okey{wh, id}]; o != nil {
		out := cloneOrder(o)
		s.mu.Unlock()
		return out, nil
	}
	s.mu.Unlock()
	var o Order
	var found bool
	err := s.st.View(func(tx store.Tx) error {
		var err error
		if found, err = getCBOR(tx, orderKey(wh, id), &o); err != nil || !found {
			return err
		}
		ps, err := tx.OrderPicks(wh, id)
		if err != nil {
			return err
		}
		applyPicks(&o, ps, func(string) bool { return true })
		return nil
	})
	if err != nil {
		return Order{}, err
	}
	if !found {
		return Order{}, fmt.Errorf("order %s/%s: %w", wh, id, ErrNotFound)
	}
	return o, nil
}

// Query filters List; empty fields match everything.
type Query struct {
	Warehouse string
	Channel   string
	Status    Status
	Owner     string
	Limit     int // default 100
	Offset    int
}

// List returns orders matching q, by warehouse and id, and whether more follow.
func (s *Service) List(_ context.Context, q Query) ([]Order, bool, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	prefix := pfxOrder
	if q.Warehouse != "" {
		prefix += q.Warehouse + "\x00"
	}
	var out []Order
	var more bool
	err := s.st.View(func(tx store.Tx) error {
		out, more = nil, false
		skip := q.Offset
		if err := tx.Scan([]byte(prefix), store.ScanOptions{}, func(_, v []byte) error {
			var o Order
			if err := protocol.Unmarshal(v, &o); err != nil {
				return err
			}
			if (q.Channel != "" && o.Channel != q.Channel) || (q.Status != "" && o.Status != q.Status) || (q.Owner != "" && o.Owner != q.Owner) {
				return nil
			}
			if skip > 0 {
				skip--
				return nil
			}
			if len(out) == q.Limit {
				more = true
				return store.ErrStopScan
			}
			out = append(out, o)
			return nil
		}); err != nil {
			return err
		}
		for i := range out {
			s.mu.Lock()
			if o := s.open[okey{out[i].Warehouse, out[i].ID}]; o != nil {
				out[i] = cloneOrder(o)
				s.mu.Unlock()
				continue
			}
			s.mu.Unlock()
			ps, err := tx.OrderPicks(out[i].Warehouse, out[i].ID)
			if err != nil {
				return err
			}
			applyPicks(&out[i], ps, func(string) bool { return true })
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return out, more, nil
}
