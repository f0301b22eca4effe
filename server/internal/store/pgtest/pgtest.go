// Package pgtest gives tests of any package a private PostgreSQL schema:
// the database of SHELFSYNC_TEST_PG, or with SHELFSYNC_INTEGRATION set the
// one deploy/dev/services.sh provisions; without either the test skips.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// DevDSN is the database deploy/dev/services.sh provisions.
const DevDSN = "postgres://shelfsync:shelfsync@127.0.0.1:5432/shelfsync?sslmode=disable"

// DSN returns the PostgreSQL URL of the tests, or skips t.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("SHELFSYNC_TEST_PG")
	if dsn == "" && os.Getenv("SHELFSYNC_INTEGRATION") != "" {
		dsn = DevDSN
	}
	if dsn == "" {
		t.Skip("SHELFSYNC_TEST_PG is not set: run deploy/dev/services.sh postgres, then eval \"$(deploy/dev/env.sh)\" (or set it to any PostgreSQL URL whose role may create schemas)")
	}
	return dsn
}

// WithSearchPath returns dsn with the search_path runtime parameter set.
func WithSearchPath(dsn, schema string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return strings.TrimSpace(dsn) + " search_path=" + schema
}

// FreshSchema creates an empty schema for t (dropped at cleanup) and
// returns a DSN whose tables live in it.
func FreshSchema(t testing.TB) string {
	t.Helper()
	dsn := DSN(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to %s: %v", dsn, err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "shelfsync_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		_, _ = conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	})
	return WithSearchPath(dsn, schema)
}
