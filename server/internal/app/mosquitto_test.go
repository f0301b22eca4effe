package app

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/server/internal/certs"
)

// mosquitto is a Mosquitto broker started by a test from
// deploy/mosquitto/mosquitto-test.conf.tmpl with deploy's ACL.
type mosquitto struct {
	plain, tls string // host:port of the trusted-username and the mTLS listener
	cmd        *exec.Cmd
	mu         sync.Mutex
	log        bytes.Buffer
}

func (m *mosquitto) Write(b []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.log.Write(b)
}

func (m *mosquitto) output() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.log.String()
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// mosquittoBinary returns the broker binary, skipping the test (or failing
// it when SHELFSYNC_INTEGRATION=1 asked for integration tests) without one.
func mosquittoBinary(t *testing.T) string {
	t.Helper()
	bin := envOr("SHELFSYNC_TEST_MOSQUITTO", "/usr/sbin/mosquitto")
	if _, err := os.Stat(bin); err != nil {
		if p, lerr := exec.LookPath("mosquitto"); lerr == nil {
			return p
		}
		if os.Getenv("SHELFSYNC_INTEGRATION") == "1" {
			t.Fatalf("SHELFSYNC_INTEGRATION=1 but no mosquitto at %s: run deploy/dev/services.sh mosquitto (or set SHELFSYNC_TEST_MOSQUITTO)", bin)
		}
		t.Skipf("mosquitto not installed (%s): run deploy/dev/services.sh mosquitto, or `make test-integration`", bin)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// startMosquitto fills the deploy template with free ports, certDir (ca.crt,
// broker.crt, broker.key) and deploy's ACL, and starts the broker.
func startMosquitto(t *testing.T, certDir string) *mosquitto {
	t.Helper()
	bin := mosquittoBinary(t)
	tmplPath := envOr("SHELFSYNC_TEST_MOSQUITTO_TMPL", "../../../deploy/mosquitto/mosquitto-test.conf.tmpl")
	aclPath := envOr("SHELFSYNC_TEST_MOSQUITTO_ACL", "../../../deploy/mosquitto/shelfsync.acl")
	tmpl, err := os.ReadFile(tmplPath)
	require.NoError(t, err, "the test template of deploy/")
	acl, err := filepath.Abs(aclPath)
	require.NoError(t, err)
	m := &mosquitto{plain: freeAddr(t), tls: freeAddr(t)}
	_, plainPort, _ := net.SplitHostPort(m.plain)
	_, tlsPort, _ := net.SplitHostPort(m.tls)
	data := t.TempDir()
	conf := strings.NewReplacer("{{PORT}}", plainPort, "{{TLS_PORT}}", tlsPort, "{{CERT_DIR}}", certDir,
		"{{ACL_FILE}}", acl, "{{DATA_DIR}}", data).Replace(string(tmpl))
	require.NotContains(t, conf, "{{", "every placeholder filled")
	conf += "\n# added by the test: denied publishes are logged at debug level only\nlog_type debug\n"
	confPath := filepath.Join(data, "mosquitto.conf")
	require.NoError(t, os.WriteFile(confPath, []byte(conf), 0o644))
	m.cmd = exec.Command(bin, "-c", confPath)
	m.cmd.Stdout, m.cmd.Stderr = m, m
	require.NoError(t, m.cmd.Start())
	done := make(chan struct{})
	go func() { _ = m.cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = m.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = m.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("---- mosquitto log ----\n%s", m.output())
		}
	})
	waitFor(t, 10*time.Second, "mosquitto listening", func() bool {
		select {
		case <-done:
			t.Fatalf("mosquitto exited:\n%s", m.output())
		default:
		}
		for _, a := range []string{m.plain, m.tls} {
			c, err := net.DialTimeout("tcp", a, 200*time.Millisecond)
			if err != nil {
				return false
			}
			c.Close()
		}
		return true
	})
	return m
}

