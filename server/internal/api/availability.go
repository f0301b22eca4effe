package api

import (
	"context"
	"net/http"
	"slices"

	"github.com/shelfsync/shelfsync/server/internal/orders"
)

func (h *Handler) registerAvailability() {
	h.handle("GET /api/v1/availability", func(w http.ResponseWriter, r *http.Request) {
		svc := h.d.Orders
		q := r.URL.Query()
		owner, ok := ownerScope(w, r, q.Get("owner"))
		if !ok {
			return
		}
		rows, totals, seq := svc.Availability(q.Get("warehouse"), q.Get("sku"))
		if owner != "" {
			all, _, _ := svc.Availability("", q.Get("sku"))
			owned, err := h.ownedSKUs(r.Context(), owner, all)
			if err != nil {
				writeError(w, http.StatusInternalServerError, err.Error())
				return
			}
			rows = slices.DeleteFunc(rows, func(a orders.ATS) bool { return !owned[whSKU{a.Warehouse, a.SKU}] })
			totals = slices.DeleteFunc(totals, func(t orders.Total) bool { return !owned[whSKU{"", t.SKU}] })
		}
		if rows == nil {
			rows = []orders.ATS{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"seq": seq, "items": rows, "totals": totals})
	})
	h.handle("GET /api/v1/channels", func(w http.ResponseWriter, r *http.Request) {
		svc := h.d.Orders
		writeJSON(w, http.StatusOK, map[string]any{"items": svc.Channels()})
	})
	h.handle("PUT /api/v1/channels/{channel}", func(w http.ResponseWriter, r *http.Request) {
		svc := h.d.Orders
		var body struct {
			SharePct   *float64 `json:"share_pct"`
			Cap        *int64   `json:"cap"`
			Warehouses []string `json:"warehouses"`
			Policy     string   `json:"policy"`
			// MinShelfDays is the channel's own minimum remaining shelf life.
			MinShelfDays int `json:"min_shelf_days"`
		}
		if !decodeBody(w, r, &body) {
			return
		}
		c := orders.Channel{Name: r.PathValue("channel"), SharePct: 100, Cap: body.Cap, Warehouses: body.Warehouses, Policy: body.Policy,
			MinShelfDays: body.MinShelfDays}
		if body.SharePct != nil {
			c.SharePct = *body.SharePct
		}
		c, err := svc.PutChannel(r.Context(), c)
		if err != nil {
			orderError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, c)
	})
	h.handle("GET /api/v1/channels/{channel}/availability", func(w http.ResponseWriter, r *http.Request) {
		svc := h.d.Orders
		owner, ok := ownerScope(w, r, r.URL.Query().Get("owner"))
		if !ok {
			return
		}
		sn, found := svc.Snapshot(r.PathValue("channel"))
		if !found {
			writeError(w, http.StatusNotFound, "no such channel: it appears with its first order, or with PUT /api/v1/channels/{channel}")
			return
		}
		if owner != "" {
			all, _, _ := svc.Availability("", "")
			owned, err := h.ownedSKUs(r.Context(), owner, all)
			if err != nil {
				writeError(w, http.StatusInternalServerError, err.Error())
				return
			}
			sn = sn.ForOwner(owner, func(sku string) bool { return owned[whSKU{"", sku}] })
		}
		writeJSON(w, http.StatusOK, sn)
	})
}

type whSKU struct{ wh, sku string }

// ownedSKUs returns which of the rows' (warehouse, sku) pairs belong to
// owner by their item's master data, and under ("", sku) each sku that
// belongs to owner in some warehouse (a sku's availability is the owner's
// availability: docs/DESIGN.md, "Owners").
func (h *Handler) ownedSKUs(ctx context.Context, owner string, rows []orders.ATS) (map[whSKU]bool, error) {
	out := map[whSKU]bool{}
	for _, a := range rows {
		o, err := h.skuOwner(ctx, a.Warehouse, a.SKU)
		if err != nil {
			return nil, err
		}
		if o == owner {
			out[whSKU{a.Warehouse, a.SKU}] = true
			out[whSKU{"", a.SKU}] = true
		}
	}
	return out, nil
}
