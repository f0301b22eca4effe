package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func loadCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	cs, err := ParseCertificates(b)
	require.NoError(t, err)
	return cs[0]
}

func TestInitAndIssue(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	o := Options{Now: func() time.Time { return now }}
	require.NoError(t, Init(dir, []string{"localhost", "127.0.0.1"}, 0, o))

	ca := loadCert(t, filepath.Join(dir, CACert))
	require.True(t, ca.IsCA)
	require.WithinDuration(t, now.AddDate(0, 0, DefaultCADays), ca.NotAfter, time.Minute)
	pool := x509.NewCertPool()
	pool.AddCert(ca)

	srv := loadCert(t, filepath.Join(dir, ServerCert))
	require.Equal(t, ServerCN, srv.Subject.CommonName)
	_, err := srv.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	require.NoError(t, err)

	br := loadCert(t, filepath.Join(dir, BrokerCert))
	_, err = br.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, DNSName: "localhost"})
	require.NoError(t, err)
	require.True(t, br.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")))

	out, err := IssueGateway(dir, "WH1", "dock-01", Options{Now: o.Now, Days: 30})
	require.NoError(t, err)
	gw := loadCert(t, filepath.Join(out, GatewayCrt))
	require.Equal(t, "WH1/dock-01", gw.Subject.CommonName)
	require.WithinDuration(t, now.AddDate(0, 0, 30), gw.NotAfter, time.Minute)
	_, err = gw.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	require.NoError(t, err)
	_, err = gw.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	require.Error(t, err, "a gateway certificate must not serve as a server certificate")
	_, err = tls.LoadX509KeyPair(filepath.Join(out, GatewayCrt), filepath.Join(out, GatewayKey))
	require.NoError(t, err)
	st, err := os.Stat(filepath.Join(out, GatewayKey))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	wh, g, err := SplitGatewayCN(gw.Subject.CommonName)
	require.NoError(t, err)
	require.Equal(t, [2]string{"WH1", "dock-01"}, [2]string{wh, g})

	// Never replace the CA; leaves only with Force.
	require.ErrorIs(t, Init(dir, nil, 0, o), ErrExists)
	_, err = IssueGateway(dir, "WH1", "dock-01", o)
	require.ErrorIs(t, err, ErrExists)
	_, err = IssueGateway(dir, "WH1", "dock-01", Options{Force: true})
	require.NoError(t, err)
	require.NotEqual(t, gw.SerialNumber, loadCert(t, filepath.Join(out, GatewayCrt)).SerialNumber)

	// Bad IDs are refused before anything is written.
	_, err = IssueGateway(dir, "WH 1", "x", o)
	require.Error(t, err)
	_, err = IssueGateway(dir, "WH1", "a/b", o)
	require.Error(t, err)
}

func TestLeafNeverOutlivesCA(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, Init(dir, nil, 10, Options{}))
	out, err := IssueGateway(dir, "W", "G", Options{Days: 365})
	require.NoError(t, err)
	ca := loadCert(t, filepath.Join(dir, CACert))
	require.False(t, loadCert(t, filepath.Join(out, GatewayCrt)).NotAfter.After(ca.NotAfter))
}

func TestSplitGatewayCN(t *testing.T) {
	for _, tc := range []struct {
		cn     string
		wh, gw string
		ok     bool
	}{
		{"WH1/dock-01", "WH1", "dock-01", true},
		{"gw:WH1/dock-01", "WH1", "dock-01", true},
		{"server", "", "", false},
		{"WH1/dock/01", "", "", false},
		{"WH1/", "", "", false},
		{"/x", "", "", false},
		{"WH+/x", "", "", false},
		{"WH1/#", "", "", false},
	} {
		wh, gw, err := SplitGatewayCN(tc.cn)
		if tc.ok {
			require.NoError(t, err, tc.cn)
			require.Equal(t, tc.wh, wh)
			require.Equal(t, tc.gw, gw)
		} else {
			require.Error(t, err, tc.cn)
		}
	}
}

func TestLoadCAMissing(t *testing.T) {
	_, err := LoadCA(t.TempDir())
	require.Error(t, err)
	require.False(t, errors.Is(err, ErrExists))
}
