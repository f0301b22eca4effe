// Package app wires the server together: store, broker, ingest and HTTP.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/net/netutil"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/api"
	"github.com/shelfsync/shelfsync/server/internal/broker"
	"github.com/shelfsync/shelfsync/server/internal/config"
	"github.com/shelfsync/shelfsync/server/internal/downstream"
	"github.com/shelfsync/shelfsync/server/internal/ingest"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Server is a running shelfsync server.
type Server struct {
	cfg    config.Config
	log    *slog.Logger
	st     store.Store
	broker *broker.Broker
	ingest *ingest.Ingest
	down   *downstream.Sender
	inv    *inventory // inventory.go: orders, alerts, webhooks, dashboard feed
	http   *http.Server
	httpLn net.Listener
}

// New opens the store and starts listening; Run serves until ctx ends.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	s := &Server{cfg: cfg, log: log}
	st, err := openStore(ctx, cfg, log) // store.go
	if err != nil {
		return nil, err
	}
	s.st = st
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sec, err := buildSecurity(cfg, reg, log) // security.go
	if err != nil {
		st.Close()
		return nil, err
	}
	brokerURL := cfg.BrokerURL
	if brokerURL == "" {
		b, err := broker.Start(broker.Config{Addr: cfg.MQTTAddr, Logger: log, TLS: sec.brokerTLS, Hook: sec.hook})
		if err != nil {
			st.Close()
			return nil, err
		}
		s.broker = b
		brokerURL = sec.brokerURL(b.Addr())
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelfsync_broker_clients", Help: "Clients connected to the embedded broker."},
			func() float64 { return float64(b.Clients()) }))
	}
	var down *downstream.Sender
	mdw := newMDWiring(st, cfg.Bounds.Defaulted().ClockMaxOffset, log.With("component", "masterdata")) // masterdata.go: gateway notices, master data hooks
	var inv *inventory
	part := newPartition(cfg, st, log) // store.go: gateway leases, or nil
	s.ingest = ingest.New(ingest.Config{
		Broker: brokerURL, Root: cfg.Root, Workers: cfg.Workers, Username: sec.ingestUser, Password: sec.ingestPass,
		TLS: sec.ingestTLS, Limits: sec.limits, ShareGroup: cfg.ShareGroup, NoDeflate: cfg.NoOpsDeflate,
		Accept: part.accept(func(wh, gw string) { down.Online(wh, gw, true) }),
		Logger: log.With("component", "ingest"), Metrics: ingest.NewMetrics(reg),
		OnApplied: func(wh, gw string, res store.Result) {
			down.Changed(wh)
			inv.applied(wh, gw, res)
			mdw.applied(wh, gw, res.WM)
		},
		OnHello: func(wh, gw string, h *protocol.Hello) {
			down.Hello(wh, gw, h)
			s.updateGateway(wh, gw, func(g *store.Gateway) {
				g.Online, g.LastSeen, g.ReportedSeq, g.AgentVersion, g.Protocol = true, time.Now().UnixMilli(), h.LastSeq, h.AgentVersion, h.V
			})
		},
		OnDownAck:      func(wh, gw string, a *protocol.DownAck) { down.Acked(wh, gw, a) },
		ClockMaxOffset: cfg.Bounds.Defaulted().ClockMaxOffset,
		OnClock: func(wh, gw string, err error) {
			if inv != nil && inv.alerts != nil {
				inv.alerts.GatewayClock(wh, gw, err)
			}
		},
		OnStatus: func(m *protocol.Status) {
			down.Online(m.WH, m.GW, m.Online)
			mdw.status(m)
			s.updateGateway(m.WH, m.GW, func(g *store.Gateway) {
				g.Online, g.LastSeen, g.ReportedSeq, g.OutboxDepth = m.Online, time.Now().UnixMilli(), m.LastSeq, m.OutboxDepth
				if m.AgentVersion != "" {
					g.AgentVersion = m.AgentVersion
				}
			})
		},
	}, st)
	down = downstream.New(downstream.Config{Logger: log.With("component", "downstream"), Publish: s.ingest.Publish, Clock: s.ingest.Clock(), Owns: part.owns()}, st)
	s.down = down
	cl := newCluster(st, log)
	inv = newInventory(st, s.ingest, mdw.hooks(), cl, reg, log.With("component", "inventory"))
	inv.down = down.Changed
	s.inv = inv
	mdw.down, mdw.inv = down, inv
	if err := inv.start(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("start orders, alerts and webhooks: %w", err)
	}
	cl.run(ctx) // cluster.go: the replica feed and the leader election (PostgreSQL)
	cl.metrics(reg)
	s.ingest.Start(ctx)
	go down.Run(ctx)
	part.run(ctx)
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("http listen on %s: %w (pick another with --http)", cfg.HTTPAddr, err)
	}
	bounds := cfg.Bounds.Defaulted()
	s.httpLn = netutil.LimitListener(ln, bounds.HTTPMaxConns)
	uploads := filepath.Join(cfg.DataDir, "uploads")
	_ = os.RemoveAll(uploads) // uploads a crash left half-imported
	if err := os.MkdirAll(uploads, 0o700); err != nil {
		s.Close()
		return nil, fmt.Errorf("create the upload directory: %w", err)
	}
	deps := api.Deps{Store: st, Ready: s.ready, Gatherer: reg, Logger: log, Middleware: sec.guard.Middleware,
		UploadDir: uploads, MaxImportBytes: bounds.MaxImportBytes, UploadTimeout: bounds.HTTPUploadTimeout,
		Hooks: api.Hooks{
			Changed: func(wh string, res store.Result) { down.Changed(wh); inv.applied(wh, protocol.ServerOrigin, res) },
			Now:     s.ingest.Clock().Now,
		}}
	inv.apiDeps(&deps)
	s.http = &http.Server{Handler: sec.guard.Protect(api.New(deps)), ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: bounds.HTTPReadTimeout, IdleTimeout: bounds.HTTPIdleTimeout}
	s.http.RegisterOnShutdown(inv.hub.Close)
	return s, nil
}

