package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/auth"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
)

// TestEveryRouteHasAnOwnerRule: each route the router registers says what
// a token bound to an owner may do there (ownerRules); a new route without
// a rule fails here, and so does a rule for a route that is gone.
func TestEveryRouteHasAnOwnerRule(t *testing.T) {
	st, err := badger.Open(badger.Options{InMemory: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	routes := New(Deps{Store: st, Ready: func() error { return nil }}).Routes()
	var missing []string
	for _, r := range routes {
		if _, ok := ownerRules[r]; !ok {
			missing = append(missing, r)
		}
	}
	require.Empty(t, missing, "routes without an owner rule: add them to ownerRules (owners.go)")
	for r := range ownerRules {
		require.True(t, slices.Contains(routes, r), "ownerRules names %q, which no handler registers", r)
	}
}

// TestOwnerTokensOnEveryRoute: over every route of the router, through the
// real authentication, a token bound to owner acme (admin role, so no role
// refusal hides the owner rule) is refused with 403 wherever the route
// shows or changes other owners' data, and passes where the route holds
// none; the same request with an unbound token is never refused.
func TestOwnerTokensOnEveryRoute(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	bound, err := auth.AddOwnerToken(path, "acme-erp", auth.RoleAdmin, "acme")
	require.NoError(t, err)
	free, err := auth.AddToken(path, "ops", auth.RoleAdmin)
	require.NoError(t, err)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(b), " owner=acme\n")
	g, st := guarded(t, path)
	// Behind the guard each route answers "reached <route>" instead of
	// running its handler: the test is about who gets through.
	reached := func(route string, _ http.Handler) http.Handler {
		return g.Middleware(route, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("reached " + route)) }))
	}
	h := New(Deps{Store: st, Ready: func() error { return nil }, Middleware: reached})
	srv := httptest.NewServer(g.Protect(h))
	t.Cleanup(srv.Close)

	param := regexp.MustCompile(`\{[a-z]+\}`)
	refused := 0
	for _, route := range h.Routes() {
		method, pattern, _ := strings.Cut(route, " ")
		url := srv.URL + param.ReplaceAllString(pattern, "x")
		for _, tc := range []struct {
			token string
			want  func(code int, body string)
		}{
			{bound, func(code int, body string) {
				if ownerRules[route] == OwnerRefused {
					require.Equal(t, http.StatusForbidden, code, "%s with an owner token: %s", route, body)
					require.Contains(t, body, "bound to owner acme", route)
					refused++
				} else {
					require.Equal(t, "reached "+route, body, "%s with an owner token", route)
				}
			}},
			{free, func(code int, body string) {
				require.Equal(t, "reached "+route, body, "%s with an unbound token (%d)", route, code)
			}},
		} {
			req, err := http.NewRequest(method, url, strings.NewReader("{}"))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+tc.token)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			var sb strings.Builder
			buf := make([]byte, 512)
			n, _ := resp.Body.Read(buf)
			sb.Write(buf[:n])
			resp.Body.Close()
			tc.want(resp.StatusCode, sb.String())
		}
	}
	require.Greater(t, refused, 20, "the owner rule was exercised on the routes")
	require.Equal(t, OwnerOpen, ownerRules["GET /api/v1/openapi.json"])

	// /metrics (every owner's figures) is refused too; /healthz is not.
	for path, code := range map[string]int{"/metrics": http.StatusForbidden} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+bound)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, code, resp.StatusCode, path)
	}
}

// TestOwnerTokenSeesOnlyItsStock: two owners hold the same sku in one
// warehouse; each owner's token lists only its own stock, asking for the
// other's is 403, and an unbound token sees both.
func TestOwnerTokenSeesOnlyItsStock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	acme, err := auth.AddOwnerToken(path, "acme-erp", auth.RoleViewer, "acme")
	require.NoError(t, err)
	globex, err := auth.AddOwnerToken(path, "globex-erp", auth.RoleViewer, "globex")
	require.NoError(t, err)
	ops, err := auth.AddToken(path, "ops", auth.RoleViewer)
	require.NoError(t, err)
	g, st := guarded(t, path)
	for i, owner := range []string{"acme", "globex"} {
		_, _, err := st.IssueOp(context.Background(), "wh1", protocol.Op{HLC: protocol.MakeHLC(int64(1000+i), 0), Kind: protocol.OpReceive,
			Location: "A-01", SKU: "04012345678901", Qty: int64(3 + i), Owner: owner})
		require.NoError(t, err)
	}
	srv := httptest.NewServer(g.Protect(New(Deps{Store: st, Ready: func() error { return nil }, Middleware: g.Middleware})))
	t.Cleanup(srv.Close)
	get := func(token, query string) (int, map[string]int64) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/stock?warehouse=wh1"+query, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body struct {
			Items []struct {
				Owner  string
				OnHand int64 `json:"on_hand"`
			}
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		out := map[string]int64{}
		for _, it := range body.Items {
			out[it.Owner] += it.OnHand
		}
		return resp.StatusCode, out
	}
	code, got := get(acme, "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, map[string]int64{"acme": 3}, got)
	code, got = get(globex, "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, map[string]int64{"globex": 4}, got)
	code, _ = get(acme, "&owner=globex")
	require.Equal(t, http.StatusForbidden, code)
	code, got = get(ops, "")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, map[string]int64{"acme": 3, "globex": 4}, got)
}

// guarded returns a guard over the token file at path, with the owner
// rules, and an empty in-memory store.
func guarded(t *testing.T, path string, opts ...func(*auth.Config)) (*auth.Guard, *badger.Store) {
	t.Helper()
	tf, err := auth.LoadTokenFile(path)
	require.NoError(t, err)
	st, err := badger.Open(badger.Options{InMemory: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	cfg := auth.Config{Tokens: tf, OwnerAllowed: OwnerAllowed}
	for _, o := range opts {
		o(&cfg)
	}
	return auth.New(cfg), st
}
