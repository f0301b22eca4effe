// Package api serves the server's HTTP interface: health, metrics and the
// JSON API under /api/v1. Each domain registers its routes from its own
// file (stock.go, gateways.go, conflicts.go, …) on the shared Handler.
package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shelfsync/shelfsync/server/internal/events"
	"github.com/shelfsync/shelfsync/server/internal/expiry"
	"github.com/shelfsync/shelfsync/server/internal/masterdata"
	"github.com/shelfsync/shelfsync/server/internal/routing"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Ready reports whether the server can take traffic.
type Ready func() error

// Deps are what the handlers use. Every server has every part; a test
// may leave out the parts whose routes it does not call.
type Deps struct {
	Store    store.Store
	Ready    Ready
	Gatherer prometheus.Gatherer
	Logger   *slog.Logger
	// Middleware, when set, wraps every /api/v1 route (authentication).
	Middleware func(route string, next http.Handler) http.Handler
	Hooks      Hooks
	// Committed, when set, receives the post-commit event of every write
	// the API makes to the ledger, master data or tasks.
	Committed events.Publisher
	// Orders, Alerts, Webhooks and Events serve their routes (orders.go,
	// availability.go, alerts.go, webhooks.go, events.go).
	Orders   Orders
	Alerts   Alerts
	Webhooks Webhooks
	Events   Events
	// NearExpiry, when set, lists the lots of a warehouse near expiry
	// (GET /api/v1/stock/near-expiry).
	NearExpiry func(ctx context.Context, wh string) ([]expiry.Lot, error)
	// Router, when set, configures the API's pick router as the server's
	// (the date lots are judged by, the channels' own minimum shelf life).
	Router func(*routing.Service)
	// Dashboard, when set, is served under /dashboard/ (and / redirects there).
	Dashboard http.Handler
	// UploadDir is where CSV uploads are spooled before they are imported
	// (default: the system's temporary directory). Put it on a disk, not
	// a tmpfs: an upload may be MaxImportBytes long.
	UploadDir string
	// MaxImportBytes bounds a CSV upload (default DefaultMaxImportBytes);
	// a longer body is refused with 413 before any row is applied.
	MaxImportBytes int64
	// UploadTimeout, when set, replaces the server's read timeout for a CSV
	// upload (they may be large).
	UploadTimeout time.Duration
	// Backup, when set, serves GET /api/v1/admin/backup (backup.go).
	Backup Backup
	// Series, when set, serves each gateway's ingest over the last hour
	// (GET /api/v1/gateways/series, workday.go).
	Series IngestSeries
	// OwnerRefused, when set, counts the 403s a scoped route answers a
	// token bound to an owner, by route (NewOwnerRefusedCounter).
	OwnerRefused *prometheus.CounterVec
}

// DefaultMaxImportBytes is the default bound of a CSV upload.
const DefaultMaxImportBytes = 1 << 30

func (h *Handler) maxImport() int64 {
	if h.d.MaxImportBytes > 0 {
		return h.d.MaxImportBytes
	}
	return DefaultMaxImportBytes
}

// Handler is the server's HTTP handler.
type Handler struct {
	d      Deps
	mux    *http.ServeMux
	routes []string            // every /api/v1 pattern, for the OpenAPI check
	router *routing.Service    // pick routing; nil without master data
	md     *masterdata.Service // nil without master data
}

// New builds the handler with every route registered.
func New(d Deps) *Handler {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{d: d, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := d.Ready(); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "epoch": d.Store.Epoch()})
	})
	if d.Gatherer != nil {
		h.mux.Handle("GET /metrics", promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{}))
	}
	h.registerStock()
	h.registerDomain()
	h.registerOrders()
	h.registerAvailability()
	h.registerAlerts()
	h.registerWebhooks()
	h.registerEvents()
	h.registerCSV()
	h.registerWarehouses()
	h.registerMasterdata() // masterdata.go: master data, CSV import/export, pick routing
	h.registerBackup()     // backup.go
	h.registerWorkday()    // workday.go: the dashboard's views of the day's work (after registerMasterdata)
	h.registerOpenAPI()
	h.registerWhoami() // owners.go
	if d.Dashboard != nil {
		h.mux.Handle("GET /dashboard/", d.Dashboard)
		h.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/dashboard/", http.StatusFound)
		})
	}
	return h
}

// Routes returns the pattern of every /api/v1 route, in registration order.
func (h *Handler) Routes() []string { return append([]string(nil), h.routes...) }

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// handle registers an /api/v1 route through the middleware.
func (h *Handler) handle(pattern string, f http.HandlerFunc) {
	h.routes = append(h.routes, pattern)
	var next http.Handler = h.logOwnerRefusals(pattern, f)
	if h.d.Middleware != nil {
		next = h.d.Middleware(pattern, next)
	}
	h.mux.Handle(pattern, next)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// intParam parses an optional non-negative integer query parameter.
func intParam(r *http.Request, name string, def int) (int, bool) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= 0
}

// knownWarehouse reports whether wh has been created: a gateway of it has
// connected, it holds stock, or it has master data (settings, a location,
// an item). With no master data kept (a store without records) every
// warehouse is known.
func (h *Handler) knownWarehouse(ctx context.Context, wh string) (bool, error) {
	gs, err := h.d.Store.Gateways(ctx, wh)
	if err != nil || len(gs) > 0 {
		return len(gs) > 0, err
	}
	rows, err := h.d.Store.Stock(ctx, store.StockQuery{Warehouse: wh, Limit: 1})
	if err != nil || len(rows) > 0 {
		return len(rows) > 0, err
	}
	if h.md == nil {
		return true, nil
	}
	return h.md.Known(ctx, wh)
}
