package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// Security is the transport-security part of the agent's configuration.
// In a TOML file the tls-* keys may also be written as a [tls] table
// (ca, cert, key).
type Security struct {
	// TLSCA is the CA bundle that signed the broker's certificate.
	TLSCA string
	// TLSCert/TLSKey are this gateway's client certificate, CN "{wh}/{gw}".
	TLSCert string
	TLSKey  string
	// PasswordFile holds the MQTT password (first line), instead of
	// --mqtt-password on the command line.
	PasswordFile string
	// ACLBackoff is how long the uplink stops sending after the broker is
	// seen refusing this gateway's identity.
	ACLBackoff time.Duration
}

func (c *Security) register(fs *flag.FlagSet) {
	fs.StringVar(&c.TLSCA, "tls-ca", "", "CA bundle (PEM) that signed the broker's certificate (empty with ssl://: the system roots)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "this gateway's client certificate (PEM, CN \"{warehouse}/{gateway}\", from `shelfsync-server certs issue`); the agent refuses to start when the CN differs from --warehouse/--gateway")
	fs.StringVar(&c.TLSKey, "tls-key", "", "key of --tls-cert")
	fs.StringVar(&c.PasswordFile, "mqtt-password-file", "", "file whose first line is the MQTT password (for brokers with passwords; the username must be {warehouse}/{gateway})")
	fs.DurationVar(&c.ACLBackoff, "acl-backoff", time.Minute, "stop sending this long when the broker keeps disconnecting this gateway right after it publishes (its ACL refuses the identity)")
}

// Brokers returns the broker URLs of --broker, in order (it is a
// comma-separated list).
func (c *Config) Brokers() []string {
	var out []string
	for _, b := range strings.Split(c.BrokerURL, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// validateBrokers checks every URL of --broker: a scheme each, and all of
// them TLS or none (one TLS setting serves them all).
func (c *Config) validateBrokers() []error {
	bs := c.Brokers()
	if len(bs) == 0 {
		return []error{errors.New("broker: must name at least one URL, e.g. ssl://host:8883")}
	}
	var errs []error
	for _, b := range bs {
		if !strings.Contains(b, "://") {
			errs = append(errs, fmt.Errorf("broker: %q needs a scheme, e.g. tcp://host:1884", b))
		} else if tlsURL(b) != tlsURL(bs[0]) {
			errs = append(errs, fmt.Errorf("broker: %q and %q mix TLS and plain TCP: use ssl:// for all of them", bs[0], b))
		}
	}
	return errs
}

// TLSEnabled reports whether the broker URLs ask for TLS (all of them do,
// or none: validateBrokers).
func (c *Config) TLSEnabled() bool {
	bs := c.Brokers()
	return len(bs) > 0 && tlsURL(bs[0])
}

func tlsURL(u string) bool {
	for _, p := range []string{"ssl://", "tls://", "mqtts://", "tcps://", "wss://"} {
		if strings.HasPrefix(u, p) {
			return true
		}
	}
	return false
}

func (c *Config) validateSecurity() []error {
	var errs []error
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("tls-cert and tls-key: set both or neither"))
	}
	for _, f := range []struct{ name, path string }{
		{"tls-ca", c.TLSCA}, {"tls-cert", c.TLSCert}, {"tls-key", c.TLSKey}, {"mqtt-password-file", c.PasswordFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
		}
	}
	if (c.TLSCA != "" || c.TLSCert != "") && !c.TLSEnabled() {
		errs = append(errs, fmt.Errorf("broker: %q is plain TCP but tls-ca/tls-cert are set: use ssl://HOST:PORT", c.BrokerURL))
	}
	if c.PasswordFile != "" && c.Password != "" {
		errs = append(errs, errors.New("mqtt-password and mqtt-password-file: set one, not both"))
	}
	if c.ACLBackoff < 0 {
		errs = append(errs, fmt.Errorf("acl-backoff: %s must not be negative", c.ACLBackoff))
	}
	return errs
}

// Insecure lists what makes this configuration unfit for production, for
// the loud warning at start; empty when nothing does.
func (c *Config) Insecure() []string {
	var out []string
	if !c.TLSEnabled() {
		out = append(out, "the broker is reached over plain TCP ("+c.BrokerURL+"): ops and stock travel readable and forgeable; use ssl:// with tls-ca and tls-cert/tls-key")
		if c.Password != "" || c.PasswordFile != "" {
			out = append(out, "the MQTT password travels in clear")
		}
	} else if c.TLSCert == "" && c.Username == "" {
		out = append(out, "no client certificate and no username: the broker cannot know which gateway this is (set tls-cert/tls-key)")
	}
	return out
}

// ReadPassword returns the MQTT password: --mqtt-password, or the first
// line of --mqtt-password-file.
func (c *Config) ReadPassword() (string, error) {
	if c.PasswordFile == "" {
		return c.Password, nil
	}
	b, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("mqtt-password-file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(line, "\r"), nil
}
