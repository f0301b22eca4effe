package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrateLock is the session advisory lock key that serialises migrations
// of replicas starting together ("shelfsync" in ASCII).
const migrateLock int64 = 0x73_68_65_6c_66_73_79_6e

// Migration is one schema change, from migrations/NNNN_name.sql.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", e.Name())
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := range out {
		if out[i].Version != i+1 {
			return nil, fmt.Errorf("migrations: version %d missing", i+1)
		}
	}
	return out, nil
}

// Migrate connects to dsn and applies the migrations the database lacks,
// each in its own transaction, and returns them. Replicas may run it at the
// same time: a session advisory lock makes them take turns.
func Migrate(ctx context.Context, dsn string) ([]Migration, error) {
	pool, err := connect(ctx, dsn, 2)
	if err != nil {
		return nil, err
	}
	defer pool.Close()
	return migrate(ctx, pool)
}

// SchemaVersion returns the highest migration applied to the database at
// dsn (0 for an empty database) and the highest this binary knows.
func SchemaVersion(ctx context.Context, dsn string) (have, want int, err error) {
	pool, err := connect(ctx, dsn, 2)
	if err != nil {
		return 0, 0, err
	}
	defer pool.Close()
	ms, err := Migrations()
	if err != nil {
		return 0, 0, err
	}
	have, err = applied(ctx, pool)
	return have, len(ms), err
}

func migrate(ctx context.Context, pool *pgxpool.Pool) ([]Migration, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLock); err != nil {
		return nil, fmt.Errorf("migrate: take lock: %w", err)
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, migrateLock) //nolint:errcheck // released with the session anyway
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("migrate: create schema_migrations: %w (may this role create tables in the database?)", err)
	}
	have, err := applied(ctx, conn)
	if err != nil {
		return nil, err
	}
	if have > len(ms) {
		return nil, newerSchema(have, len(ms))
	}
	var done []Migration
	for _, m := range ms[have:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return done, fmt.Errorf("migrate: %04d_%s: %w", m.Version, m.Name, err)
		}
		done = append(done, m)
	}
	return done, nil
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// applied returns the highest applied migration version, 0 when none.
func applied(ctx context.Context, q querier) (int, error) {
	var v int
	err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	if err != nil {
		if isUndefinedTable(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

func checkSchema(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	have, err := applied(ctx, pool)
	switch {
	case err != nil:
		return err
	case have > len(ms):
		return newerSchema(have, len(ms))
	case have < len(ms):
		return fmt.Errorf("postgres store: database schema is at version %d, this shelfsync-server needs %d: run 'shelfsync-server migrate --store DSN' first", have, len(ms))
	}
	return nil
}

func newerSchema(have, want int) error {
	return fmt.Errorf("postgres store: database schema is at version %d, newer than this shelfsync-server knows (%d): upgrade the binary", have, want)
}

func isUndefinedTable(err error) bool {
	var pe interface{ SQLState() string }
	return errors.As(err, &pe) && pe.SQLState() == "42P01"
}
