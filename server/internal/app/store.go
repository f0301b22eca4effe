package app

import (
	"context"
	"log/slog"

	"github.com/shelfsync/shelfsync/server/internal/config"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/postgres"
)

// openStore opens the backend cfg.Store names: PostgreSQL for a
// postgres:// URL (migrating its schema), else Badger under cfg.DataDir.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (store.Store, error) {
	if cfg.Postgres() {
		return postgres.Open(ctx, cfg.Store, postgres.Options{Logger: log.With("component", "store")})
	}
	return store.Open(store.Options{Dir: cfg.DataDir, Logger: log})
}
