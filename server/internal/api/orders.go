package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/shelfsync/shelfsync/protocol"

	"github.com/shelfsync/shelfsync/server/internal/events"
	"github.com/shelfsync/shelfsync/server/internal/orders"
)

// Orders is the order model the order, availability and channel routes use.
type Orders interface {
	Create(ctx context.Context, n orders.NewOrder) (orders.Order, bool, error)
	Get(ctx context.Context, wh, id string) (orders.Order, error)
	List(ctx context.Context, q orders.Query) ([]orders.Order, bool, error)
	// CreatedSince lists when the orders matching q were created, from
	// sinceMS on (the orders-per-hour view, workday.go).
	CreatedSince(ctx context.Context, q orders.Query, sinceMS int64) ([]int64, error)
	Ship(ctx context.Context, wh, id string) (orders.Order, error)
	Cancel(ctx context.Context, wh, id string) (orders.Order, error)
	Hold(ctx context.Context, h orders.NewHold) (orders.Order, bool, error)
	ReleaseHold(ctx context.Context, wh, id string) (orders.Order, error)
	Availability(wh, sku string) ([]orders.ATS, []orders.Total, uint64)
	Channels() []orders.Channel
	PutChannel(ctx context.Context, c orders.Channel) (orders.Channel, error)
	Snapshot(channel string) (orders.Snapshot, bool)
}

var _ Orders = (*orders.Service)(nil)

// orderError maps the order model's errors to HTTP statuses.
func orderError(w http.ResponseWriter, err error) {
	var refused *orders.Refusal
	switch {
	case errors.As(err, &refused):
		writeJSON(w, http.StatusConflict, struct {
			Error string `json:"error"`
			*orders.Refusal
		}{err.Error(), refused})
	case errors.Is(err, orders.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, orders.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, orders.ErrConflict):
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// page reads limit (default def, at most 1000) and offset.
func page(w http.ResponseWriter, r *http.Request, def int) (limit, offset int, ok bool) {
	limit, ok1 := intParam(r, "limit", def)
	offset, ok2 := intParam(r, "offset", 0)
	if !ok1 || !ok2 || limit > 1000 {
		writeError(w, http.StatusBadRequest, "limit (≤ 1000) and offset must be non-negative integers")
		return 0, 0, false
	}
	if limit == 0 {
		limit = def
	}
	return limit, offset, true
}

func (h *Handler) registerOrders() {
	h.handle("POST /api/v1/orders", func(w http.ResponseWriter, r *http.Request) {
		svc := h.d.Orders
		var n orders.NewOrder
		if !decodeBody(w, r, &n) {
			return
		}
		if !h.warehouseKnown(w, r, n.Warehouse) || !h.linesOwned(w, r, n.Warehouse, n.Lines) || !h.holdOwned(w, r, n.Warehouse, n.Hold) {
			return
		}
		o, created, err := svc.Create(r.Context(), n)
		if created && o.Status == orders.StatusOpen { // a backorder is routed when released
			h.routeOrder(r.Context(), o.Warehouse, o.ID)
			for _, wh := range o.Parts { // what other warehouses ship: their gateways pick it
				h.routeOrder(r.Context(), wh, o.ID)
			}
		}
		writeTaken(w, o, created, err)
	})
	h.handle("POST /api/v1/holds", func(w http.ResponseWriter, r *http.Request) {
		var n orders.NewHold
		if !decodeBody(w, r, &n) {
			return
		}
		if !h.warehouseKnown(w, r, n.Warehouse) || !h.linesOwned(w, r, n.Warehouse, n.Lines) {
			return
		}
		o, created, err := h.d.Orders.Hold(r.Context(), n)
		writeTaken(w, o, created, err)
	})
	h.handle("DELETE /api/v1/holds/{warehouse}/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !h.orderOwned(w, r) {
			return
		}
		o, err := h.d.Orders.ReleaseHold(r.Context(), r.PathValue("warehouse"), r.PathValue("id"))
		if err != nil {
			orderError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, o)
	})
	h.handle("GET /api/v1/orders", func(w http.ResponseWriter, r *http.Request) {
		svc := h.d.Orders
		limit, offset, ok := page(w, r, 100)
		if !ok {
			return
		}
		q := r.URL.Query()
		owner, ok := ownerScope(w, r, q.Get("owner"))
		if !ok {
			return
		}
		os, more, err := svc.List(r.Context(), orders.Query{Warehouse: q.Get("warehouse"), Channel: q.Get("channel"), Status: orders.Status(q.Get("status")), Owner: owner, Limit: limit, Offset: offset})
		if err != nil {
			orderError(w, err)
			return
		}
		if os == nil {
			os = []orders.Order{}
		}
		writeJSON(w, http.StatusOK, listBody(os, more, offset+len(os)))
	})
	h.handle("GET /api/v1/orders/{warehouse}/{id}", func(w http.ResponseWriter, r *http.Request) {
		svc := h.d.Orders
		o, err := svc.Get(r.Context(), r.PathValue("warehouse"), r.PathValue("id"))
		if err != nil {
			orderError(w, err)
			return
		}
		if !ownedBy(w, r, o.Owner) {
			return
		}
		writeJSON(w, http.StatusOK, o)
	})
	for _, action := range []string{"ship", "cancel"} {
		h.handle("POST /api/v1/orders/{warehouse}/{id}/"+action, func(w http.ResponseWriter, r *http.Request) {
			svc := h.d.Orders
			f := svc.Ship
			if action == "cancel" {
				f = svc.Cancel
			}
			if !h.orderOwned(w, r) {
				return
			}
			o, err := f(r.Context(), r.PathValue("warehouse"), r.PathValue("id"))
			if err != nil {
				orderError(w, err)
				return
			}
			writeJSON(w, http.StatusOK, o)
		})
	}
}

