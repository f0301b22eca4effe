// Package api serves the agent's local HTTP interface: /healthz, /metrics,
// the local stock view and the gateway status.
package api

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shelfsync/shelfsync/agent/internal/devices"
	"github.com/shelfsync/shelfsync/agent/internal/store"
	"github.com/shelfsync/shelfsync/agent/internal/uplink"
	"github.com/shelfsync/shelfsync/protocol"
)

// Deps are what the handlers read.
type Deps struct {
	Warehouse, Gateway string
	Store              *store.Store
	Uplink             *uplink.Uplink
	Devices            *devices.Manager
	Gatherer           prometheus.Gatherer
}

// Status is the body of GET /api/v1/status.
type Status struct {
	Warehouse   string               `json:"warehouse"`
	Gateway     string               `json:"gateway"`
	LastSeq     uint64               `json:"last_seq"`
	AckedSeq    uint64               `json:"acked_seq"`
	DownSeq     uint64               `json:"down_seq"`
	OutboxDepth uint64               `json:"outbox_depth"`
	Connected   bool                 `json:"connected"`
	Uplink      uplink.State         `json:"uplink"`
	Devices     []devices.DeviceInfo `json:"devices"`
	Tasks       []protocol.Task      `json:"tasks"`
	// Disk is the data disk: "full" means scans are refused (bad beep)
	// until space is freed.
	Disk store.DiskState `json:"disk"`
}

// Handler builds the HTTP handler.
func Handler(d Deps) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if _, err := d.Store.Positions(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	if d.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, r *http.Request) {
		p, err := d.Store.Positions()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		us := d.Uplink.State()
		tasks, err := d.Store.Tasks()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		if tasks == nil {
			tasks = []protocol.Task{}
		}
		writeJSON(w, http.StatusOK, Status{Tasks: tasks,
			Warehouse: d.Warehouse, Gateway: d.Gateway, LastSeq: p.LastSeq, AckedSeq: p.Acked, DownSeq: p.Down,
			OutboxDepth: p.LastSeq - p.Acked, Connected: us.Connected, Uplink: us, Devices: d.Devices.Devices(),
			Disk: d.Store.Disk(),
		})
	})
	mux.HandleFunc("GET /api/v1/stock", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if wh := q.Get("warehouse"); wh != "" && wh != d.Warehouse {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "this gateway serves warehouse " + d.Warehouse})
			return
		}
		rows, err := d.Store.Stock(q.Get("location"), q.Get("sku"))
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		type item struct {
			Warehouse string `json:"warehouse"`
			store.StockRow
		}
		items := make([]item, 0, len(rows))
		for _, r := range rows {
			items = append(items, item{d.Warehouse, r})
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": items})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
