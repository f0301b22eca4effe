package api

import (
	"context"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelfsync/shelfsync/server/internal/auth"
)

// Owners (docs/DESIGN.md, "Owners"): an API token may be bound to an owner,
// a 3PL's client. Such a token is served only on the routes whose rule
// here admits it, and refused with 403 on every other: deny by default, so
// a route added without a rule fails TestEveryRouteHasAnOwnerRule, and a
// route that shows or changes every owner's data never serves a client's
// integration. An OwnerScoped route limits what it shows to the token's
// owner (ownerScope) and answers 403 for a record of another owner
// (ownedBy); TestOwnerScopeOnEveryRoute points one owner's token at the
// other's data on every route. A token bound to no owner sees every owner,
// and the scoped routes take ?owner= as a filter.

// OwnerRule says what a token bound to an owner may do on a route.
type OwnerRule int

// Owner rules.
const (
	// OwnerRefused: the route shows or changes data of every owner; a
	// token bound to an owner gets 403.
	OwnerRefused OwnerRule = iota + 1
	// OwnerOpen: the route holds no owner's data (the API description,
	// the channels' allocations).
	OwnerOpen
	// OwnerScoped: the route shows or changes only the token's owner's
	// data (and answers 403 when asked for another owner's).
	OwnerScoped
)

// tokenOwner returns the owner the request's token is bound to ("": none).
func tokenOwner(r *http.Request) string { return auth.Owner(r.Context()) }

// ownerScope returns the owner a request's answer is limited to: the
// token's owner when it is bound to one (403, and false, when the request
// asks for another owner's data), else what the request asks (the
// ?owner= filter; "": every owner).
func ownerScope(w http.ResponseWriter, r *http.Request, asked string) (string, bool) {
	o := tokenOwner(r)
	if o == "" {
		return asked, true
	}
	if asked != "" && asked != o {
		forbidOwner(w, o)
		return "", false
	}
	return o, true
}

// ownedBy reports whether the request may see or change data of owner
// has: always with a token bound to no owner, else only when has is the
// token's owner. It answers 403 when not.
func ownedBy(w http.ResponseWriter, r *http.Request, has string) bool {
	o := tokenOwner(r)
	if o == "" || o == has {
		return true
	}
	forbidOwner(w, o)
	return false
}

func forbidOwner(w http.ResponseWriter, o string) {
	writeError(w, http.StatusForbidden, "this token is bound to owner "+o+": it sees and changes only that owner's data")
}

// skuOwner returns the owner of a sku's item in a warehouse's master data
// ("" when the item has none, is unknown, or no master data is kept).
func (h *Handler) skuOwner(ctx context.Context, wh, sku string) (string, error) {
	if h.md == nil {
		return "", nil
	}
	it, _, err := h.md.Item(ctx, wh, sku)
	return it.Owner, err
}

// whoami is the answer of GET /api/v1/whoami.
type whoami struct {
	Authenticated bool   `json:"authenticated"`
	Name          string `json:"name,omitempty"`
	Role          string `json:"role,omitempty"`
	Owner         string `json:"owner,omitempty"`
}

// registerWhoami serves the token a request was made with, so that a
// client (the dashboard) can leave out what a token bound to an owner may
// not use instead of showing its 403s.
func (h *Handler) registerWhoami() {
	h.handle("GET /api/v1/whoami", func(w http.ResponseWriter, r *http.Request) {
		var out whoami
		if e, ok := auth.From(r.Context()); ok {
			out = whoami{Authenticated: true, Name: e.Name, Role: e.Role.String(), Owner: e.Owner}
		}
		writeJSON(w, http.StatusOK, out)
	})
}

