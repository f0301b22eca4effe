// Package broker runs the embedded message broker a shelfsync server uses by
// default: an in-process nats-server with JetStream (its store under the
// server's data directory) and an MQTT 3.1.1 listener for the gateways.
// Gateways stay MQTT clients; the broker authenticates them and sets each
// one's topic permissions from one hook (auth.go). Several brokers form a
// NATS cluster (cluster.go); with warehouse consumers (warehouses.go) the
// replicas they serve divide the warehouses between them.
package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/shelfsync/shelfsync/protocol"
)

// MaxMessageBytes is the largest message the embedded broker accepts: a
// bigger PUBLISH disconnects its client before it is forwarded (like
// Mosquitto's max_packet_size). It is the protocol's limit
// (protocol.MaxMessageSize) plus room for the topic and the header the
// broker adds to a stored message.
const MaxMessageBytes = protocol.MaxMessageSize + 1<<10

// Defaults of the connection limits (Config).
const (
	DefaultMaxConnections = 10000
	DefaultConnectTimeout = 10 * time.Second
)

// Config configures the embedded broker.
type Config struct {
	// Addr is the MQTT listen address, e.g. "127.0.0.1:1884"; port 0 picks one.
	Addr string
	// TLS, when set, makes the MQTT listener TLS (mutual when ClientAuth asks).
	TLS *tls.Config
	// Auth authenticates MQTT clients and sets their permissions. Nil allows
	// every client everything (development only; the caller warns).
	Auth *Auth
	// StoreDir is where JetStream keeps MQTT sessions, retained messages
	// and QoS 1 messages in flight. Empty: a temporary directory removed on
	// Close (tests).
	StoreDir string
	// MaxConnections bounds the clients connected at once (default
	// DefaultMaxConnections); a connection over it is closed at once.
	MaxConnections int
	// ConnectTimeout bounds the time from accepting a connection to its
	// MQTT CONNECT being authenticated, TLS handshake included (default
	// DefaultConnectTimeout). Idle connections that never say who they are
	// are closed after it.
	ConnectTimeout time.Duration
	// MaxConnsPerIP bounds the clients one remote IP address may have
	// connected at once (default DefaultMaxConnsPerIP; negative: no
	// bound). A client over it is refused at its CONNECT (counted in
	// shelfsync_broker_connect_refused_total{reason="per_ip_limit"}).
	MaxConnsPerIP int
	// ServerName names this broker node (default "shelfsync"); every node
	// of a cluster needs its own.
	ServerName string
	// Cluster, when its Listen is set, joins this node to other nodes
	// into one NATS cluster (cluster.go).
	Cluster Cluster
	// Warehouses keeps one ingest consumer per warehouse, made when a
	// gateway of the warehouse connects (warehouses.go), so that replicas
	// can divide the warehouses between them.
	Warehouses bool
	// Root is the topic root of the warehouse consumers (default
	// protocol.DefaultRoot).
	Root   string
	Logger *slog.Logger
}

// Broker is a running embedded broker.
type Broker struct {
	ns      *server.Server
	opts    *server.Options
	log     *natsLog
	auth    *Auth
	tempDir string
	stop    chan struct{} // ends the per-IP counter
	wh      *warehouses   // with Config.Warehouses
}

