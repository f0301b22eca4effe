// Package app wires the server together: store, broker, ingest, the
// post-commit event bus and its subscribers, the replicas' coordination
// and HTTP. It only wires: each part is built once, after what it needs,
// and what follows a commit subscribes to the bus (follow.go).
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	"github.com/shelfsync/shelfsync/server/internal/brokerlink"
	"github.com/shelfsync/shelfsync/server/internal/config"
	"github.com/shelfsync/shelfsync/server/internal/dashboard"
	"github.com/shelfsync/shelfsync/server/internal/diskspace"
	"github.com/shelfsync/shelfsync/server/internal/downstream"
	"github.com/shelfsync/shelfsync/server/internal/events"
	"github.com/shelfsync/shelfsync/server/internal/ingest"
	"github.com/shelfsync/shelfsync/server/internal/replica"
	"github.com/shelfsync/shelfsync/server/internal/routing"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Server is a running shelfsync server.
type Server struct {
	cfg    config.Config
	log    *slog.Logger
	st     store.Store
	disk   *diskspace.Guard // the data directory's disk (store.go)
	broker *broker.Broker
	bus    *events.Bus
	rep    *replica.Replica // nil: a single server (Badger)
	ingest *ingest.Ingest
	down   *downstream.Sender
	inv    *inventory // inventory.go: orders, alerts, webhooks, dashboard feed
	md     *mdWiring
	floor  *floor // floor.go: short picks, orders routed after intake
	http   *http.Server
	httpLn net.Listener
	cancel context.CancelFunc
}

