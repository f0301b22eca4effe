package auth

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTokensAndMiddleware(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	viewer, err := AddToken(path, "dash", RoleViewer)
	require.NoError(t, err)
	operator, err := AddToken(path, "ops", RoleOperator)
	require.NoError(t, err)
	admin, err := AddToken(path, "root", RoleAdmin)
	require.NoError(t, err)
	_, err = AddToken(path, "dash", RoleAdmin)
	require.Error(t, err, "names are unique")
	b, _ := os.ReadFile(path)
	for _, tok := range []string{viewer, operator, admin} {
		require.True(t, strings.HasPrefix(tok, TokenPrefix))
		require.NotContains(t, string(b), tok, "tokens are stored hashed")
	}
	st, _ := os.Stat(path)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	tf, err := LoadTokenFile(path)
	require.NoError(t, err)
	require.Equal(t, 3, tf.Len())
	g := New(Config{Tokens: tf, OpenHealthz: true, AdminRoutes: []string{"POST /api/v1/danger"}})

	mux := http.NewServeMux()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, _ := From(r.Context())
		w.Write([]byte(e.Name))
	})
	for _, route := range []string{"GET /api/v1/stock", "POST /api/v1/stock", "DELETE /api/v1/stock/{id}", "POST /api/v1/danger", "GET /api/v1/admin/x"} {
		mux.Handle(route, g.Middleware(route, ok))
	}
	mux.Handle("GET /healthz", ok)
	mux.Handle("GET /metrics", ok)
	h := g.Protect(mux)

	for _, tc := range []struct {
		method, path, token string
		code                int
	}{
		{"GET", "/api/v1/stock", "", 401},
		{"GET", "/api/v1/stock", "nonsense", 401},
		{"GET", "/api/v1/stock", viewer, 200},
		{"POST", "/api/v1/stock", viewer, 403},
		{"POST", "/api/v1/stock", operator, 200},
		{"DELETE", "/api/v1/stock/7", viewer, 403},
		{"DELETE", "/api/v1/stock/7", operator, 200},
		{"POST", "/api/v1/danger", operator, 403},
		{"POST", "/api/v1/danger", admin, 200},
		{"GET", "/api/v1/admin/x", operator, 403},
		{"GET", "/api/v1/admin/x", admin, 200},
		{"GET", "/healthz", "", 200},
		{"GET", "/metrics", "", 401},
		{"GET", "/metrics", viewer, 200},
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, tc.code, rec.Code, "%s %s token=%.8s body=%s", tc.method, tc.path, tc.token, rec.Body)
		if tc.code == 401 {
			require.Contains(t, rec.Header().Get("WWW-Authenticate"), "Bearer")
		}
	}

	// No token file: open (development).
	open := New(Config{})
	rec := httptest.NewRecorder()
	open.Middleware("POST /api/v1/stock", ok).ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/stock", nil))
	require.Equal(t, 200, rec.Code)
}

func TestParseTokensErrors(t *testing.T) {
	h := "sha256:" + strings.Repeat("ab", 32)
	for _, bad := range []string{
		"a viewer",
		"a king " + h,
		"a viewer sha256:zz",
		"a viewer " + strings.Repeat("ab", 32),
		"a viewer " + h + "\nb admin " + h,
		"a viewer " + h + "\na admin sha256:" + strings.Repeat("cd", 32),
		"a viewer " + h + " acme",
		"a viewer " + h + " owner=",
		"a viewer " + h + " owner=ac me",
		"a viewer " + h + " owner=ac/me",
		"a viewer " + h + " owner=..",
		"a viewer " + h + " owner=acme extra",
	} {
		_, err := ParseTokens([]byte(bad))
		require.ErrorIs(t, err, ErrBadTokenFile, bad)
	}
	tb, err := ParseTokens([]byte("# x\n\n  a   viewer   " + h + "  \n"))
	require.NoError(t, err)
	require.Len(t, tb, 1)
	tb, err = ParseTokens([]byte("a operator " + h + " owner=acme.eu_1\n"))
	require.NoError(t, err)
	for _, e := range tb {
		require.Equal(t, "acme.eu_1", e.Owner)
	}
	_, err = AddOwnerToken(t.TempDir()+"/tokens", "x", RoleViewer, "bad owner")
	require.Error(t, err)
}

func FuzzParseTokens(f *testing.F) {
	f.Add([]byte("dash viewer sha256:" + strings.Repeat("ab", 32) + "\n"))
	f.Add([]byte("# c\n\nx admin sha256:\n"))
	f.Add([]byte("a b c d"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tb, err := ParseTokens(b)
		if err != nil {
			return
		}
		for _, e := range tb {
			if e.Name == "" || e.Role == RoleNone || (e.Owner != "" && checkOwner(e.Owner) != nil) {
				t.Fatalf("accepted an entry without name or role: %+v", e)
			}
		}
		_, _ = tb.Lookup(string(b))
	})
}
