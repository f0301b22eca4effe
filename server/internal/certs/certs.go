// Package certs is shelfsync's small private certificate authority: it
// creates the CA, the broker's server certificate, the central server's
// client certificate (CN "server") and one client certificate per gateway
// (CN "{wh}/{gw}"), all ECDSA P-256, with crypto/x509 only — no openssl.
//
// File layout in a PKI directory (see deploy/README.md, "Certificates"):
//
//	ca.crt, ca.key                      the CA (keep ca.key on the admin host)
//	broker.crt, broker.key              serverAuth, SAN = the names gateways dial
//	server.crt, server.key              clientAuth, CN "server"
//	gateways/{wh}/{gw}/gateway.crt|key  clientAuth, CN "{wh}/{gw}" (+ a copy of ca.crt)
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
)

// File names in a PKI directory.
const (
	CACert     = "ca.crt"
	CAKey      = "ca.key"
	BrokerCert = "broker.crt"
	BrokerKey  = "broker.key"
	ServerCert = "server.crt"
	ServerKey  = "server.key"
	GatewayCrt = "gateway.crt"
	GatewayKey = "gateway.key"
)

// ServerCN is the common name of the central server's client certificate.
const ServerCN = "server"

// Default lifetimes.
const (
	DefaultCADays   = 3650 // ten years
	DefaultLeafDays = 365  // one year for broker, server and gateway certificates
)

// ErrExists is returned when a file would be overwritten without Force.
var ErrExists = errors.New("file exists")

// Options tune issuing. Zero values take the defaults.
type Options struct {
	// Days is the validity of the certificate being issued.
	Days int
	// Force allows overwriting existing leaf files (never the CA key).
	Force bool
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o Options) days(def int) int {
	if o.Days > 0 {
		return o.Days
	}
	return def
}

// GatewayCN returns the certificate CN of gateway wh/gw: "{wh}/{gw}".
func GatewayCN(wh, gw string) string { return wh + "/" + gw }

// GatewayDir returns where IssueGateway writes a gateway's files under dir.
func GatewayDir(dir, wh, gw string) string { return filepath.Join(dir, "gateways", wh, gw) }

// CA is a loaded certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	PEM  []byte
}

// Init creates a new CA in dir (refusing to overwrite an existing ca.key),
// the server's client certificate (CN "server") and, when brokerHosts is not
// empty, the broker's server certificate for those names/IPs. caDays and
// o.Days give the CA's and the leaves' lifetimes.
func Init(dir string, brokerHosts []string, caDays int, o Options) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, CAKey)); err == nil {
		return fmt.Errorf("%w: %s already holds a CA key; refusing to replace it (a new CA invalidates every issued certificate — see \"Rotating the CA\" in deploy/README.md)", ErrExists, filepath.Join(dir, CAKey))
	}
	if caDays <= 0 {
		caDays = DefaultCADays
	}
	key, err := newKey()
	if err != nil {
		return err
	}
	now := o.now()
	tmpl := &x509.Certificate{
		SerialNumber:          mustSerial(),
		Subject:               pkix.Name{Organization: []string{"shelfsync"}, CommonName: "shelfsync CA " + now.UTC().Format("2006-01-02")},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(0, 0, caDays),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          skid(&key.PublicKey),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("create CA certificate: %w", err)
	}
	if err := writeKey(filepath.Join(dir, CAKey), key, false); err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, CACert), "CERTIFICATE", der, 0o644, true); err != nil {
		return err
	}
	if err := IssueServer(dir, o); err != nil {
		return err
	}
	if len(brokerHosts) > 0 {
		if err := IssueBroker(dir, brokerHosts, o); err != nil {
			return err
		}
	}
	return nil
}

// LoadCA reads ca.crt and ca.key from dir.
func LoadCA(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CACert))
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w (run `shelfsync-server certs init --dir %s` first)", err, dir)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKey))
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w (issuing needs ca.key, which lives on the admin host)", err)
	}
	certs, err := ParseCertificates(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", CACert, err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", CAKey, err)
	}
	// During a CA rotation ca.crt may be a bundle: sign with the CA that
	// matches the key.
	for _, c := range certs {
		if pub, ok := c.PublicKey.(*ecdsa.PublicKey); ok && c.IsCA {
			if kp, ok := key.Public().(*ecdsa.PublicKey); ok && kp.Equal(pub) {
				return &CA{Cert: c, Key: key, PEM: certPEM}, nil
			}
		}
	}
	return nil, fmt.Errorf("%s holds no CA certificate matching %s", CACert, CAKey)
}

// IssueServer writes server.crt/server.key: a client certificate with CN
// "server", the identity of the central server on the brokers.
func IssueServer(dir string, o Options) error {
	ca, err := LoadCA(dir)
	if err != nil {
		return err
	}
	return ca.issue(filepath.Join(dir, ServerCert), filepath.Join(dir, ServerKey), ServerCN, "server", nil, x509.ExtKeyUsageClientAuth, o)
}

