// Package postgres is the PostgreSQL backend of store.Store and
// store.Actions, for running several shelfsync-server replicas over one
// database.
//
// Per-gateway apply stays exactly-once and ordered through the database:
// ApplyBatch runs in one transaction that first locks the gateway's row in
// watermarks (INSERT … ON CONFLICT DO NOTHING, then SELECT … FOR UPDATE),
// so a batch that another replica is applying for the same gateway waits
// for it and then reads its watermark; then it locks the warehouse's row in
// warehouses, so the merges of one warehouse — which read and write the same
// stock keys, conflicts and downstream log — are serial too. Lock order is
// always watermark row, then warehouse row; nothing else is locked, so
// replicas never deadlock and never need to retry. Warehouses apply in
// parallel.
//
// The schema ships in migrations/ (embedded); Open applies what is missing
// unless Options.NoMigrate is set, and Migrate does it alone for
// `shelfsync-server migrate`.
package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/apply"
)

// DefaultMaxConns is the pool size when neither Options.MaxConns nor the
// DSN's pool_max_conns sets one: the ingest's workers each hold a
// connection while they apply, and the downstream sender, the API and the
// leases need some beside them.
const DefaultMaxConns = 10

// Store is the PostgreSQL Store. It is safe for concurrent use, and any
// number of Stores (one per replica) may share one database.
type Store struct {
	*apply.Engine
	pool  *pgxpool.Pool
	epoch string
	log   *slog.Logger
	// channel is the replica feed's notification channel (feed.go).
	channel string
	notify  func(wh, gw string, res *store.Result) [][]byte
}

// SetApplyNotify installs f, whose payloads (each ≤ MaxNotify bytes) every
// applied batch notifies on the replica feed from inside its transaction:
// they reach the listeners when, and only if, the batch commits. Call it
// before applying.
func (s *Store) SetApplyNotify(f func(wh, gw string, res *store.Result) [][]byte) { s.notify = f }

var _ store.Store = (*Store)(nil)

// Options tune the PostgreSQL store.
type Options struct {
	Logger *slog.Logger
	// MaxConns caps the connection pool; 0 takes the DSN's
	// pool_max_conns, else DefaultMaxConns.
	MaxConns int32
	// NoMigrate makes Open fail instead of migrating a database whose
	// schema is behind this binary.
	NoMigrate bool
}

// Open connects to the database at dsn (postgres://user:pass@host/db?…),
// brings its schema up to date (see Options.NoMigrate), and reads or
// creates the store's epoch.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pool, err := connect(ctx, dsn, opts.MaxConns)
	if err != nil {
		return nil, err
	}
	s := &Store{pool: pool, log: log}
	s.Engine = apply.New(backend{s}, apply.Options{})
	if opts.NoMigrate {
		err = checkSchema(ctx, pool)
	} else {
		var applied []Migration
		applied, err = migrate(ctx, pool)
		for _, m := range applied {
			log.Info("database migrated", "version", m.Version, "name", m.Name)
		}
	}
	if err == nil {
		err = s.loadEpoch(ctx)
	}
	if err == nil {
		s.channel, err = feedChannel(ctx, pool)
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func connect(ctx context.Context, dsn string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres store: bad DSN: %w (expected postgres://user:password@host:5432/db?sslmode=…)", err)
	}
	switch {
	case maxConns > 0:
		cfg.MaxConns = maxConns
	case !strings.Contains(dsn, "pool_max_conns"):
		cfg.MaxConns = DefaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store: connect to %s:%d/%s: %w (is PostgreSQL running, and do user and password match?)",
			cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return pool, nil
}

func (s *Store) loadEpoch(ctx context.Context) error {
	var b [6]byte
	_, _ = rand.Read(b[:])
	fresh := fmt.Sprintf("%x-%s", time.Now().Unix(), hex.EncodeToString(b[:]))
	var batch pgx.Batch
	batch.Queue(`INSERT INTO meta (key, value) VALUES ('epoch', $1) ON CONFLICT (key) DO NOTHING`, fresh)
	batch.Queue(`SELECT value FROM meta WHERE key = 'epoch'`).QueryRow(func(r pgx.Row) error { return r.Scan(&s.epoch) })
	if err := s.pool.SendBatch(ctx, &batch).Close(); err != nil {
		return fmt.Errorf("postgres store: read epoch: %w", err)
	}
	return nil
}

// Epoch implements store.Store. Every replica on the database shares it.
func (s *Store) Epoch() string { return s.epoch }

// Pool exposes the connection pool for packages of this module that keep
// their own tables beside the ledger.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close implements store.Store.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// sendTx sends b, which must start with b.BeginTx, and returns its
// transaction once every queued statement has run.
func (s *Store) sendTx(ctx context.Context, b *pgx.Batch) (pgx.Tx, error) {
	br := s.pool.SendBatch(ctx, b)
	tx := br.Tx()
	if err := br.Close(); err != nil {
		if tx != nil {
			_ = tx.Rollback(context.Background())
		}
		return nil, err
	}
	return tx, nil
}

// retryable reports whether err is a transient transaction failure the
// caller should retry (store.ErrConflict).
func retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return true
		}
	}
	return false
}

// wrap maps transient failures to store.ErrConflict and adds context to
// the others.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	if retryable(err) {
		return store.ErrConflict
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
