package chaos

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// echoServer echoes every line back.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, r *bufio.Reader, deadline time.Duration) (time.Duration, error) {
	start := time.Now()
	_ = c.SetDeadline(time.Now().Add(deadline))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return 0, err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if line != "ping\n" {
		return 0, io.ErrUnexpectedEOF
	}
	return time.Since(start), nil
}

func TestProxyToxics(t *testing.T) {
	p, err := NewProxy("127.0.0.1:0", echoServer(t))
	require.NoError(t, err)
	defer p.Close()
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", p.Addr())
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c, bufio.NewReader(c)
	}

	c, r := dial()
	_, err = roundTrip(c, r, time.Second)
	require.NoError(t, err, "normal forwarding")

	p.SetLatency(100 * time.Millisecond)
	d, err := roundTrip(c, r, 2*time.Second)
	require.NoError(t, err)
	require.GreaterOrEqual(t, d, 200*time.Millisecond, "latency applies both ways")
	p.Heal()

	p.Stall()
	_, err = roundTrip(c, r, 200*time.Millisecond)
	require.Error(t, err, "a stalled link moves nothing")
	p.Heal()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "ping\n", line, "the stalled bytes arrive intact after healing")

	p.Partition()
	_, err = roundTrip(c, r, time.Second)
	require.Error(t, err, "a partition resets open connections")
	if c2, err := net.Dial("tcp", p.Addr()); err == nil {
		_, err = roundTrip(c2, bufio.NewReader(c2), time.Second)
		c2.Close()
		require.Error(t, err, "and refuses new ones")
	}
	p.Heal()
	c3, r3 := dial()
	_, err = roundTrip(c3, r3, time.Second)
	require.NoError(t, err, "healed")

	p.Reset()
	_, err = roundTrip(c3, r3, time.Second)
	require.Error(t, err, "reset closes open connections")
	c4, r4 := dial()
	_, err = roundTrip(c4, r4, time.Second)
	require.NoError(t, err, "reset accepts new connections")

	p.SetRate(1000)
	start := time.Now()
	_ = c4.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = c4.Write(make([]byte, 500))
	require.NoError(t, err)
	_, err = io.ReadFull(r4, make([]byte, 500))
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), 400*time.Millisecond, "500 B at 1000 B/s (the echo overlaps both ways)")
}
