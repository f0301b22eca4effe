package uplink

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// TLSFiles name the PEM files of the agent's TLS client.
type TLSFiles struct {
	CA   string // CA bundle that signed the broker's certificate; empty: system roots
	Cert string // this gateway's client certificate, CN "{wh}/{gw}"
	Key  string
}

// ErrIdentity is returned (wrapped) when the gateway's broker identity —
// its client certificate CN or MQTT username — does not match its
// configured warehouse/gateway. The broker's ACL would then refuse (or
// silently drop) everything it publishes.
var ErrIdentity = errors.New("gateway identity does not match warehouse/gateway")

// LoadTLS builds the TLS client configuration and returns the CN of the
// client certificate ("" without one).
func LoadTLS(f TLSFiles) (*tls.Config, string, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CA != "" {
		b, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, "", fmt.Errorf("tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, "", fmt.Errorf("tls-ca: %s holds no PEM certificate", f.CA)
		}
		cfg.RootCAs = pool
	}
	if (f.Cert == "") != (f.Key == "") {
		return nil, "", errors.New("tls-cert and tls-key: set both or neither")
	}
	if f.Cert == "" {
		return cfg, "", nil
	}
	kp, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, "", fmt.Errorf("tls-cert/tls-key: %w", err)
	}
	leaf, err := x509.ParseCertificate(kp.Certificate[0])
	if err != nil {
		return nil, "", fmt.Errorf("tls-cert: %w", err)
	}
	if time.Now().After(leaf.NotAfter) {
		return nil, "", fmt.Errorf("tls-cert: the certificate %q expired on %s: issue a new one (`shelfsync-server certs issue`)", leaf.Subject.CommonName, leaf.NotAfter.Format(time.DateOnly))
	}
	cfg.Certificates = []tls.Certificate{kp}
	return cfg, leaf.Subject.CommonName, nil
}

// CertCN returns the CN of the first certificate in a PEM file.
func CertCN(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return "", fmt.Errorf("%s: no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return "", err
	}
	return c.Subject.CommonName, nil
}

// CheckIdentity reports whether identity (certificate CN or MQTT username)
// is the gateway wh/gw: "{wh}/{gw}", or the legacy "gw:{wh}/{gw}" CN that
// only the embedded broker accepts.
func CheckIdentity(what, identity, wh, gw string) error {
	want := wh + "/" + gw
	if identity == want || identity == "gw:"+want {
		return nil
	}
	return fmt.Errorf("%w: %s is %q but this agent is configured as warehouse=%q gateway=%q, which needs %q; fix the certificate (`shelfsync-server certs issue --warehouse %s --gateway %s`) or the warehouse/gateway settings",
		ErrIdentity, what, identity, wh, gw, want, wh, gw)
}