// New opens the store and starts listening; Run serves until ctx ends.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	s := &Server{cfg: cfg, log: log}
	ctx, s.cancel = context.WithCancel(ctx)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerMemoryMetrics(reg) // memory.go
	s.bus = events.New(events.Config{Logger: log.With("component", "events"), Registerer: reg})
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		s.cancel()
		return nil, fmt.Errorf("create the data directory: %w", err)
	}
	s.disk = diskGuard(cfg, reg, log.With("component", "disk")) // store.go
	if err := waitForDisk(ctx, cfg, s.disk, reg); err != nil {  // store.go
		s.cancel()
		return nil, err
	}
	st, pg, err := openStore(ctx, cfg, s.disk, log) // store.go
	if err != nil {
		s.cancel()
		return nil, err
	}
	s.st = st
	if pg != nil {
		s.rep = replica.New(replica.NewID(), replica.Config{DB: pg, Bus: s.bus, Partition: cfg.PartitionWarehouses(),
			LeaseTTL: cfg.LeaseTTL, Logger: log, Registerer: reg})
	}
	sec, err := buildSecurity(cfg, reg, log) // security.go
	if err != nil {
		s.Close()
		return nil, err
	}
	brokerURL := cfg.BrokerURL
	var link brokerlink.Link
	if brokerURL == "" {
		// Clustered embedded brokers with warehouse leases: one consumer
		// per warehouse, read only by the replica holding its lease.
		var claim func(context.Context, string) bool
		if s.rep != nil && s.rep.Partition() != nil {
			claim = s.rep.Partition().Claim
		}
		b, err := broker.Start(broker.Config{Addr: cfg.MQTTAddr, Logger: log, TLS: sec.brokerTLS, Auth: sec.hook,
			StoreDir: broker.StoreDir(cfg.DataDir), MaxConnections: cfg.MQTTMaxConns, ConnectTimeout: cfg.MQTTConnectTimeout,
			MaxConnsPerIP: perIPLimit(cfg.MQTTMaxConnsPerIP), Warehouses: claim != nil, Root: cfg.Root,
			ServerName: clusterNode(cfg), Cluster: broker.Cluster{Listen: cfg.ClusterListen, Routes: cfg.ClusterRouteList(), Name: cfg.ClusterName}})
		if err != nil {
			s.Close()
			return nil, err
		}
		s.broker = b
		brokerURL = sec.brokerURL(b.Addr())
		// The ingest reads and answers in-process; an MQTT connection
		// carries the retained topics.
		link = brokerlink.NewNATS(brokerlink.NATSConfig{Server: b.NATS(), Username: sec.ingestUser, Password: sec.ingestPass, Root: cfg.Root,
			Logger: log.With("component", "ingest-link"), Claim: claim,
			MQTT: brokerlink.NewMQTT(brokerlink.MQTTConfig{Broker: brokerURL, ClientID: fmt.Sprintf("shelfsync-server-%d", time.Now().UnixNano()),
				Username: sec.ingestUser, Password: sec.ingestPass, TLS: sec.ingestTLS, Root: cfg.Root, Logger: log.With("component", "ingest-link")})})
		reg.MustRegister(b.Collector())
	}
	clock := protocol.NewClock(nil)
	s.down = downstream.New(downstream.Config{Logger: log.With("component", "downstream"), Clock: clock, Owns: s.owns()}, st)
	s.md = newMDWiring(st, s.bus, s.down, cfg.Bounds.Defaulted().ClockMaxOffset, log.With("component", "masterdata")) // masterdata.go
	hub := dashboard.NewHub()
	s.inv = newInventory(inventoryDeps{st: st, bus: s.bus, hub: hub, md: s.md.hooks(), leading: s.leading(), shared: s.rep != nil,
		replicaID: s.replicaID(), alertCfg: cfg.AlertConfig(), topics: protocol.NewTopics(cfg.Root), clock: clock, reg: reg, log: log.With("component", "inventory"),
		expiryEvery: cfg.ExpirySweepEvery(), expiryToday: cfg.ExpiryClock()})
	s.setupRouter(s.md.rt, cfg)
	if cfg.ExpiryClockOffset != 0 {
		log.Warn("TESTING: lot expiry is judged by a shifted clock (--expiry-clock-offset); leave it 0 in production",
			"offset", cfg.ExpiryClockOffset, "expiry_date", cfg.ExpiryClock()().UTC().Format(time.DateOnly))
	}
	s.md.ship = s.inv.shipScanned // ship notices of pack sessions (ship.go)
	s.ingest = ingest.New(ingest.Config{
		Link: link, Broker: brokerURL, Root: cfg.Root, Workers: cfg.Workers, Username: sec.ingestUser, Password: sec.ingestPass,
		TLS: sec.ingestTLS, Limits: sec.limits, ShareGroup: cfg.ShareGroup, NoDeflate: cfg.NoOpsDeflate, Clock: clock,
		Accept: s.accept(), Events: s.bus,
		Logger: log.With("component", "ingest"), Metrics: ingest.NewMetrics(reg),
		OnHello: func(wh, gw string, h *protocol.Hello) {
			s.down.Hello(wh, gw, h)
			s.updateGateway(wh, gw, func(g *store.Gateway) {
				g.Online, g.LastSeen, g.ReportedSeq, g.AgentVersion, g.Protocol = true, time.Now().UnixMilli(), h.LastSeq, h.AgentVersion, h.V
			})
		},
		OnLostOps:      s.md.lostOps, // lostops.go
		OnDownAck:      s.down.Acked,
		ClockMaxOffset: cfg.Bounds.Defaulted().ClockMaxOffset,
		OnClock:        s.inv.alerts.GatewayClock,
		OnStatus: func(m *protocol.Status) {
			s.down.Online(m.WH, m.GW, m.Online)
			s.down.Reported(m.WH, m.GW, m.LastSeq)
			s.md.status(m)
			s.updateGateway(m.WH, m.GW, func(g *store.Gateway) {
				g.Online, g.LastSeen, g.ReportedSeq, g.OutboxDepth = m.Online, time.Now().UnixMilli(), m.LastSeq, m.OutboxDepth
				if m.AgentVersion != "" {
					g.AgentVersion = m.AgentVersion
				}
			})
		},
	}, st)
	s.floor = newFloor(st, s.md, s.inv, s.bus, clock, reg, log.With("component", "floor"))
	s.md.onShort, s.inv.onOrder = s.floor.shortPick, s.floor.orderEvent
	s.follow() // follow.go: the bus's subscribers
	if err := s.inv.start(ctx, s.ingest); err != nil {
		s.Close()
		return nil, fmt.Errorf("start orders, alerts and webhooks: %w", err)
	}
	go s.floor.run(ctx) // once the order model is loaded
	if s.rep != nil {
		s.rep.Run(ctx, s.inv.lead, s.inv.reload)
	}
	s.bus.Start(ctx)
	s.ingest.Start(ctx)
	go s.down.Run(ctx, s.ingest)
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
		Committed: s.bus, Hooks: api.Hooks{Now: clock.Now}, Events: hub, Dashboard: dashboard.Handler(),
		OwnerRefused: sec.ownerRefused}
	s.inv.apiDeps(&deps)
	deps.Router = func(rt *routing.Service) { s.setupRouter(rt, cfg) }
	if b, ok := st.(interface {
		Backup(context.Context, io.Writer) error
	}); ok {
		deps.Backup = b.Backup // the embedded store: GET /api/v1/admin/backup
	}
	s.http = &http.Server{Handler: sec.guard.Protect(api.New(deps)), ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: bounds.HTTPReadTimeout, IdleTimeout: bounds.HTTPIdleTimeout}
	s.http.RegisterOnShutdown(hub.Close)
	return s, nil
}

