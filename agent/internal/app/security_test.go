package app

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/agent/internal/config"
	"github.com/shelfsync/shelfsync/agent/internal/uplink"
)

func selfSigned(t *testing.T, dir, cn string) (string, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(k)
	require.NoError(t, err)
	crt, key := filepath.Join(dir, "gw.crt"), filepath.Join(dir, "gw.key")
	require.NoError(t, os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	return crt, key
}

// TestRefusesMismatchedIdentity: an agent whose certificate CN (or MQTT
// username) is not its warehouse/gateway refuses to start, naming both.
func TestRefusesMismatchedIdentity(t *testing.T) {
	dir := t.TempDir()
	crt, key := selfSigned(t, dir, "WH1/gw-2")
	log := slog.New(slog.DiscardHandler)
	cfg := config.Config{Warehouse: "WH1", Gateway: "gw-1", BrokerURL: "ssl://127.0.0.1:8883",
		Security: config.Security{TLSCA: crt, TLSCert: crt, TLSKey: key}}
	_, _, _, err := uplinkSecurity(cfg, log)
	require.ErrorIs(t, err, uplink.ErrIdentity)
	require.Contains(t, err.Error(), `"WH1/gw-2"`)
	require.Contains(t, err.Error(), `gateway="gw-1"`)

	cfg.Gateway = "gw-2"
	tc, cn, _, err := uplinkSecurity(cfg, log)
	require.NoError(t, err)
	require.Equal(t, "WH1/gw-2", cn)
	require.Len(t, tc.Certificates, 1)

	cfg.Username = "WH1/gw-3"
	_, _, _, err = uplinkSecurity(cfg, log)
	require.ErrorIs(t, err, uplink.ErrIdentity)

	plain := config.Config{Warehouse: "WH1", Gateway: "gw-1", BrokerURL: "tcp://127.0.0.1:1884", Username: "WH1/other"}
	_, _, _, err = uplinkSecurity(plain, log)
	require.ErrorIs(t, err, uplink.ErrIdentity)

	pwFile := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pwFile, []byte("s3cret-passw0rd\n"), 0o600))
	plain.Username = "WH1/gw-1"
	plain.PasswordFile = pwFile
	_, _, pw, err := uplinkSecurity(plain, log)
	require.NoError(t, err)
	require.Equal(t, "s3cret-passw0rd", pw)
}