func (s *Server) updateGateway(wh, gw string, f func(*store.Gateway)) {
	for i := 0; i < 5; i++ {
		err := s.st.UpdateGateway(context.Background(), wh, gw, f)
		if !errors.Is(err, store.ErrConflict) {
			if err != nil {
				s.log.Warn("gateway record not updated", "warehouse", wh, "gateway", gw, "err", err)
			}
			return
		}
	}
}

func (s *Server) ready() error {
	if !s.ingest.Connected() {
		return errors.New("not connected to the MQTT broker")
	}
	return nil
}

// HTTPAddr returns the bound HTTP address.
func (s *Server) HTTPAddr() string { return s.httpLn.Addr().String() }

// MQTTAddr returns the embedded broker's address ("" with an external one).
func (s *Server) MQTTAddr() string {
	if s.broker == nil {
		return ""
	}
	return s.broker.Addr()
}

// Run serves HTTP until ctx is done, then shuts down.
func (s *Server) Run(ctx context.Context) error {
	s.log.Info("shelfsync server running", "http", s.HTTPAddr(), "mqtt", s.MQTTAddr(), "data", s.cfg.DataDir, "epoch", s.st.Epoch())
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(s.httpLn) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			s.Close()
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.Shutdown)
	defer cancel()
	_ = s.http.Shutdown(sctx)
	return s.Close()
}

// Close stops everything; safe to call once after New.
func (s *Server) Close() error {
	if s.inv != nil {
		s.inv.stop()
		s.inv = nil
	}
	if s.ingest != nil {
		s.ingest.Stop()
		s.ingest = nil
	}
	if s.broker != nil {
		s.broker.Close()
		s.broker = nil
	}
	if s.st != nil {
		err := s.st.Close()
		s.st = nil
		return err
	}
	return nil
}
