package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shelfsync/shelfsync/server/internal/config"
	"github.com/shelfsync/shelfsync/server/internal/diskspace"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
	"github.com/shelfsync/shelfsync/server/internal/store/postgres"
)

// openStore opens the backend cfg.Store names: PostgreSQL for a
// postgres:// URL (migrating its schema; returned twice, the second time
// for the replicas' coordination), else Badger under cfg.DataDir.
func openStore(ctx context.Context, cfg config.Config, disk *diskspace.Guard, log *slog.Logger) (store.Store, *postgres.Store, error) {
	if cfg.Postgres() {
		pg, err := postgres.Open(ctx, cfg.Store, postgres.Options{Logger: log.With("component", "store")})
		if err != nil {
			return nil, nil, err
		}
		return pg, pg, nil
	}
	st, err := badger.Open(badger.Options{Dir: cfg.DataDir, Logger: log, Disk: disk})
	return st, nil, err
}

// waitForDisk holds the start of a Badger server while its data disk is
// below the reserve: opening Badger writes (its lock file, a new memtable
// log), which fails on a full disk — or, through a mapped file, kills the
// process with SIGBUS — so a restart would crash-loop. Meanwhile it
// answers on the HTTP address: /healthz is 503 and says why, /metrics has
// the disk gauges (the guard logs the state). It returns once space is
// back (checked every second), or with ctx's error.
func waitForDisk(ctx context.Context, cfg config.Config, g *diskspace.Guard, reg *prometheus.Registry) error {
	if cfg.Postgres() || !g.Check().Full {
		return nil
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		st := g.Check()
		http.Error(w, fmt.Sprintf("data disk full: the store opens when space is freed (%d bytes free, %d kept in reserve; --disk-reserve)", st.FreeBytes, st.ReserveBytes),
			http.StatusServiceUnavailable)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for g.Check().Full {
		select {
		case <-ctx.Done():
			return errors.Join(errors.New("stopped while waiting for free space on the data disk"), ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

// diskGuard guards the data directory's disk (diskspace): it logs when the
// disk turns low or full and when it recovers, and exports its state.
func diskGuard(cfg config.Config, reg prometheus.Registerer, log *slog.Logger) *diskspace.Guard {
	b := cfg.Bounds.Defaulted()
	g := diskspace.New(cfg.DataDir, uint64(b.DiskReserve), uint64(b.DiskLow), nil)
	g.OnChange = func(st diskspace.State) {
		switch {
		case st.Full:
			log.Error("data disk below its reserve: batches are not acknowledged and API writes fail until space is freed", "dir", cfg.DataDir, "free_bytes", st.FreeBytes, "reserve_bytes", st.ReserveBytes)
		case st.Low:
			log.Warn("data disk low", "dir", cfg.DataDir, "free_bytes", st.FreeBytes, "low_bytes", b.DiskLow)
		default:
			log.Info("data disk has room again", "dir", cfg.DataDir, "free_bytes", st.FreeBytes)
		}
	}
	b2f := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelfsync_server_disk_free_bytes", Help: "Free space on the data directory's file system."},
			func() float64 { return float64(g.Check().FreeBytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelfsync_server_disk_full", Help: "1 while the data disk is below --disk-reserve: nothing is applied or acknowledged."},
			func() float64 { return b2f(g.Check().Full) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelfsync_server_disk_low", Help: "1 while the data disk is below --disk-low."},
			func() float64 { return b2f(g.Check().Low) }),
	)
	return g
}
