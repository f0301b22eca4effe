// Package app wires the agent together: store, devices, uplink and HTTP.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/shelfsync/shelfsync/agent/internal/api"
	"github.com/shelfsync/shelfsync/agent/internal/config"
	"github.com/shelfsync/shelfsync/agent/internal/devices"
	"github.com/shelfsync/shelfsync/agent/internal/store"
	"github.com/shelfsync/shelfsync/agent/internal/uplink"
	"github.com/shelfsync/shelfsync/protocol"
)

// Agent is a running gateway daemon.
type Agent struct {
	cfg     config.Config
	log     *slog.Logger
	st      *store.Store
	devices *devices.Manager
	uplink  *uplink.Uplink
	http    *http.Server
	httpLn  net.Listener
	// tasksPruned counts the closed tasks dropped (pruneTasks).
	tasksPruned atomic.Uint64
}

// New opens the store and builds the parts; Run starts them.
func New(cfg config.Config, version string, log *slog.Logger) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	upTLS, certCN, mqttPassword, err := uplinkSecurity(cfg, log) // security.go
	if err != nil {
		return nil, err
	}
	var specs []devices.Spec
	for _, d := range cfg.Devices {
		sp, err := devices.ParseSpec(d)
		if err != nil {
			return nil, err
		}
		specs = append(specs, sp)
	}
	st, err := store.Open(store.Options{Dir: cfg.DataDir, Logger: log, Small: cfg.SmallStore,
		Retention:     store.Retention{MaxAge: cfg.RetainFor, MaxOps: cfg.RetainOps, MinFreeBytes: cfg.RetainMinFree},
		TaskRetention: cfg.TaskRetention,
		DiskReserve:   uint64(max(cfg.DiskReserve, 0)), DiskLow: uint64(max(cfg.DiskLow, 0))})
	if err != nil {
		return nil, err
	}
	clock := protocol.NewClock(nil)
	if cfg.ClockMaxOffset > 0 {
		clock.SetMaxOffset(cfg.ClockMaxOffset)
	}
	st.SetClock(clock)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	scans := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_agent_scans_total", Help: "Scans by verdict (good, bad, warn)."}, []string{"verdict"})
	reg.MustRegister(scans)
	a := &Agent{cfg: cfg, log: log, st: st}
	a.devices, err = devices.New(devices.Config{
		Specs: specs, ReceivingLoc: cfg.ReceivingLoc, IdleTimeout: cfg.IdleTimeout, Logger: log.With("component", "devices"),
		OnScan: func(e devices.ScanLog) { scans.WithLabelValues(string(e.Verdict)).Inc() },
	}, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	a.uplink = uplink.New(uplink.Config{
		Brokers: cfg.Brokers(), Username: cfg.Username, Password: mqttPassword, Root: cfg.Root,
		TLS: upTLS, CertCN: certCN, ACLBackoff: cfg.ACLBackoff,
		Warehouse: cfg.Warehouse, Gateway: cfg.Gateway, AgentVersion: version,
		MaxBatchOps: cfg.MaxBatchOps, Linger: cfg.Linger, AckTimeout: cfg.AckTimeout,
		Logger: log.With("component", "uplink"), Devices: a.devices.Statuses,
	}, st, clock)
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelfsync_agent_outbox_depth", Help: "Ops committed but not yet acknowledged by the server."},
			func() float64 { d, _ := st.OutboxDepth(); return float64(d) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "shelfsync_agent_server_regressions_total", Help: "Times the server's state was seen to go back in time (another identity, or a watermark below what it had acknowledged): restored from a backup or replaced; the ops it lacked were resent from retention."},
			func() float64 { return float64(a.uplink.State().Regressions) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelfsync_agent_lost_ops_pending", Help: "Ops the server lacks that are beyond this gateway's retention, while the server has not recorded them as lost-ops (an older server: reconcile by counting the zone)."},
			func() float64 {
				if l := a.uplink.State().Lost; l != nil {
					return float64(l.To - l.From + 1)
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelfsync_agent_retained_ops", Help: "Acknowledged ops kept for a server restore (--retain-for, --retain-ops)."},
			func() float64 {
				if p, err := st.Positions(); err == nil && p.Acked >= p.First {
					return float64(p.Acked - p.First + 1)
				}
				return 0
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "shelfsync_agent_tasks_pruned_total", Help: "Closed tasks dropped after --task-retention."},
			func() float64 { return float64(a.tasksPruned.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelfsync_agent_clock_skew_seconds", Help: "The server's clock minus this gateway's, measured on the latest ack or downstream batch."},
			func() float64 { return float64(a.uplink.State().ClockSkewMS) / 1000 }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "shelfsync_agent_clock_refused_total", Help: "Server clock values refused for running more than the maximum offset ahead of this gateway's clock."},
			func() float64 { return float64(a.uplink.State().ClockRefused) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelfsync_agent_disk_free_bytes", Help: "Free space on the data directory's file system."},
			func() float64 { return float64(st.Disk().FreeBytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelfsync_agent_disk_full", Help: "1 while the data disk is below its reserve and scans are refused (bad beep, \"disk full\")."},
			func() float64 { return b2f(st.Disk().Full) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelfsync_agent_disk_low", Help: "1 while the data disk is below the low-disk threshold."},
			func() float64 { return b2f(st.Disk().Low) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelfsync_agent_uplink_connected", Help: "1 when connected to the broker."},
			func() float64 { return b2f(a.uplink.State().Connected) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelfsync_agent_devices_connected", Help: "Devices currently connected."},
			func() float64 {
				n := 0
				for _, d := range a.devices.Statuses() {
					if d.Connected {
						n++
					}
				}
				return float64(n)
			}),
	)
	registerQueueMetrics(reg, st, a.devices.Statuses) // queue_metrics.go
	if cfg.HTTPAddr != "" {
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("http listen on %s: %w (pick another with --http)", cfg.HTTPAddr, err)
		}
		a.httpLn = ln
		a.http = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: a.withScreen(api.Handler(api.Deps{ // screen.go
			Warehouse: cfg.Warehouse, Gateway: cfg.Gateway, Store: st, Uplink: a.uplink, Devices: a.devices, Gatherer: reg,
		}))}
	}
	return a, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// HTTPAddr returns the bound HTTP address ("" when disabled).
func (a *Agent) HTTPAddr() string {
	if a.httpLn == nil {
		return ""
	}
	return a.httpLn.Addr().String()
}

// Devices returns the device manager (for in-process tests and benchmarks).
func (a *Agent) Devices() *devices.Manager { return a.devices }

// Store returns the store (for in-process tests and benchmarks).
func (a *Agent) Store() *store.Store { return a.st }

// Run runs until ctx is done, then stops everything and closes the store.
func (a *Agent) Run(ctx context.Context) error {
	a.log.Info("shelfsync agent running", "warehouse", a.cfg.Warehouse, "gateway", a.cfg.Gateway, "broker", a.cfg.BrokerURL, "http", a.HTTPAddr(), "devices", len(a.cfg.Devices))
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); a.devices.Run(ctx) }()
	go func() { defer wg.Done(); a.pruneTasks(ctx) }()
	go func() {
		defer wg.Done()
		if err := a.uplink.Run(ctx); err != nil {
			a.log.Error("uplink stopped", "err", err)
		}
	}()
	if a.http != nil {
		go func() {
			if err := a.http.Serve(a.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("http stopped", "err", err)
			}
		}()
	}
	<-ctx.Done()
	if a.http != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = a.http.Shutdown(sctx)
		cancel()
	}
	wg.Wait()
	return a.st.Close()
}

// taskPruneEvery is how often closed tasks past --task-retention are
// dropped (store.PruneTasks); the first sweep runs at start.
const taskPruneEvery = 10 * time.Minute

// pruneTasks drops closed tasks past their retention until ctx ends.
func (a *Agent) pruneTasks(ctx context.Context) {
	t := time.NewTicker(taskPruneEvery)
	defer t.Stop()
	for {
		n, err := a.st.PruneTasks(time.Now())
		if err != nil {
			a.log.Warn("prune closed tasks", "err", err)
		}
		a.tasksPruned.Add(uint64(n))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
