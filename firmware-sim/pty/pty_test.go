package pty

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shelfsync/shelfsync/drivers/serialport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readN reads from the serial port until n bytes arrived or 2 s passed.
func readN(t *testing.T, p serialport.Port, n int) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, 256)
	deadline := time.Now().Add(2 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		k, err := p.Read(buf)
		require.NoError(t, err)
		out = append(out, buf[:k]...)
	}
	return out
}

// plugged opens a PTY and the driver's side of it, closed at test end.
func plugged(t *testing.T) (*PTY, serialport.Port) {
	t.Helper()
	p, err := Open(filepath.Join(t.TempDir(), "scanner"))
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	port, err := serialport.Open(p.Link(), 0)
	require.NoError(t, err)
	t.Cleanup(func() { port.Close() })
	return p, port
}

// hangup reads from the driver's side until a read fails, for at most 20
// read timeouts (2 s), and returns that error (nil if none came).
func hangup(port serialport.Port) error {
	buf := make([]byte, 8)
	for range 20 {
		if _, err := port.Read(buf); err != nil {
			return err
		}
	}
	return nil
}

func TestRawBothWays(t *testing.T) {
	p, port := plugged(t)
	target, err := os.Readlink(p.Link())
	require.NoError(t, err)
	assert.Equal(t, p.SlavePath(), target)

	// No CR/LF translation and no echo, in either direction.
	msg := []byte("ab\r\n\x00\x03\x1b7\xff")
	_, err = p.Write(msg)
	require.NoError(t, err)
	assert.Equal(t, msg, readN(t, port, len(msg)))

	_, err = port.Write([]byte("\n\x07"))
	require.NoError(t, err)
	buf := make([]byte, 16)
	n, err := p.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "\n\x07", string(buf[:n]))
}

func TestUnplugReplug(t *testing.T) {
	p, port := plugged(t)
	link := p.Link()

	require.NoError(t, p.Unplug())
	assert.False(t, p.Plugged())
	_, err := os.Lstat(link)
	require.ErrorIs(t, err, os.ErrNotExist, "link removed")
	_, err = p.Write([]byte("x"))
	require.ErrorIs(t, err, ErrUnplugged)

	// What the driver sees: the hung-up slave turns readable with no data,
	// which go.bug.st/serial reports as a PortError "Port has been closed"
	// (a raw EIO on some kernels) instead of a read timeout.
	readErr := hangup(port)
	require.Error(t, readErr)
	t.Logf("driver read after unplug: %v", readErr)
	buf := make([]byte, 8)

	// A Read waiting on the simulator side resumes after Replug.
	got := make(chan string)
	go func() {
		n, err := p.Read(buf)
		assert.NoError(t, err)
		got <- string(buf[:n])
	}()
	require.NoError(t, p.Replug())
	assert.True(t, p.Plugged())
	port2, err := serialport.Open(link, 0)
	require.NoError(t, err)
	defer port2.Close()
	_, err = port2.Write([]byte("hi"))
	require.NoError(t, err)
	select {
	case s := <-got:
		assert.Equal(t, "hi", s)
	case <-time.After(2 * time.Second):
		t.Fatal("Read did not resume after Replug")
	}
}

func TestLinkHandling(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale")
	require.NoError(t, os.Symlink("/dev/pts/does-not-exist", stale))
	p, err := Open(stale)
	require.NoError(t, err, "stale link replaced")
	require.NoError(t, p.Close())
	_, err = os.Lstat(stale)
	require.ErrorIs(t, err, os.ErrNotExist, "Close removes the link")
	_, err = p.Read(make([]byte, 1))
	require.Error(t, err)
	require.Error(t, p.Replug())

	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	_, err = Open(file)
	require.ErrorContains(t, err, "not a symlink")
}

func TestCloseUnblocksRead(t *testing.T) {
	p, err := Open(filepath.Join(t.TempDir(), "s"))
	require.NoError(t, err)
	done := make(chan error)
	go func() {
		_, err := p.Read(make([]byte, 8))
		done <- err
	}()
	require.NoError(t, p.Close())
	select {
	case err := <-done:
		require.Error(t, err)
	case <-time.After(2 * time.Second):
		t.Fatal("Read did not return after Close")
	}
}

// TestUnplugWhileReading covers the simulator's normal state: its Read is
// blocked on the master when the cable is pulled, and the driver must
// still see the hangup.
func TestUnplugWhileReading(t *testing.T) {
	p, port := plugged(t)

	got := make(chan struct{}, 1)
	go func() {
		for {
			if _, err := p.Read(make([]byte, 8)); err != nil {
				return
			}
			got <- struct{}{}
		}
	}()
	_, err := port.Write([]byte("x"))
	require.NoError(t, err)
	<-got // the reader is now back in Read, parked on the master
	require.NoError(t, p.Unplug())
	require.Error(t, hangup(port), "driver saw no hangup")
}
