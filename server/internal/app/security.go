package app

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/api"
	"github.com/shelfsync/shelfsync/server/internal/auth"
	"github.com/shelfsync/shelfsync/server/internal/broker"
	"github.com/shelfsync/shelfsync/server/internal/certs"
	"github.com/shelfsync/shelfsync/server/internal/config"
	"github.com/shelfsync/shelfsync/server/internal/ingest"
)

// security holds what the transport-security settings build: the embedded
// broker's TLS and auth hook, the ingest's TLS and credentials, the HTTP
// guard and the ingest limits.
type security struct {
	brokerTLS  *tls.Config  // nil: plain TCP
	hook       *broker.Auth // nil: allow everyone (development)
	ingestTLS  *tls.Config
	ingestUser string
	ingestPass string
	guard      *auth.Guard
	// ownerRefused counts owner tokens' 403s by route (guard and API).
	ownerRefused *prometheus.CounterVec
	limits       ingest.Limits
}

func buildSecurity(cfg config.Config, reg prometheus.Registerer, log *slog.Logger) (*security, error) {
	s := &security{
		ingestUser: cfg.Username, ingestPass: cfg.Password,
		limits: ingest.Limits{MaxMessageBytes: cfg.MaxMsgBytes, Rate: cfg.GatewayRate, Burst: cfg.GatewayBurst, MaxPending: cfg.GatewayBacklog},
	}
	if s.limits.MaxMessageBytes == 0 {
		s.limits.MaxMessageBytes = protocol.MaxMessageSize
	}
	if s.limits.Rate == 0 {
		s.limits.Rate = 500
	}
	if cfg.BrokerURL == "" {
		if err := s.embedded(cfg, reg, log); err != nil {
			return nil, err
		}
	} else if cfg.TLSCA != "" || cfg.TLSCert != "" || strings.HasPrefix(cfg.BrokerURL, "ssl://") {
		t, err := certs.ClientTLS(cfg.TLSCA, cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("external broker TLS: %w", err)
		}
		s.ingestTLS = t
	}
	ac := auth.Config{OpenHealthz: cfg.OpenHealthz, OpenMetrics: cfg.OpenMetrics, Logger: log.With("component", "http-auth"), Denied: auth.NewDeniedCounter(reg),
		OwnerAllowed: api.OwnerAllowed}
	s.ownerRefused = api.NewOwnerRefusedCounter(reg)
	ac.OwnerRefused = func(route string) { s.ownerRefused.WithLabelValues(route).Inc() }
	if cfg.APITokens != "" {
		tf, err := auth.LoadTokenFile(cfg.APITokens)
		if err != nil {
			return nil, err
		}
		ac.Tokens = tf
		if tf.Len() == 0 {
			log.Warn("the API token file holds no token: every API request will be refused; add one with `shelfsync-server tokens add`", "file", cfg.APITokens)
		}
	}
	s.guard = auth.New(ac)
	for _, w := range cfg.Insecure() {
		log.Warn("INSECURE — development only: " + w)
	}
	return s, nil
}

func (s *security) embedded(cfg config.Config, reg prometheus.Registerer, log *slog.Logger) error {
	var pw *broker.Passwords
	if cfg.MQTTPasswords != "" {
		p, err := broker.LoadPasswords(cfg.MQTTPasswords)
		if err != nil {
			return err
		}
		pw = p
	}
	if cfg.EmbeddedTLS() {
		// Client certificates are optional at the TLS level when passwords
		// are allowed too; the hook then refuses clients with neither.
		t, err := certs.BrokerTLS(cfg.TLSBrokerCert, cfg.TLSBrokerKey, cfg.TLSCA, false)
		if err != nil {
			return err
		}
		s.brokerTLS = t
		if s.ingestTLS, err = certs.PinnedTLS(t); err != nil {
			return err
		}
	}
	if s.brokerTLS == nil && pw == nil {
		return nil // development: allow-all, warned about by Insecure
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	s.ingestUser = broker.ServerIdentity
	s.ingestPass = base64.RawURLEncoding.EncodeToString(secret)
	s.hook = broker.NewAuth(broker.AuthConfig{
		Root: cfg.Root, Passwords: pw, InternalUser: s.ingestUser, InternalPassword: s.ingestPass,
		Logger: log.With("component", "broker-auth"), Metrics: broker.NewAuthMetrics(reg),
	})
	return nil
}

// brokerURL returns the URL the ingest dials for the embedded broker.
func (s *security) brokerURL(addr string) string {
	if s.brokerTLS != nil {
		return "ssl://" + addr
	}
	return "tcp://" + addr
}
