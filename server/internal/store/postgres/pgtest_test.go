package postgres

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/server/internal/store/pgtest"
)

// testDSN returns the PostgreSQL URL of the tests, or skips.
func testDSN(t testing.TB) string { return pgtest.DSN(t) }

// freshSchema creates an empty schema for one test (dropped at cleanup)
// and returns a DSN whose tables live in it.
func freshSchema(t testing.TB) string { return pgtest.FreshSchema(t) }

// openTest opens a store on dsn, closed at cleanup.
func openTest(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, Options{MaxConns: 8})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}