// accept is the ingest's Accept hook: with warehouse partitioning, this
// replica applies the gateways of the warehouses it holds the lease of.
func (s *Server) accept() func(ctx context.Context, wh, gw string) bool {
	if s.rep == nil || s.rep.Partition() == nil {
		return nil
	}
	part := s.rep.Partition()
	return func(ctx context.Context, wh, gw string) bool {
		return part.Accept(ctx, wh, gw, func(wh, gw string) { s.down.Online(wh, gw, true) })
	}
}

// owns is the downstream sender's Owns hook (nil: every gateway).
func (s *Server) owns() func(wh, gw string) bool {
	if s.rep == nil || s.rep.Partition() == nil {
		return nil
	}
	return s.rep.Partition().Owns
}

// leading reports whether this server does the work one replica does
// alone (a single server always does).
func (s *Server) leading() func() bool {
	if s.rep == nil {
		return func() bool { return true }
	}
	return s.rep.Leader
}

// replicaID names this server in delivery leases ("" for a single server).
func (s *Server) replicaID() string {
	if s.rep == nil {
		return ""
	}
	return s.rep.ID()
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
	if s.broker != nil {
		if err := s.broker.Healthy(); err != nil {
			return err
		}
	}
	if !s.ingest.Connected() {
		return errors.New("not connected to the MQTT broker")
	}
	if err := s.disk.Err(); err != nil {
		return err
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
	s.cancel()
	s.bus.Wait()
	if s.rep != nil {
		s.rep.Wait() // its leases released while the store is open
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

// clusterNode is the embedded broker's node name: --cluster-node when
// clustered, the broker's default otherwise.
func clusterNode(cfg config.Config) string {
	if cfg.ClusterListen == "" {
		return ""
	}
	return cfg.ClusterNode
}

// perIPLimit maps --mqtt-max-conns-per-ip (0: no bound) to
// broker.Config.MaxConnsPerIP (negative: no bound).
func perIPLimit(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// setupRouter makes a pick router judge lots by the date the expiry sweep
// uses (FEFO) and by each channel's own minimum shelf life.
func (s *Server) setupRouter(rt *routing.Service, cfg config.Config) {
	rt.SetClock(cfg.ExpiryClock())
	rt.SetChannelShelfDays(func(channel string) int {
		for _, c := range s.inv.orders.Channels() {
			if c.Name == channel {
				return c.MinShelfDays
			}
		}
		return 0
	})
}
