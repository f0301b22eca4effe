package app

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/config"
)

func limitsConfig(t *testing.T, b config.Bounds) config.Config {
	return config.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", Root: protocol.DefaultRoot, Workers: 1, LogLevel: "info", LogFormat: "text", Shutdown: time.Second, Bounds: b}
}

// TestHTTPSlowBodyIsCut: a client that sends headers and then trickles (or
// stops sending) its body is disconnected after the read timeout instead
// of holding a connection for ever.
func TestHTTPSlowBodyIsCut(t *testing.T) {
	s := startWith(t, limitsConfig(t, config.Bounds{HTTPReadTimeout: time.Second}))
	c, err := net.Dial("tcp", s.HTTPAddr())
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "PUT /api/v1/masterdata/W1/settings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(30*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil { // the handler saw the read error first and answered
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		_, err = c.Read(make([]byte, 1))
	}
	require.True(t, errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isReset(err), "the server closed the slow connection: %v", err)
	require.Less(t, time.Since(start), 25*time.Second)
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// TestHTTPConnectionLimit: with every slot taken by idle connections a new
// request waits; when one of them closes it is served.
func TestHTTPConnectionLimit(t *testing.T) {
	s := startWith(t, limitsConfig(t, config.Bounds{HTTPMaxConns: 2}))
	var idle []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", s.HTTPAddr())
		require.NoError(t, err)
		defer c.Close()
		idle = append(idle, c)
	}
	// The two idle connections hold both slots: a request cannot be served
	// while they are open (the keep-alive of startWith's readiness probe
	// closed with its response).
	quick := &http.Client{Timeout: 300 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	waitFor(t, 10*time.Second, "the limit to hold", func() bool {
		resp, err := quick.Get("http://" + s.HTTPAddr() + "/healthz")
		if err == nil {
			resp.Body.Close()
			return false
		}
		return true
	})
	idle[0].Close()
	slow := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := slow.Get("http://" + s.HTTPAddr() + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// TestUploadsSpoolUnderData: uploads are spooled under the data directory
// and a crash's leftovers are removed at start.
func TestUploadsSpoolUnderData(t *testing.T) {
	cfg := limitsConfig(t, config.Bounds{})
	left := cfg.DataDir + "/uploads/shelfsync-upload-123"
	require.NoError(t, os.MkdirAll(cfg.DataDir+"/uploads", 0o700))
	require.NoError(t, os.WriteFile(left, []byte("x"), 0o600))
	startWith(t, cfg)
	_, err := os.Stat(left)
	require.True(t, os.IsNotExist(err), "a crash's half upload is removed: %v", err)
}
