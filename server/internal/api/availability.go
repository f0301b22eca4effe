package api

import (
	"net/http"

	"github.com/shelfsync/shelfsync/server/internal/orders"
)

func (h *Handler) registerAvailability() {
	h.handle("GET /api/v1/availability", func(w http.ResponseWriter, r *http.Request) {
		svc := h.d.Orders
		q := r.URL.Query()
		rows, totals, seq := svc.Availability(q.Get("warehouse"), q.Get("sku"))
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
		sn, found := svc.Snapshot(r.PathValue("channel"))
		if !found {
			writeError(w, http.StatusNotFound, "no such channel: it appears with its first order, or with PUT /api/v1/channels/{channel}")
			return
		}
		writeJSON(w, http.StatusOK, sn)
	})
}
