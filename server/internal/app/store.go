package app

import (
	"context"
	"log/slog"

	"github.com/shelfsync/shelfsync/server/internal/config"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
	"github.com/shelfsync/shelfsync/server/internal/store/postgres"
)

// openStore opens the backend cfg.Store names: PostgreSQL for a
// postgres:// URL (migrating its schema; returned twice, the second time
// for the replicas' coordination), else Badger under cfg.DataDir.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (store.Store, *postgres.Store, error) {
	if cfg.Postgres() {
		pg, err := postgres.Open(ctx, cfg.Store, postgres.Options{Logger: log.With("component", "store")})
		if err != nil {
			return nil, nil, err
		}
		return pg, pg, nil
	}
	st, err := badger.Open(badger.Options{Dir: cfg.DataDir, Logger: log})
	return st, nil, err
}
