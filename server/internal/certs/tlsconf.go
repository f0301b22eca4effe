package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// LoadPool reads a PEM CA bundle into a certificate pool.
func LoadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", path)
	}
	return pool, nil
}

// BrokerTLS builds the TLS configuration of a broker listener: certFile and
// keyFile are its server certificate; with clientCAFile, client
// certificates are verified against that bundle — required when
// requireClientCert, otherwise optional (clients without one must then
// authenticate with a password). TLS 1.2 is the minimum.
func BrokerTLS(certFile, keyFile, clientCAFile string, requireClientCert bool) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("broker TLS needs a certificate and a key")
	}
	kp, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load broker certificate: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}
	if clientCAFile != "" {
		pool, err := LoadPool(clientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if requireClientCert {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return cfg, nil
}

// ClientTLS builds the TLS configuration of an MQTT client: caFile (empty:
// the system roots) verifies the broker; certFile/keyFile, when set, are the
// client certificate (mutual TLS).
func ClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := LoadPool(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("a client certificate needs both the certificate and the key file")
	}
	if certFile != "" {
		kp, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	return cfg, nil
}

// PinnedTLS returns a client configuration that trusts exactly the leaf
// certificate of cfg (a broker's own server configuration): the server's
// ingest uses it to reach its embedded broker whatever name or address the
// broker certificate was issued for.
func PinnedTLS(server *tls.Config) (*tls.Config, error) {
	if server == nil || len(server.Certificates) == 0 || len(server.Certificates[0].Certificate) == 0 {
		return nil, errors.New("pinned TLS: the broker has no certificate")
	}
	want := server.Certificates[0].Certificate[0]
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the exact pin below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || string(raw[0]) != string(want) {
				return errors.New("broker certificate is not the embedded broker's own")
			}
			return nil
		},
	}, nil
}
