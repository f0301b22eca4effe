package devices

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/shelfsync/shelfsync/agent/internal/store"
)

// rawPty opens a pty in raw mode and links its slave at link.
func rawPty(t *testing.T, link string) *os.File {
	t.Helper()
	master, slave, err := pty.Open()
	require.NoError(t, err)
	tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	require.NoError(t, err)
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	require.NoError(t, unix.IoctlSetTermios(int(slave.Fd()), unix.TCSETS, tio))
	require.NoError(t, os.Symlink(slave.Name(), link))
	t.Cleanup(func() { master.Close(); slave.Close() })
	// Drain what the agent writes back (beeps) so the pty never blocks.
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := master.Read(buf); err != nil {
				return
			}
		}
	}()
	return master
}

type countingHandler struct {
	n atomic.Int64
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(context.Context, slog.Record) error {
	h.n.Add(1)
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

// TestGarbageFloodDoesNotStarveOtherDevice: one scanner spews random bytes
// (with line breaks) as fast as the pty takes them while another scans
// normally; every normal scan is committed, and the flood is summarised in
// the log instead of logged line by line.
func TestGarbageFloodDoesNotStarveOtherDevice(t *testing.T) {
	runFlood(t, func(buf []byte) {
		_, _ = rand.Read(buf)
		for i := 0; i < len(buf); i += 37 {
			buf[i] = '\n'
		}
	})
}

// TestPartialTerminatorFloodIsGated: a scanner sending short lines cut by
// lone CRs and LFs at machine speed — each a readable scan that the
// session rejects, not unreadable garbage — is held by the same gate: the
// log stays bounded and the other device's scans all commit.
func TestPartialTerminatorFloodIsGated(t *testing.T) {
	pattern := []byte("SKU:X\r4006381333931\rQTY:2\n\r\nCMD:DONE\r")
	runFlood(t, func(buf []byte) {
		for i := range buf {
			buf[i] = pattern[i%len(pattern)]
		}
	})
}

// runFlood has one device flood with what fill writes while another scans
// 200 items.
func runFlood(t *testing.T, fill func(buf []byte)) {
	dir := t.TempDir()
	st, err := store.Open(store.Options{Dir: filepath.Join(dir, "db"), Small: true})
	require.NoError(t, err)
	defer st.Close()
	noisy, good := filepath.Join(dir, "noisy"), filepath.Join(dir, "good")
	noisyM, goodM := rawPty(t, noisy), rawPty(t, good)
	logs := &countingHandler{}
	m, err := New(Config{
		Specs:        []Spec{{Name: "noisy", Kind: "barcode", Selector: noisy, Options: map[string]string{}}, {Name: "good", Kind: "barcode", Selector: good, Options: map[string]string{}}},
		ReceivingLoc: "RCV", Logger: slog.New(logs),
	}, st)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); m.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	stop := make(chan struct{})
	var flooded atomic.Int64
	go func() {
		buf := make([]byte, 4096)
		for {
			select {
			case <-stop:
				return
			default:
			}
			fill(buf)
			n, err := noisyM.Write(buf)
			if err != nil {
				return
			}
			flooded.Add(int64(n))
		}
	}()
	defer close(stop)

	start := time.Now()
	_, err = goodM.Write([]byte("CMD:RECEIVE\r\n"))
	require.NoError(t, err)
	var scans bytes.Buffer
	for i := 0; i < 200; i++ {
		scans.WriteString("SKU:OK\r\n")
	}
	scans.WriteString("CMD:DONE\r\n")
	_, err = goodM.Write(scans.Bytes())
	require.NoError(t, err)
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := st.Positions()
		require.NoError(t, err)
		if p.LastSeq == 200 {
			break
		}
		require.True(t, time.Now().Before(deadline), "only %d of 200 scans committed while the other device floods", p.LastSeq)
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(start)
	rows, err := st.Stock("", "")
	require.NoError(t, err)
	require.Equal(t, []store.StockRow{{Location: "RCV", SKU: "OK", OnHand: 200}}, rows)
	t.Logf("200 scans committed in %v while the noisy device sent %d KiB; %d log records", elapsed, flooded.Load()>>10, logs.n.Load())
	require.Greater(t, flooded.Load(), int64(64<<10), "the flood really flowed")
	// ~110 garbage lines per KiB without the gate; with it: ≤ 20/s logged
	// plus one summary per second, beside the 200 good scans' lines.
	require.Less(t, logs.n.Load(), int64(400+25*int64(elapsed/time.Second+2)))
}
