package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/shelfsync/shelfsync/protocol"
)

// Security is the transport security, API authentication and hostile-input
// part of the server's configuration. In a TOML file the tls-* keys may
// also be written as a [tls] table (ca, cert, key, broker_cert, broker_key).
type Security struct {
	// TLSCA is the CA bundle that verifies gateway client certificates on
	// the embedded broker (mutual TLS) and the external broker's certificate.
	TLSCA string
	// TLSCert/TLSKey are the server's client certificate (CN "server") for
	// an external broker.
	TLSCert string
	TLSKey  string
	// TLSBrokerCert/TLSBrokerKey make the embedded broker speak TLS.
	TLSBrokerCert string
	TLSBrokerKey  string
	// MQTTPasswords is a password file (Mosquitto format) for gateways
	// without certificates on the embedded broker.
	MQTTPasswords string
	// APITokens is the bearer-token file of the HTTP API; empty leaves the
	// API open (development).
	APITokens   string
	OpenHealthz bool
	OpenMetrics bool
	// MaxMsgBytes, GatewayRate, GatewayBurst and GatewayBacklog are the
	// per-gateway ingest limits (ingest.Limits).
	MaxMsgBytes    int
	GatewayRate    float64
	GatewayBurst   int
	GatewayBacklog int
}

func (c *Security) register(fs *flag.FlagSet) {
	fs.StringVar(&c.TLSCA, "tls-ca", "", "CA bundle (PEM) that verifies gateway client certificates on the embedded broker (mutual TLS) and the certificate of an external ssl:// broker (empty: system roots)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "the server's client certificate (CN \"server\") for an external broker")
	fs.StringVar(&c.TLSKey, "tls-key", "", "key of --tls-cert")
	fs.StringVar(&c.TLSBrokerCert, "tls-broker-cert", "", "certificate of the embedded broker (SAN = names gateways dial); set: the embedded broker speaks TLS only, empty: plain TCP (development)")
	fs.StringVar(&c.TLSBrokerKey, "tls-broker-key", "", "key of --tls-broker-cert")
	fs.StringVar(&c.MQTTPasswords, "mqtt-passwords", "", "password file (Mosquitto format, `shelfsync-server passwd` or mosquitto_passwd) for gateways without a client certificate on the embedded broker; usernames are {wh}/{gw}; re-read when it changes")
	fs.StringVar(&c.APITokens, "api-tokens", "", "HTTP API bearer-token file (`shelfsync-server tokens add`); empty: the API is open to anyone who reaches it (development)")
	fs.BoolVar(&c.OpenHealthz, "open-healthz", true, "serve /healthz without a token (probes)")
	fs.BoolVar(&c.OpenMetrics, "open-metrics", false, "serve /metrics without a token (otherwise a viewer token is needed)")
	fs.IntVar(&c.MaxMsgBytes, "max-msg-bytes", protocol.MaxMessageSize, "largest MQTT message accepted from a gateway, by the ingest and the embedded broker; larger ones are dropped and counted (0: the protocol's limit, 262144 = 256 KiB, protocol SPEC.md §2; it may only be lowered)")
	fs.Float64Var(&c.GatewayRate, "gateway-rate", 500, "messages per second one gateway may send (token bucket; a catching-up agent sends 256-op batches, so 500/s is ~128,000 ops/s); excess is dropped and counted, the agent resends; negative: unlimited, 0: 500")
	fs.IntVar(&c.GatewayBurst, "gateway-burst", 1000, "token-bucket size of --gateway-rate; must hold an agent's whole in-flight window (32 batches by default) (0: 4 × rate)")
	fs.IntVar(&c.GatewayBacklog, "gateway-backlog", 0, "messages of one gateway queued at once (0: a queue's size / 8, at least 16), so a flood cannot fill a queue shared with others")
}

// EmbeddedTLS reports whether the embedded broker speaks TLS.
func (c *Security) EmbeddedTLS() bool { return c.TLSBrokerCert != "" }

func (c *Security) validate(external bool) []error {
	var errs []error
	pair := func(cert, key, certName, keyName string) {
		if (cert == "") != (key == "") {
			errs = append(errs, fmt.Errorf("%s and %s: set both or neither", certName, keyName))
		}
	}
	pair(c.TLSCert, c.TLSKey, "tls-cert", "tls-key")
	pair(c.TLSBrokerCert, c.TLSBrokerKey, "tls-broker-cert", "tls-broker-key")
	for _, f := range []struct{ name, path string }{
		{"tls-ca", c.TLSCA}, {"tls-cert", c.TLSCert}, {"tls-key", c.TLSKey},
		{"tls-broker-cert", c.TLSBrokerCert}, {"tls-broker-key", c.TLSBrokerKey},
		{"mqtt-passwords", c.MQTTPasswords}, {"api-tokens", c.APITokens},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		}
	}
	if !external && c.TLSBrokerCert != "" && c.TLSCA == "" && c.MQTTPasswords == "" {
		errs = append(errs, errors.New("tls-broker-cert: the embedded broker must identify gateways: set tls-ca (client certificates) and/or mqtt-passwords"))
	}
	if c.MaxMsgBytes != 0 && (c.MaxMsgBytes < 1024 || c.MaxMsgBytes > protocol.MaxMessageSize) {
		errs = append(errs, fmt.Errorf("max-msg-bytes: %d must be 1024..%d (the protocol's limit, SPEC.md §2)", c.MaxMsgBytes, protocol.MaxMessageSize))
	}
	if c.GatewayBurst < 0 {
		errs = append(errs, fmt.Errorf("gateway-burst: %d must not be negative", c.GatewayBurst))
	}
	if c.GatewayBacklog < 0 {
		errs = append(errs, fmt.Errorf("gateway-backlog: %d must not be negative", c.GatewayBacklog))
	}
	return errs
}

// externalTLS reports whether url names a TLS broker.
func externalTLS(url string) bool {
	for _, p := range []string{"ssl://", "tls://", "mqtts://", "tcps://", "wss://"} {
		if strings.HasPrefix(url, p) {
			return true
		}
	}
	return false
}

// Insecure lists what makes this configuration unfit for production, for
// the loud warning at start; empty when nothing does.
func (c *Config) Insecure() []string {
	var out []string
	if c.BrokerURL == "" {
		if !c.EmbeddedTLS() {
			out = append(out, "the embedded MQTT broker listens on plain TCP: traffic is readable and forgeable on the network (set tls-broker-cert/tls-broker-key and tls-ca)")
			if c.MQTTPasswords == "" {
				out = append(out, "the embedded MQTT broker authenticates nobody: any client may publish for any gateway (set tls-ca or mqtt-passwords)")
			} else {
				out = append(out, "gateway passwords travel in clear over plain TCP")
			}
		}
	} else if !externalTLS(c.BrokerURL) {
		out = append(out, "the external broker is reached over plain TCP ("+c.BrokerURL+"): use ssl:// with tls-ca and tls-cert/tls-key")
	}
	if c.APITokens == "" {
		out = append(out, "the HTTP API needs no token: anyone who reaches "+c.HTTPAddr+" may read and change stock (set api-tokens)")
	}
	return out
}