// ownerRules is the rule of every /api/v1 route the handler registers.
var ownerRules = map[string]OwnerRule{
	"POST /api/v1/stock/status":                                    OwnerScoped,
	"GET /api/v1/stock/near-expiry":                                OwnerScoped,
	"GET /api/v1/gateways/series":                                  OwnerRefused,
	"GET /api/v1/orders/per-hour":                                  OwnerScoped,
	"GET /api/v1/tasks/summary":                                    OwnerRefused,
	"GET /api/v1/receiving/{warehouse}/pos":                        OwnerRefused,
	"GET /api/v1/receiving/{warehouse}/dock":                       OwnerRefused,
	"GET /api/v1/reorder/{warehouse}":                              OwnerScoped,
	"DELETE /api/v1/masterdata/{warehouse}/{kind}/{id}":            OwnerRefused,
	"DELETE /api/v1/holds/{warehouse}/{id}":                        OwnerScoped,
	"DELETE /api/v1/webhooks/{id}":                                 OwnerScoped,
	"GET /api/v1/admin/backup":                                     OwnerRefused,
	"GET /api/v1/alerts":                                           OwnerScoped,
	"GET /api/v1/alerts/{id}":                                      OwnerScoped,
	"GET /api/v1/availability":                                     OwnerScoped,
	"GET /api/v1/channels":                                         OwnerOpen,
	"GET /api/v1/channels/{channel}/availability":                  OwnerScoped,
	"GET /api/v1/conflicts":                                        OwnerScoped,
	"GET /api/v1/events":                                           OwnerScoped,
	"GET /api/v1/gateways":                                         OwnerRefused,
	"GET /api/v1/imports":                                          OwnerRefused,
	"GET /api/v1/imports/{id}":                                     OwnerRefused,
	"GET /api/v1/masterdata/{warehouse}/notices":                   OwnerRefused,
	"GET /api/v1/masterdata/{warehouse}/reorder-alerts":            OwnerRefused,
	"GET /api/v1/masterdata/{warehouse}/settings":                  OwnerRefused,
	"GET /api/v1/masterdata/{warehouse}/{kind}":                    OwnerScoped,
	"GET /api/v1/masterdata/{warehouse}/{kind}/{id}":               OwnerScoped,
	"GET /api/v1/openapi.json":                                     OwnerOpen,
	"GET /api/v1/whoami":                                           OwnerOpen,
	"GET /api/v1/orders":                                           OwnerScoped,
	"GET /api/v1/orders/{warehouse}/{id}":                          OwnerScoped,
	"GET /api/v1/quarantine":                                       OwnerRefused,
	"GET /api/v1/stock":                                            OwnerScoped,
	"GET /api/v1/stock/history":                                    OwnerScoped,
	"GET /api/v1/stock/snapshot.csv":                               OwnerScoped,
	"GET /api/v1/tasks":                                            OwnerRefused,
	"GET /api/v1/warehouses":                                       OwnerScoped,
	"GET /api/v1/webhooks":                                         OwnerScoped,
	"GET /api/v1/webhooks/{id}":                                    OwnerScoped,
	"GET /api/v1/webhooks/{id}/deliveries":                         OwnerScoped,
	"GET /api/v1/webhooks/{id}/failures":                           OwnerScoped,
	"POST /api/v1/alerts/{id}/ack":                                 OwnerScoped,
	"POST /api/v1/alerts/{id}/resolve":                             OwnerScoped,
	"POST /api/v1/conflicts/{id}/resolve":                          OwnerRefused,
	"POST /api/v1/imports/stock":                                   OwnerRefused,
	"POST /api/v1/masterdata/{warehouse}/pos/{id}/close":           OwnerRefused,
	"POST /api/v1/masterdata/{warehouse}/{kind}":                   OwnerRefused,
	"POST /api/v1/masterdata/{warehouse}/{kind}/import":            OwnerRefused,
	"POST /api/v1/holds":                                           OwnerScoped,
	"POST /api/v1/orders":                                          OwnerScoped,
	"POST /api/v1/orders/{warehouse}/{id}/cancel":                  OwnerScoped,
	"POST /api/v1/orders/{warehouse}/{id}/ship":                    OwnerScoped,
	"POST /api/v1/quarantine/{warehouse}/{gateway}/{seq}/{action}": OwnerRefused,
	"POST /api/v1/routing/{warehouse}/count-tasks":                 OwnerRefused,
	"POST /api/v1/routing/{warehouse}/orders/{id}":                 OwnerRefused,
	"POST /api/v1/webhooks":                                        OwnerScoped,
	"POST /api/v1/webhooks/{id}/ping":                              OwnerScoped,
	"PUT /api/v1/channels/{channel}":                               OwnerRefused,
	"PUT /api/v1/masterdata/{warehouse}/settings":                  OwnerRefused,
	"PUT /api/v1/masterdata/{warehouse}/{kind}/{id}":               OwnerRefused,
	"PUT /api/v1/webhooks/{id}":                                    OwnerScoped,
}

// OwnerAllowed reports whether a token bound to an owner may use route
// (auth.Config.OwnerAllowed).
func OwnerAllowed(route string) bool {
	r := ownerRules[route]
	return r != 0 && r != OwnerRefused
}

// NewOwnerRefusedCounter creates shelfsync_api_owner_refused_total and
// registers it with reg (when not nil): the requests of tokens bound to an
// owner refused with 403, by route: the routes closed to them (counted by
// the guard, auth.Config.OwnerRefused) and another owner's data asked of a
// scoped route (Deps.OwnerRefused). A rise names the route a client's
// integration keeps trying.
func NewOwnerRefusedCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_api_owner_refused_total",
		Help: "Requests of API tokens bound to an owner refused with 403, by route (a route closed to them, or another owner's data asked for)."}, []string{"route"})
	if reg != nil {
		reg.MustRegister(c)
	}
	return c
}

// logOwnerRefusals logs (and counts) each 403 a route answers a token bound to an
// owner (another owner's record or data asked for): the guard logs the
// routes it refuses outright, this the refusals of the scoped routes.
func (h *Handler) logOwnerRefusals(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o := tokenOwner(r)
		if o == "" {
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.code == http.StatusForbidden {
			if h.d.OwnerRefused != nil {
				h.d.OwnerRefused.WithLabelValues(route).Inc()
			}
			h.d.Logger.Info("owner token refused another owner's data", "route", route, "path", r.URL.Path, "owner", o, "remote", r.RemoteAddr)
		}
	})
}

// statusWriter records the status a handler answers; it flushes (the
// event stream) through the writer it wraps.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Flush implements http.Flusher when the wrapped writer does.
func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the wrapped writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
