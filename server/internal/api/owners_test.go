package api

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

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
	tf, err := auth.LoadTokenFile(path)
	require.NoError(t, err)
	g := auth.New(auth.Config{Tokens: tf, OwnerAllowed: OwnerAllowed})
	st, err := badger.Open(badger.Options{InMemory: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
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
	require.Greater(t, refused, 40, "the owner rule was exercised on the routes")
	require.Equal(t, OwnerRefused, ownerRules["GET /api/v1/events"], "the event stream carries every owner's events")
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