// IssueBroker writes broker.crt/broker.key: the broker's TLS server
// certificate with every host (DNS name or IP address) as a SAN.
func IssueBroker(dir string, hosts []string, o Options) error {
	if len(hosts) == 0 {
		return errors.New("broker certificate: name at least one --broker-host (the names or IPs gateways dial)")
	}
	ca, err := LoadCA(dir)
	if err != nil {
		return err
	}
	return ca.issue(filepath.Join(dir, BrokerCert), filepath.Join(dir, BrokerKey), hosts[0], "broker", hosts, x509.ExtKeyUsageServerAuth, o)
}

// IssueGateway writes gateway.crt, gateway.key and a copy of ca.crt into
// GatewayDir(dir, wh, gw) and returns that directory. The certificate's CN is
// "{wh}/{gw}" (clientAuth).
func IssueGateway(dir, wh, gw string, o Options) (string, error) {
	if err := protocol.ValidateID(wh); err != nil {
		return "", fmt.Errorf("warehouse: %w", err)
	}
	if err := protocol.ValidateID(gw); err != nil {
		return "", fmt.Errorf("gateway: %w", err)
	}
	ca, err := LoadCA(dir)
	if err != nil {
		return "", err
	}
	out := GatewayDir(dir, wh, gw)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", out, err)
	}
	if err := ca.issue(filepath.Join(out, GatewayCrt), filepath.Join(out, GatewayKey), GatewayCN(wh, gw), "gateway", nil, x509.ExtKeyUsageClientAuth, o); err != nil {
		return "", err
	}
	if err := writeFile(filepath.Join(out, CACert), ca.PEM, 0o644, true); err != nil {
		return "", err
	}
	return out, nil
}

func (ca *CA) issue(certPath, keyPath, cn, ou string, hosts []string, usage x509.ExtKeyUsage, o Options) error {
	if !o.Force {
		for _, p := range []string{certPath, keyPath} {
			if _, err := os.Stat(p); err == nil {
				return fmt.Errorf("%w: %s (add --force to replace it, e.g. to rotate the certificate)", ErrExists, p)
			}
		}
	}
	key, err := newKey()
	if err != nil {
		return err
	}
	now := o.now()
	notAfter := now.AddDate(0, 0, o.days(DefaultLeafDays))
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter // a leaf cannot outlive its CA
	}
	tmpl := &x509.Certificate{
		SerialNumber:   mustSerial(),
		Subject:        pkix.Name{Organization: []string{"shelfsync"}, OrganizationalUnit: []string{ou}, CommonName: cn},
		NotBefore:      now.Add(-time.Hour),
		NotAfter:       notAfter,
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{usage},
		SubjectKeyId:   skid(&key.PublicKey),
		AuthorityKeyId: ca.Cert.SubjectKeyId,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return fmt.Errorf("create certificate %s: %w", cn, err)
	}
	if err := writeKey(keyPath, key, o.Force); err != nil {
		return err
	}
	return writePEM(certPath, "CERTIFICATE", der, 0o644, true)
}

// ParseCertificates parses every CERTIFICATE block of a PEM bundle.
func ParseCertificates(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return out, nil
}

// SplitGatewayCN splits a gateway certificate CN "{wh}/{gw}" (or the legacy
// "gw:{wh}/{gw}") and validates both parts with protocol.ValidateID.
func SplitGatewayCN(cn string) (wh, gw string, err error) {
	s := strings.TrimPrefix(cn, "gw:")
	wh, gw, ok := strings.Cut(s, "/")
	if !ok {
		return "", "", fmt.Errorf("identity %q is not of the form {warehouse}/{gateway}", cn)
	}
	if err := protocol.ValidateID(wh); err != nil {
		return "", "", fmt.Errorf("identity %q warehouse: %w", cn, err)
	}
	if err := protocol.ValidateID(gw); err != nil {
		return "", "", fmt.Errorf("identity %q gateway: %w", cn, err)
	}
	return wh, gw, nil
}

func newKey() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return k, nil
}

func mustSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

func skid(pub *ecdsa.PublicKey) []byte {
	b, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(b)
	return sum[:20]
}

func parseKey(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM key found")
	}
	switch blk.Type {
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(blk.Bytes)
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported key type %T", k)
		}
		return s, nil
	}
	return nil, fmt.Errorf("unsupported PEM block %q", blk.Type)
}

func writeKey(path string, k *ecdsa.PrivateKey, overwrite bool) error {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return fmt.Errorf("marshal key: %w", err)
	}
	return writePEM(path, "EC PRIVATE KEY", der, 0o600, overwrite)
}

func writePEM(path, typ string, der []byte, mode os.FileMode, overwrite bool) error {
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode, overwrite)
}

// writeFile writes atomically (temp file + rename) so a reader never sees a
// half-written certificate or key.
func writeFile(path string, b []byte, mode os.FileMode, overwrite bool) error {
	if !overwrite {
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("%w: %s", ErrExists, path)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
