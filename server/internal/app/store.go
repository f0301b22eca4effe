package app

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/shelfsync/shelfsync/server/internal/config"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
	"github.com/shelfsync/shelfsync/server/internal/store/postgres"
)

// openStore opens the backend cfg.Store names: PostgreSQL for a
// postgres:// URL (migrating its schema), else Badger under cfg.DataDir.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (store.Store, error) {
	if cfg.Postgres() {
		return postgres.Open(ctx, cfg.Store, postgres.Options{Logger: log.With("component", "store")})
	}
	return badger.Open(badger.Options{Dir: cfg.DataDir, Logger: log})
}

// partition is a replica's share of the gateways under --gateway-leases;
// nil otherwise, and then every method returns what means "all of them".
type partition struct {
	leases  *postgres.Leases
	log     *slog.Logger
	lastLog atomic.Int64
}

func newPartition(cfg config.Config, st store.Store, log *slog.Logger) *partition {
	pg, ok := st.(*postgres.Store)
	if !cfg.GatewayLeases || !ok {
		return nil
	}
	log = log.With("component", "leases")
	return &partition{leases: pg.Leases(postgres.LeaseOptions{TTL: cfg.LeaseTTL, Logger: log}), log: log}
}

// accept is the ingest's Accept hook: this replica handles the gateways
// whose lease it holds or takes; taken runs when it takes one over.
func (p *partition) accept(taken func(wh, gw string)) func(ctx context.Context, wh, gw string) bool {
	if p == nil {
		return nil
	}
	return func(ctx context.Context, wh, gw string) bool {
		ok, fresh, err := p.leases.Acquire(ctx, wh, gw)
		if err != nil {
			if now := time.Now().Unix(); p.lastLog.Swap(now) < now-10 {
				p.log.Warn("gateway lease unavailable; message dropped, the gateway will resend (logged once per 10 s)", "warehouse", wh, "gateway", gw, "err", err)
			}
			return false
		}
		if fresh {
			taken(wh, gw)
		}
		return ok
	}
}

// owns is the downstream sender's Owns hook.
func (p *partition) owns() func(wh, gw string) bool {
	if p == nil {
		return nil
	}
	return p.leases.Owns
}

// run renews the leases until ctx ends, then releases them.
func (p *partition) run(ctx context.Context) {
	if p != nil {
		go p.leases.Run(ctx)
	}
}
