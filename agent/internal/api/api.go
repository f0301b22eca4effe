// Package api serves the agent's local HTTP interface: /healthz, /metrics,
// the local stock view, the gateway status and the ops it holds.
package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

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
	mux.HandleFunc("GET /api/v1/ops", func(w http.ResponseWriter, r *http.Request) {
		from, limit, err := opsQuery(r)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		p, err := d.Store.Positions()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		ops, err := d.Store.Outbox(max(from, p.First), limit, 1<<30)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		items := make([]OpItem, 0, len(ops))
		for _, op := range ops {
			it := ItemOf(op)
			it.Acked = op.Seq <= p.Acked
			items = append(items, it)
		}
		writeJSON(w, http.StatusOK, Ops{FirstHeld: p.First, LastSeq: p.LastSeq, AckedSeq: p.Acked, Items: items})
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

// Ops is the body of GET /api/v1/ops: the ops this gateway still holds
// (not yet acknowledged, or retained after their ack for a server
// restore), from seq `from` (default first_held), at most `limit` (default
// and cap 10,000). Ops below first_held are gone from the gateway.
type Ops struct {
	FirstHeld uint64   `json:"first_held"`
	LastSeq   uint64   `json:"last_seq"`
	AckedSeq  uint64   `json:"acked_seq"`
	Items     []OpItem `json:"items"`
}

// OpItem is one op of GET /api/v1/ops: named fields, empty ones left out.
type OpItem struct {
	Seq      uint64   `json:"seq"`
	HLC      uint64   `json:"hlc"`
	Kind     string   `json:"kind"`
	Location string   `json:"location,omitempty"`
	To       string   `json:"to,omitempty"`
	SKU      string   `json:"sku,omitempty"`
	Lot      string   `json:"lot,omitempty"`
	Qty      int64    `json:"qty,omitempty"`
	Device   string   `json:"device,omitempty"`
	Operator string   `json:"operator,omitempty"`
	Raw      []string `json:"raw,omitempty"`
	Acked    bool     `json:"acked,omitempty"` // the server acknowledged it (kept for a restore)
}

// ItemOf is op as GET /api/v1/ops lists it.
func ItemOf(op protocol.Op) OpItem {
	return OpItem{Seq: op.Seq, HLC: uint64(op.HLC), Kind: op.Kind.String(), Location: op.Location, To: op.To, SKU: op.SKU, Lot: op.Lot,
		Qty: op.Qty, Device: op.Device, Operator: op.Operator, Raw: op.Raw}
}

// maxOpsPage bounds one GET /api/v1/ops answer.
const maxOpsPage = 10_000

func opsQuery(r *http.Request) (from uint64, limit int, err error) {
	q := r.URL.Query()
	limit = maxOpsPage
	if v := q.Get("from"); v != "" {
		if from, err = strconv.ParseUint(v, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("from=%q: want a seq (a whole number)", v)
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxOpsPage {
			return 0, 0, fmt.Errorf("limit=%q: want 1..%d", v, maxOpsPage)
		}
		limit = n
	}
	return from, limit, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