// writeTaken answers a new order or hold: 201 when created, 200 for a
// replay of the same channel and idempotency key, else the error.
func writeTaken(w http.ResponseWriter, o orders.Order, created bool, err error) {
	switch {
	case err != nil:
		orderError(w, err)
	case created:
		writeJSON(w, http.StatusCreated, o)
	default:
		writeJSON(w, http.StatusOK, o)
	}
}

// warehouseKnown answers 404 for a valid warehouse id that is unknown; an
// invalid one is left to the order model's validation (400).
func (h *Handler) warehouseKnown(w http.ResponseWriter, r *http.Request, wh string) bool {
	if protocol.ValidateID(wh) != nil {
		return true
	}
	known, err := h.knownWarehouse(r.Context(), wh)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return false
	}
	if !known {
		writeError(w, http.StatusNotFound, "warehouse "+wh+" is unknown: create it first (its settings, locations or catalog under /api/v1/masterdata/"+wh+"/…) or check the name")
		return false
	}
	return true
}

// listBody is the shape of every paginated list: items, and next_offset
// when more follow.
func listBody[T any](items []T, more bool, next int) map[string]any {
	out := map[string]any{"items": items}
	if more {
		out["next_offset"] = next
	}
	return out
}

// routeOrder turns a new order's lines into pick tasks at the locations
// holding the stock (docs/DESIGN.md, "Inventory behaviour the server
// owns": pick routing), when the warehouse keeps master data. The order stands either way: a line that cannot be routed
// yet stays open and can be routed later (POST /api/v1/routing/…).
func (h *Handler) routeOrder(ctx context.Context, wh, id string) {
	if h.router == nil {
		return
	}
	res, err := h.router.RouteOrder(ctx, wh, id)
	if err != nil {
		h.d.Logger.Warn("order not routed to pick tasks; route it again once stock or locations are known", "warehouse", wh, "order", id, "err", err)
		return
	}
	if len(res.Tasks) > 0 {
		h.publish(events.Event{Tasks: []string{wh}})
	}
}

// linesOwned answers 403 unless every line's sku belongs, by its item's
// master data, to the owner of a token bound to one: a client orders and
// holds only its own goods.
func (h *Handler) linesOwned(w http.ResponseWriter, r *http.Request, wh string, lines []orders.Line) bool {
	o := tokenOwner(r)
	if o == "" {
		return true
	}
	for _, l := range lines {
		lo, err := h.skuOwner(r.Context(), wh, l.SKU)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return false
		}
		if lo != o {
			writeError(w, http.StatusForbidden, "this token is bound to owner "+o+": sku "+l.SKU+" in "+wh+" is not that owner's item")
			return false
		}
	}
	return true
}

// holdOwned answers 403 when the checkout hold an order converts (id, ""
// for none) belongs to another owner than the token's.
func (h *Handler) holdOwned(w http.ResponseWriter, r *http.Request, wh, id string) bool {
	if id == "" || tokenOwner(r) == "" {
		return true
	}
	o, err := h.d.Orders.Get(r.Context(), wh, id)
	if errors.Is(err, orders.ErrNotFound) || errors.Is(err, orders.ErrInvalid) {
		return true // the order model answers it
	}
	if err != nil {
		orderError(w, err)
		return false
	}
	return ownedBy(w, r, o.Owner)
}

// orderOwned answers 403 unless the order (or hold) of the path's
// warehouse and id belongs to the owner of a token bound to one; an order
// that does not exist is left to the handler (404).
func (h *Handler) orderOwned(w http.ResponseWriter, r *http.Request) bool {
	if tokenOwner(r) == "" {
		return true
	}
	o, err := h.d.Orders.Get(r.Context(), r.PathValue("warehouse"), r.PathValue("id"))
	if errors.Is(err, orders.ErrNotFound) {
		return true
	}
	if err != nil {
		orderError(w, err)
		return false
	}
	return ownedBy(w, r, o.Owner)
}
