package uplink

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCheckIdentity(t *testing.T) {
	require.NoError(t, CheckIdentity("cn", "WH1/gw-1", "WH1", "gw-1"))
	require.NoError(t, CheckIdentity("cn", "gw:WH1/gw-1", "WH1", "gw-1"))
	err := CheckIdentity("the client certificate's CN", "WH1/gw-2", "WH1", "gw-1")
	require.ErrorIs(t, err, ErrIdentity)
	require.Contains(t, err.Error(), `"WH1/gw-2"`)
	require.Contains(t, err.Error(), `gateway="gw-1"`)
}

func TestLoadTLS(t *testing.T) {
	dir := t.TempDir()
	crt, key := writeSelfSigned(t, dir, "WH1/gw-1")
	cfg, cn, err := LoadTLS(TLSFiles{CA: crt, Cert: crt, Key: key})
	require.NoError(t, err)
	require.Equal(t, "WH1/gw-1", cn)
	require.Len(t, cfg.Certificates, 1)
	require.NotNil(t, cfg.RootCAs)
	_, _, err = LoadTLS(TLSFiles{Cert: crt})
	require.Error(t, err)
	_, _, err = LoadTLS(TLSFiles{CA: filepath.Join(dir, "missing")})
	require.Error(t, err)
}

func writeSelfSigned(t *testing.T, dir, cn string) (string, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(k)
	require.NoError(t, err)
	crt, key := filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key")
	require.NoError(t, os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	return crt, key
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
