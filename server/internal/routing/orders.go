package routing

import (
	"context"
	"errors"
	"fmt"

	"github.com/shelfsync/shelfsync/server/internal/masterdata"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// orderGetter is the part of the order model routing reads today
// (store.Actions); this file is the only place that knows it.
type orderGetter interface {
	GetOrder(ctx context.Context, wh, id string) (store.Order, map[uint32]int64, error)
}

type storeOrders struct{ g orderGetter }

// StoreOrders adapts the store's minimal order model to Orders.
func StoreOrders(g orderGetter) Orders { return storeOrders{g} }

func (o storeOrders) OrderLines(ctx context.Context, wh, id string) ([]Line, error) {
	if o.g == nil {
		return nil, fmt.Errorf("order %s/%s: %w (this store keeps no orders)", wh, id, ErrNoOrder)
	}
	ord, picked, err := o.g.GetOrder(ctx, wh, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("order %s/%s: %w", wh, id, ErrNoOrder)
	}
	if err != nil {
		return nil, err
	}
	out := make([]Line, 0, len(ord.Lines))
	for _, l := range ord.Lines {
		out = append(out, Line{Line: l.Line, SKU: l.SKU, Lot: l.Lot, Qty: l.Here(), Picked: picked[l.Line], Channel: ord.Channel})
	}
	return out, nil
}

// Setup builds the master data service and the router over st, wired
// together: a short pick re-routes its line, unless opt.OnTaskShort says
// what a short pick does (the server's, which also re-routes).
func Setup(st store.Store, opt masterdata.Options) (*masterdata.Service, *Service) {
	rt := New(st, StoreOrders(st), opt.Logger)
	if opt.OnTaskShort == nil {
		opt.OnTaskShort = rt.TaskShort
	}
	return masterdata.New(st, opt), rt
}
