// Package api serves the server's HTTP interface: health, metrics and the
// JSON API under /api/v1.
package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Ready reports whether the server can take traffic.
type Ready func() error

// Handler builds the HTTP handler.
func Handler(st store.Store, ready Ready, gatherer prometheus.Gatherer, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := ready(); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "epoch": st.Epoch()})
	})
	if gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /api/v1/stock", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		sq := store.StockQuery{Warehouse: q.Get("warehouse"), Location: q.Get("location"), SKU: q.Get("sku"), Lot: q.Get("lot")}
		if sq.Warehouse == "" {
			writeError(w, http.StatusBadRequest, "warehouse is required: /api/v1/stock?warehouse=WH[&sku=S][&location=L]")
			return
		}
		if l := q.Get("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil || n < 0 {
				writeError(w, http.StatusBadRequest, "limit must be a non-negative integer")
				return
			}
			sq.Limit = n
		}
		rows, err := st.Stock(r.Context(), sq)
		if err != nil {
			log.Error("stock query", "err", err)
			writeError(w, http.StatusInternalServerError, "stock query failed; see the server log")
			return
		}
		if rows == nil {
			rows = []store.StockRow{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": rows})
	})
	mux.HandleFunc("GET /api/v1/quarantine", func(w http.ResponseWriter, r *http.Request) {
		qs, err := st.Quarantined(r.Context(), r.URL.Query().Get("warehouse"))
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if qs == nil {
			qs = []store.Quarantined{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": qs})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