// TestIntegrationMosquittoSecurity runs the refusals of issue 7 against a
// real Mosquitto configured from deploy/ (template + shelfsync.acl), with the
// shelfsync server as its client over mutual TLS with CN "server".
func TestIntegrationMosquittoSecurity(t *testing.T) {
	p := newPKI(t)
	m := startMosquitto(t, p.dir)

	cfg := p.secureConfig(t.TempDir())
	cfg.TLSBrokerCert, cfg.TLSBrokerKey = "", ""
	cfg.BrokerURL = "ssl://" + m.tls
	cfg.TLSCert, cfg.TLSKey = p.file(certs.ServerCert), p.file(certs.ServerKey)
	s := startWith(t, cfg)
	waitFor(t, 10*time.Second, "server connected to mosquitto as CN server", s.ingest.Connected)

	url := "ssl://" + m.tls
	checkBrokerRefusals(t, p, url, nil)

	a, err := dialGateway(t, gwOpts{url: url, tls: p.gatewayTLS(t, "gw-a")}, "WH1", "gw-a")
	require.NoError(t, err)
	require.Equal(t, byte(1), a.subscribeDown("WH1", "gw-a"))
	require.Equal(t, uint64(2), a.sendBatch(1, 2, 5).WM, "a gateway's batch reaches the server through mosquitto and is acked")

	// A's certificate publishing on B's topic: Mosquitto acknowledges and
	// drops it (MQTT 3.1.1) and logs the denial; B's stock stays untouched.
	a.publishUp("WH1", "gw-b", batch(t, "WH1", "gw-b", 1, 1, 100))
	waitFor(t, 5*time.Second, "mosquitto logs the denied publish", func() bool {
		return strings.Contains(m.output(), "Denied PUBLISH from")
	})
	a, err = dialGateway(t, gwOpts{url: url, tls: p.gatewayTLS(t, "gw-a")}, "WH1", "gw-a") // whether or not it was cut off
	require.NoError(t, err)
	require.Equal(t, byte(1), a.subscribeDown("WH1", "gw-a"))

	// A spoofed payload on A's own topic naming B: rejected by the server.
	before := metric(t, s, p.viewer, "shelfsync_ingest_rejected_total", `reason="spoofed"`)
	require.True(t, a.publishUp("WH1", "gw-a", batch(t, "WH1", "gw-b", 1, 1, 100)))
	waitFor(t, 5*time.Second, "spoofed counted", func() bool {
		return metric(t, s, p.viewer, "shelfsync_ingest_rejected_total", `reason="spoofed"`) == before+1
	})
	require.Equal(t, uint64(3), a.sendBatch(3, 3, 1).WM)

	// The trusted-username listener of the template: the ACL alone, no
	// certificates — a gateway username publishing for another gateway.
	u, err := dialGateway(t, gwOpts{url: "tcp://" + m.plain, user: "WH1/gw-a", clientID: "test-plain-gw-a"}, "WH1", "gw-a") // beside A, under another client id
	require.NoError(t, err)
	n := strings.Count(m.output(), "Denied PUBLISH from")
	u.publishUp("WH1", "gw-b", batch(t, "WH1", "gw-b", 1, 1, 100))
	waitFor(t, 5*time.Second, "second denial logged", func() bool { return strings.Count(m.output(), "Denied PUBLISH from") > n })

	wm, err := s.st.Watermark(context.Background(), "WH1", "gw-b")
	require.NoError(t, err)
	require.Zero(t, wm, "B's stock untouched")
	require.Contains(t, stockWith(t, s, p.viewer, "WH1"), `"on_hand":11`)

	// A listens on B's down topic (Mosquitto 2.0 grants the subscription
	// and filters every delivery); B's own ack must not reach A.
	a.subscribeDown("WH1", "gw-b")
	b, err := dialGateway(t, gwOpts{url: url, tls: p.gatewayTLS(t, "gw-b")}, "WH1", "gw-b")
	require.NoError(t, err)
	require.Equal(t, byte(1), b.subscribeDown("WH1", "gw-b"))
	require.Equal(t, uint64(1), b.sendBatch(1, 1, 7).WM)
	time.Sleep(200 * time.Millisecond) // a leaked delivery would arrive about as fast as B's
	a.mu.Lock()
	for _, ack := range a.acks {
		require.Equal(t, "gw-a", ack.GW, "A received an ack meant for B")
	}
	a.mu.Unlock()

	checkAPIAuth(t, s, p)
}
