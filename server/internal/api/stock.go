package api

import (
	"net/http"

	"github.com/shelfsync/shelfsync/server/internal/store"
)

func (h *Handler) registerStock() {
	h.handle("GET /api/v1/stock", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		sq := store.StockQuery{Warehouse: q.Get("warehouse"), Location: q.Get("location"), SKU: q.Get("sku"), Lot: q.Get("lot")}
		if sq.Warehouse == "" {
			writeError(w, http.StatusBadRequest, "warehouse is required: /api/v1/stock?warehouse=WH[&sku=S][&location=L]")
			return
		}
		n, ok := intParam(r, "limit", 0)
		off, ok2 := intParam(r, "offset", 0)
		if !ok || !ok2 {
			writeError(w, http.StatusBadRequest, "limit and offset must be non-negative integers")
			return
		}
		switch v := q.Get("nonzero"); v {
		case "", "false", "0":
		case "true", "1":
			sq.NonZero = true
		default:
			writeError(w, http.StatusBadRequest, "nonzero must be true or false")
			return
		}
		if n > 0 { // one more than asked tells whether a next page exists
			sq.Limit = off + n + 1
		}
		rows, err := h.d.Store.Stock(r.Context(), sq)
		if err != nil {
			h.d.Logger.Error("stock query", "err", err)
			writeError(w, http.StatusInternalServerError, "stock query failed; see the server log")
			return
		}
		rows = rows[min(off, len(rows)):]
		more := n > 0 && len(rows) > n
		if more {
			rows = rows[:n]
		}
		if rows == nil {
			rows = []store.StockRow{}
		}
		writeJSON(w, http.StatusOK, listBody(rows, more, off+len(rows)))
	})
	h.handle("GET /api/v1/quarantine", func(w http.ResponseWriter, r *http.Request) {
		qs, err := h.d.Store.Quarantined(r.Context(), r.URL.Query().Get("warehouse"))
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if qs == nil {
			qs = []store.Quarantined{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": qs})
	})
}
