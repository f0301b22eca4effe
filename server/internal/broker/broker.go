// Package broker runs the embedded MQTT broker (mochi-mqtt) that a
// single-machine shelfsync uses by default. The server's ingest talks to it
// over TCP like to any external broker, so there is one code path.
package broker

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Config configures the embedded broker.
type Config struct {
	// Addr is the TCP listen address, e.g. "127.0.0.1:1884"; port 0 picks one.
	Addr string
	// TLS, when set, makes the listener TLS (mutual when ClientAuth asks).
	TLS *tls.Config
	// Hook authenticates clients and authorises topics. Nil allows everyone
	// (development only; the caller warns).
	Hook   mqtt.Hook
	Logger *slog.Logger
}

// Broker is a running embedded broker.
type Broker struct {
	srv *mqtt.Server
	ln  net.Listener
}

// Start listens on cfg.Addr and serves MQTT until Close.
func Start(cfg Config) (*Broker, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumMessageExpiryInterval = 0 // keep retained status until replaced
	caps.MaximumPacketSize = 2 << 20      // a bigger packet disconnects its client before it is read (as Mosquitto's max_packet_size)
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Capabilities: caps, Logger: log.With("component", "broker")})
	if cfg.Hook != nil {
		if err := srv.AddHook(cfg.Hook, nil); err != nil {
			return nil, fmt.Errorf("broker hook: %w", err)
		}
	} else if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, fmt.Errorf("broker hook: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("embedded broker listen on %s: %w (another MQTT broker may hold the port; pick another with --mqtt)", cfg.Addr, err)
	}
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS)
	}
	if err := srv.AddListener(listeners.NewNet("shelfsync", ln)); err != nil {
		ln.Close()
		return nil, fmt.Errorf("broker listener: %w", err)
	}
	go func() {
		if err := srv.Serve(); err != nil {
			log.Error("embedded broker stopped", "err", err)
		}
	}()
	return &Broker{srv: srv, ln: ln}, nil
}

// Addr returns the address the broker listens on.
func (b *Broker) Addr() string { return b.ln.Addr().String() }

// Clients returns the number of connected clients.
func (b *Broker) Clients() int { return b.srv.Clients.Len() }

// Close stops the broker and disconnects every client.
func (b *Broker) Close() error { return b.srv.Close() }
