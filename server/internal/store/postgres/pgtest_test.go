package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// devDSN is the database deploy/dev/services.sh provisions; `make
// test-integration` runs that script, so with SHELFSYNC_INTEGRATION set and
// SHELFSYNC_TEST_PG unset the tests use it.
const devDSN = "postgres://shelfsync:shelfsync@127.0.0.1:5432/shelfsync?sslmode=disable"

// testDSN returns the PostgreSQL URL of the tests, or skips.
func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("SHELFSYNC_TEST_PG")
	if dsn == "" && os.Getenv("SHELFSYNC_INTEGRATION") != "" {
		dsn = devDSN
	}
	if dsn == "" {
		t.Skip("SHELFSYNC_TEST_PG is not set: run deploy/dev/services.sh postgres, then eval \"$(deploy/dev/env.sh)\" (or set it to any PostgreSQL URL whose role may create schemas)")
	}
	return dsn
}

// withSearchPath returns dsn with the search_path runtime parameter set.
func withSearchPath(dsn, schema string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return strings.TrimSpace(dsn) + " search_path=" + schema
}

// freshSchema creates an empty schema for one test (dropped at cleanup)
// and returns a DSN whose tables live in it.
func freshSchema(t testing.TB) string {
	t.Helper()
	dsn := testDSN(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err, "connect to SHELFSYNC_TEST_PG")
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "shelfsync_test_" + hex.EncodeToString(b[:])
	_, err = conn.Exec(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		_, _ = conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
	return withSearchPath(dsn, schema)
}

// openTest opens a store on dsn, closed at cleanup.
func openTest(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, Options{MaxConns: 8})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}