// Start starts the broker and waits until it accepts MQTT connections.
func Start(cfg Config) (*Broker, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, port, err := splitAddr(cfg.Addr)
	if err != nil {
		return nil, err
	}
	b := &Broker{}
	storeDir := cfg.StoreDir
	if storeDir == "" {
		if b.tempDir, err = os.MkdirTemp("", "shelfsync-broker-"); err != nil {
			return nil, err
		}
		storeDir = b.tempDir
	} else if err := os.MkdirAll(storeDir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded broker store %s: %w", storeDir, err)
	}
	if cfg.MaxConnections == 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "shelfsync"
	}
	if cfg.MaxConnsPerIP == 0 {
		cfg.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	auth := cfg.Auth
	if auth == nil {
		// An allow-all hook rather than none: without authentication the
		// broker would never time out a connection that sends no CONNECT.
		auth = NewAuth(AuthConfig{AllowAll: true})
	}
	auth.wh = nil
	if cfg.Warehouses {
		// Until open below, gateways are refused: their warehouse's
		// consumer cannot be made before the streams exist.
		b.wh = newWarehouses(cfg.Root)
		auth.wh = b.wh
	}
	var limiter *perIP
	if cfg.MaxConnsPerIP > 0 {
		limiter = newPerIP(cfg.MaxConnsPerIP)
		auth.perIP = limiter
	}
	timeout := cfg.ConnectTimeout.Seconds()
	b.opts = &server.Options{
		ServerName: cfg.ServerName,
		DontListen: true, // no NATS client port: the server's own client is in-process
		JetStream:  true,
		StoreDir:   storeDir,
		// The MQTT streams are in memory (streams.go); nothing is stored on
		// disk but JetStream's own metadata.
		JetStreamMaxMemory: maxJetStreamBytes,
		JetStreamMaxStore:  64 << 20,
		MaxConn:            cfg.MaxConnections,
		MaxPayload:         MaxMessageBytes,
		// A subscriber that cannot keep up is cut off past this many bytes
		// buffered for it (QoS 1 messages stay in JetStream for it).
		MaxPending:                 64 << 20,
		AuthTimeout:                timeout,
		NoSigs:                     true,
		CustomClientAuthentication: auth,
		MQTT: server.MQTTOpts{
			Host: host, Port: port,
			TLSConfig: cfg.TLS, TLSTimeout: timeout, AuthTimeout: timeout,
			// The server's ingest subscribes to every gateway's up and
			// status topics: let it have many QoS 1 messages in flight.
			MaxAckPending: 16384,
			// How long a QoS 1 publish or a CONNECT waits for JetStream
			// before the client is disconnected (default 5 s): a loaded
			// machine took longer, and every such disconnect costs resends.
			JSAPITimeout: 30 * time.Second,
		},
	}
	replicas := 1
	if cfg.Cluster.enabled() {
		if replicas, err = cfg.Cluster.apply(b.opts); err != nil {
			b.removeTemp()
			return nil, err
		}
	}
	ns, err := server.NewServer(b.opts)
	if err != nil {
		b.removeTemp()
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	b.auth = auth
	b.log = newNATSLog(log.With("component", "broker"))
	b.log.denied = func(action, clientID string) {
		auth.m.ACLDenied.WithLabelValues(action, roleName(auth.clientRole(clientID))).Inc()
	}
	ns.SetLoggerV2(b.log, false, false, false)
	b.ns = ns
	ns.Start()
	deadline := time.Now().Add(30 * time.Second)
	for !ns.ReadyForConnections(100 * time.Millisecond) {
		if err := b.log.fatal(); err != nil {
			b.Close()
			return nil, fmt.Errorf("embedded broker on %s: %w (another MQTT broker may hold the port; pick another with --mqtt)", cfg.Addr, err)
		}
		if time.Now().After(deadline) {
			b.Close()
			return nil, errors.New("embedded broker did not start within 30 s; see the log for why")
		}
	}
	if cfg.Cluster.enabled() {
		// Streams of a clustered JetStream are created by its meta leader,
		// which needs a quorum of nodes: wait until one is elected.
		if err := b.waitMetaLeader(cfg.Cluster.startTimeout()); err != nil {
			b.Close()
			return nil, err
		}
	}
	if err := b.createStreams(auth.cfg.InternalUser, auth.cfg.InternalPassword, replicas); err != nil {
		b.Close()
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	if b.wh != nil {
		if err := b.wh.open(b, auth.cfg.InternalUser, auth.cfg.InternalPassword); err != nil {
			b.Close()
			return nil, fmt.Errorf("embedded broker: %w", err)
		}
	}
	if limiter != nil {
		b.stop = make(chan struct{})
		go b.countPerIP(limiter, cfg.MaxConnections, b.stop)
	}
	return b, nil
}

// splitAddr parses "host:port" for the MQTT listener; port 0 asks for a
// free one (nats-server's -1).
func splitAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("embedded broker address %q: %w (want HOST:PORT, e.g. 127.0.0.1:1884)", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("embedded broker address %q: bad port", addr)
	}
	if port == 0 {
		port = -1
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// Addr returns the address the MQTT listener is bound to.
func (b *Broker) Addr() string {
	return net.JoinHostPort(b.opts.MQTT.Host, strconv.Itoa(b.opts.MQTT.Port))
}

// Clients returns the number of connected clients.
func (b *Broker) Clients() int { return b.ns.NumClients() }

// NATS returns the embedded nats-server, for in-process clients and
// monitoring.
func (b *Broker) NATS() *server.Server { return b.ns }

// Close stops the broker and disconnects every client.
func (b *Broker) Close() error {
	if b.stop != nil {
		close(b.stop)
		b.stop = nil
	}
	if b.wh != nil {
		b.wh.close()
	}
	if b.ns != nil {
		b.ns.Shutdown()
		b.ns.WaitForShutdown()
	}
	b.removeTemp()
	return nil
}

func (b *Broker) removeTemp() {
	if b.tempDir != "" {
		os.RemoveAll(b.tempDir)
		b.tempDir = ""
	}
}

// StoreDir returns where the broker keeps its JetStream store under the
// server's data directory.
func StoreDir(dataDir string) string { return filepath.Join(dataDir, "broker") }
