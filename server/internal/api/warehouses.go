package api

import (
	"net/http"
	"slices"
	"sort"

	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/orders"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// WarehouseSummary is one warehouse at a glance.
type WarehouseSummary struct {
	Warehouse      string `json:"warehouse"`
	SKUs           int    `json:"skus"`
	OnHand         int64  `json:"on_hand"`
	Available      int64  `json:"available"`
	Reserved       int64  `json:"reserved"`
	Gateways       int    `json:"gateways"`
	GatewaysOnline int    `json:"gateways_online"`
	Backlog        uint64 `json:"backlog"`
	OpenConflicts  int    `json:"open_conflicts"`
}

func (h *Handler) registerWarehouses() {
	h.handle("GET /api/v1/warehouses", func(w http.ResponseWriter, r *http.Request) {
		owner, ok := ownerScope(w, r, r.URL.Query().Get("owner"))
		if !ok {
			return
		}
		sums := map[string]*WarehouseSummary{}
		get := func(wh string) *WarehouseSummary {
			s := sums[wh]
			if s == nil {
				s = &WarehouseSummary{Warehouse: wh}
				sums[wh] = s
			}
			return s
		}
		gs, err := h.d.Store.Gateways(r.Context(), "")
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if owner != "" { // gateways are no owner's: an owner's summary is its stock's
			gs = nil
		}
		for _, g := range gs {
			if h.d.Hooks.Live != nil {
				h.d.Hooks.Live(&g)
			}
			s := get(g.Warehouse)
			s.Gateways++
			if g.Online {
				s.GatewaysOnline++
			}
			s.Backlog += backlogOf(g)
		}
		rows, _, _ := h.d.Orders.Availability("", "")
		if owner != "" {
			owned, err := h.ownedSKUs(r.Context(), owner, rows)
			if err != nil {
				writeError(w, http.StatusInternalServerError, err.Error())
				return
			}
			rows = slices.DeleteFunc(rows, func(a orders.ATS) bool { return !owned[whSKU{a.Warehouse, a.SKU}] })
		}
		for _, a := range rows {
			s := get(a.Warehouse)
			s.SKUs++
			s.OnHand += a.OnHand
			s.Reserved += a.Reserved
			s.Available += max(a.Available, 0)
		}
		cs, err := h.d.Store.Conflicts(r.Context(), conflicts.Query{Status: conflicts.StatusOpen})
		if err == nil {
			for _, c := range cs {
				if owner != "" && c.Owner != owner {
					continue
				}
				get(c.Warehouse).OpenConflicts++
			}
		}
		out := make([]WarehouseSummary, 0, len(sums))
		for _, s := range sums {
			out = append(out, *s)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].Warehouse < out[j].Warehouse })
		writeJSON(w, http.StatusOK, map[string]any{"items": out})
	})
}

// backlogOf is a gateway's work not yet applied by the server: what its
// outbox holds, or the gap between its last seq and the watermark.
func backlogOf(g store.Gateway) uint64 {
	var lag uint64
	if g.ReportedSeq > g.WM {
		lag = g.ReportedSeq - g.WM
	}
	return max(lag, g.OutboxDepth)
}
