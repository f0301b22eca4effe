package auth

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// AdminPrefix: every route under it needs the admin role.
const AdminPrefix = "/api/v1/admin/"

// Config configures a Guard.
type Config struct {
	// Tokens is the token file. Nil disables authentication: every request
	// passes (development only; the caller warns).
	Tokens *TokenFile
	// OpenHealthz and OpenMetrics leave /healthz and /metrics open; when
	// false they need a viewer token.
	OpenHealthz bool
	OpenMetrics bool
	// AdminRoutes are route patterns ("POST /api/v1/tokens") that need the
	// admin role besides those under AdminPrefix.
	AdminRoutes []string
	Logger      *slog.Logger
	// Denied counts refused requests by status code (401, 403); optional.
	Denied *prometheus.CounterVec
	// OwnerAllowed reports whether a token bound to an owner may use a
	// route (a ServeMux pattern): the route shows and changes nothing of
	// another owner. Nil admits no route. /metrics is never admitted.
	OwnerAllowed func(route string) bool
	// OwnerRefused, when set, hears of each request of a token bound to
	// an owner that the guard refuses because the route is not admitted
	// (route: the ServeMux pattern, or the path of /healthz and /metrics).
	OwnerRefused func(route string)
}

// NewDeniedCounter creates shelfsync_http_auth_denied_total and registers
// it with reg (when not nil).
func NewDeniedCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_http_auth_denied_total",
		Help: "HTTP requests refused by the API authentication, by status code (401 no/unknown token, 403 role too weak)."}, []string{"code"})
	if reg != nil {
		reg.MustRegister(c)
	}
	return c
}

// Guard authenticates HTTP requests with bearer tokens.
type Guard struct {
	cfg   Config
	admin map[string]bool
}

// New builds a guard.
func New(cfg Config) *Guard {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Guard{cfg: cfg, admin: map[string]bool{}}
	for _, r := range cfg.AdminRoutes {
		g.admin[r] = true
	}
	return g
}

// Enabled reports whether requests are authenticated at all.
func (g *Guard) Enabled() bool { return g.cfg.Tokens != nil }

type ctxKey struct{}

// From returns the token entry that authenticated the request, if any
// (for audit records: who did it).
func From(ctx context.Context) (Entry, bool) {
	e, ok := ctx.Value(ctxKey{}).(Entry)
	return e, ok
}

// RequiredRole returns the role a request with method needs on route (a
// ServeMux pattern such as "GET /api/v1/stock" or "/api/v1/x").
func (g *Guard) RequiredRole(route, method string) Role {
	path := route
	if i := strings.IndexByte(route, ' '); i >= 0 {
		path = strings.TrimSpace(route[i+1:])
	}
	if g.admin[route] || strings.HasPrefix(path, AdminPrefix) {
		return RoleAdmin
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return RoleViewer
	}
	return RoleOperator
}

// Middleware wraps one API route; its signature matches api.Deps.Middleware.
func (g *Guard) Middleware(route string, next http.Handler) http.Handler {
	owners := g.cfg.OwnerAllowed != nil && g.cfg.OwnerAllowed(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.serve(w, r, route, g.RequiredRole(route, r.Method), owners, next)
	})
}

// Owner returns the owner the request's token is bound to ("" for none).
func Owner(ctx context.Context) string {
	e, _ := From(ctx)
	return e.Owner
}

// Protect wraps the whole HTTP handler to guard /healthz and /metrics
// (registered outside the API routes) unless they are configured open.
func (g *Guard) Protect(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/healthz" && !g.cfg.OpenHealthz, r.URL.Path == "/metrics" && !g.cfg.OpenMetrics:
			g.serve(w, r, "GET "+r.URL.Path, RoleViewer, r.URL.Path == "/healthz", next)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func (g *Guard) serve(w http.ResponseWriter, r *http.Request, route string, need Role, owners bool, next http.Handler) {
	if g.cfg.Tokens == nil {
		next.ServeHTTP(w, r)
		return
	}
	tok, ok := bearer(r)
	if !ok {
		g.deny(w, r, http.StatusUnauthorized, "missing bearer token: send 'Authorization: Bearer <token>' (make one with `shelfsync-server tokens add`)", "")
		return
	}
	e, ok := g.cfg.Tokens.Lookup(tok)
	if !ok {
		g.deny(w, r, http.StatusUnauthorized, "unknown or revoked token", "")
		return
	}
	if e.Role < need {
		g.deny(w, r, http.StatusForbidden, "role "+e.Role.String()+" may not do this; it needs "+need.String(), e.Name)
		return
	}
	if e.Owner != "" && !owners {
		if g.cfg.OwnerRefused != nil {
			g.cfg.OwnerRefused(route)
		}
		g.deny(w, r, http.StatusForbidden, "token bound to owner "+e.Owner+": this route shows or changes other owners' data; use a token without an owner", e.Name)
		return
	}
	next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, e)))
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func (g *Guard) deny(w http.ResponseWriter, r *http.Request, code int, msg, name string) {
	if g.cfg.Denied != nil {
		g.cfg.Denied.WithLabelValues(strconv.Itoa(code)).Inc()
	}
	g.cfg.Logger.Info("HTTP request refused", "code", code, "method", r.Method, "path", r.URL.Path, "token", name, "remote", r.RemoteAddr)
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="shelfsync"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
