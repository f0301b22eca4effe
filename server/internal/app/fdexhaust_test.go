package app

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/config"
)

// TestBrokerSurvivesDescriptorExhaustion: idle TCP connections to the MQTT
// port (no CONNECT, no certificate needed) exhaust the process's file
// descriptors, so the embedded broker's accept fails. /healthz says so
// while it lasts. The broker's connect timeout closes its side of the idle
// connections; then a gateway connects and its scans land, without a
// restart.
func TestBrokerSurvivesDescriptorExhaustion(t *testing.T) {
	cfg := config.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", Root: protocol.DefaultRoot,
		Workers: 1, LogLevel: "info", LogFormat: "text", Shutdown: time.Second,
		Broker: config.Broker{MQTTConnectTimeout: 2 * time.Second}}
	s := startWith(t, cfg)
	waitFor(t, 10*time.Second, "ingest connected", s.ingest.Connected)

	// Lower this process's descriptor limit to what is open now plus a few
	// hundred (the server runs in this process); restore it at the end.
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	fds, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	low := lim
	low.Cur = uint64(len(fds)) + 300
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low))
	restored := false
	restore := func() {
		if !restored {
			restored = true
			require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim))
		}
	}
	defer restore()

	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for {
		c, err := net.DialTimeout("tcp", s.MQTTAddr(), 2*time.Second)
		if err != nil {
			require.True(t, errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE), "dial stopped for another reason: %v", err)
			break
		}
		idle = append(idle, c)
		require.Less(t, len(idle), 10000, "the descriptor limit never hit")
	}
	t.Logf("%d idle connections opened before descriptors ran out", len(idle))
	waitFor(t, 10*time.Second, "the broker to report failing accepts", func() bool { return s.broker.Healthy() != nil })
	require.ErrorContains(t, s.ready(), "not accepting MQTT connections")

	// The idle connections never send CONNECT: the broker closes them after
	// its connect timeout, which frees its descriptors (this process keeps
	// the client ends open). A gateway then gets in.
	var g *fakeGateway
	waitFor(t, 30*time.Second, "a gateway connects again", func() bool {
		c, err := net.DialTimeout("tcp", s.MQTTAddr(), time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	g = newFakeGateway(t, s.MQTTAddr(), "WH1", "gw-fd")
	require.Equal(t, uint64(3), g.sendBatch(1, 3, 2).WM)
	wm, err := s.st.Watermark(t.Context(), "WH1", "gw-fd")
	require.NoError(t, err)
	require.Equal(t, uint64(3), wm, "the gateway's scans landed")
	for _, c := range idle {
		c.Close()
	}
	idle = nil
	restore()
	waitFor(t, 15*time.Second, "/healthz ok again", func() bool { return s.ready() == nil })
	require.Positive(t, metric(t, s, "", "shelfsync_broker_accept_errors_total", ""))
	require.Positive(t, metric(t, s, "", "shelfsync_broker_connections_unauthenticated_total", ""))
}
