package app

import (
	"crypto/tls"
	"fmt"
	"log/slog"

	"github.com/shelfsync/shelfsync/agent/internal/config"
	"github.com/shelfsync/shelfsync/agent/internal/uplink"
)

// uplinkSecurity loads the uplink's TLS configuration and password and
// refuses to start when the gateway's broker identity (certificate CN or
// username) is not its warehouse/gateway: the broker's ACL would refuse or
// silently drop everything it publishes.
func uplinkSecurity(cfg config.Config, log *slog.Logger) (t *tls.Config, certCN, password string, err error) {
	if cfg.TLSEnabled() {
		t, certCN, err = uplink.LoadTLS(uplink.TLSFiles{CA: cfg.TLSCA, Cert: cfg.TLSCert, Key: cfg.TLSKey})
		if err != nil {
			return nil, "", "", err
		}
		if certCN != "" {
			if err := uplink.CheckIdentity("the client certificate's CN", certCN, cfg.Warehouse, cfg.Gateway); err != nil {
				return nil, "", "", err
			}
			if cfg.Username != "" && cfg.Username != certCN {
				return nil, "", "", fmt.Errorf("%w: mqtt-username %q differs from the client certificate's CN %q; brokers refuse that — leave mqtt-username empty", uplink.ErrIdentity, cfg.Username, certCN)
			}
		}
	}
	if cfg.Username != "" {
		if err := uplink.CheckIdentity("mqtt-username", cfg.Username, cfg.Warehouse, cfg.Gateway); err != nil {
			return nil, "", "", err
		}
	}
	password, err = cfg.ReadPassword()
	if err != nil {
		return nil, "", "", err
	}
	for _, w := range cfg.Insecure() {
		log.Warn("INSECURE — development only: " + w)
	}
	return t, certCN, password, nil
}
