package postgres

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/conflicts/conflictstest"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/storetest"
)

// TestIntegrationPostgresContract runs the backend contract against
// PostgreSQL; "replicas" are separate Stores (pools) on one schema.
func TestIntegrationPostgresContract(t *testing.T) {
	testDSN(t)
	var mu sync.Mutex
	dsns := map[store.Store]string{}
	open := func(t *testing.T, dsn string) store.Store {
		s := openTest(t, dsn)
		mu.Lock()
		dsns[s] = dsn
		mu.Unlock()
		return s
	}
	dsnOf := func(s store.Store) string {
		mu.Lock()
		defer mu.Unlock()
		return dsns[s]
	}
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, freshSchema(t)) },
		storetest.WithReopen(func(t *testing.T, s store.Store) store.Store {
			require.NoError(t, s.Close())
			return open(t, dsnOf(s))
		}),
		storetest.WithReplica(func(t *testing.T, s store.Store) store.Store { return open(t, dsnOf(s)) }),
		storetest.WithOpLog(func(t require.TestingT, s store.Store, wh, gw string, seq uint64) []byte {
			var body []byte
			err := s.(*Store).pool.QueryRow(context.Background(), `SELECT body FROM ops WHERE wh = $1 AND gw = $2 AND seq = $3`, wh, gw, int64(seq)).Scan(&body)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			require.NoError(t, err)
			return body
		}))
}

// TestIntegrationPostgresConflictIndexes runs the conflicts package's
// any-order property against the transaction store, each case inside one
// transaction that is rolled back.
func TestIntegrationPostgresConflictIndexes(t *testing.T) {
	s := openTest(t, freshSchema(t))
	ctx := context.Background()
	conflictstest.CheckStore(t, func(rt *rapid.T, lines map[conflicts.OrderLineKey]int64) (conflicts.Store, ledger.Store) {
		tx, err := s.pool.Begin(ctx)
		require.NoError(rt, err)
		rt.Cleanup(func() { _ = tx.Rollback(context.Background()) })
		for k, q := range lines {
			_, err := tx.Exec(ctx, `INSERT INTO order_lines (wh, ord, line, qty) VALUES ($1, $2, $3, $4)`, k.WH, []byte(k.Order), int64(k.Line), q)
			require.NoError(rt, err)
		}
		l := newTxLedger(ctx, tx)
		return l, l
	})
}

func TestIntegrationPostgresMigrations(t *testing.T) {
	dsn := freshSchema(t)
	ctx := context.Background()
	have, want, err := SchemaVersion(ctx, dsn)
	require.NoError(t, err)
	require.Zero(t, have)
	ms, err := Migrations()
	require.NoError(t, err)
	require.Equal(t, len(ms), want)

	_, err = Open(ctx, dsn, Options{NoMigrate: true})
	require.ErrorContains(t, err, "shelfsync-server migrate")

	// Replicas starting together migrate once.
	var wg sync.WaitGroup
	applied := make([][]Migration, 4)
	errs := make([]error, 4)
	for i := range applied {
		wg.Add(1)
		go func() { defer wg.Done(); applied[i], errs[i] = Migrate(ctx, dsn) }()
	}
	wg.Wait()
	total := 0
	for i := range applied {
		require.NoError(t, errs[i])
		total += len(applied[i])
	}
	require.Equal(t, len(ms), total)
	have, _, err = SchemaVersion(ctx, dsn)
	require.NoError(t, err)
	require.Equal(t, want, have)
	openTest(t, dsn) // an up-to-date schema opens without migrating
	s, err := Open(ctx, dsn, Options{NoMigrate: true})
	require.NoError(t, err)
	s.Close()

	_, err = s0(t, dsn).pool.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, 'future')`, want+1)
	require.NoError(t, err)
	_, err = Open(ctx, dsn, Options{})
	require.ErrorContains(t, err, "upgrade the binary")
}

func s0(t *testing.T, dsn string) *Store { return openTest(t, dsn) }
