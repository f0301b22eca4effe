package barcodesim

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shelfsync/shelfsync/drivers/device"
	"github.com/shelfsync/shelfsync/drivers/ssi"
	"github.com/stretchr/testify/require"
)

// newSim starts a simulator at a fresh link, closed at test end.
func newSim(t *testing.T, cfg Config) *Sim {
	t.Helper()
	cfg.Link = filepath.Join(t.TempDir(), "scanner")
	s, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// runDevice runs the real driver against the simulator's link.
func runDevice(t *testing.T, s *Sim, cfg device.Config) (*device.Device, <-chan device.Read) {
	t.Helper()
	cfg.Name = "sim"
	cfg.Selector = s.Link()
	cfg.Backoff = device.Backoff{Min: 5 * time.Millisecond, Max: 40 * time.Millisecond}
	d := device.Open(cfg)
	out := make(chan device.Read, 256)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := d.Run(ctx, out); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	waitFor(t, "device connected", d.Connected)
	return d, out
}

// waitFor polls cond until it holds, failing the test after 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// collect reads until done says the reads so far are enough, failing
// after 5 s.
func collect(t *testing.T, out <-chan device.Read, done func([]device.Read) bool) []device.Read {
	t.Helper()
	var got []device.Read
	timeout := time.After(5 * time.Second)
	for !done(got) {
		select {
		case r := <-out:
			got = append(got, r)
		case <-timeout:
			t.Fatalf("timed out; got %d reads: %v", len(got), texts(got))
		}
	}
	return got
}

// texts returns the Text of good reads and "<err>" for error reads.
func texts(reads []device.Read) []string {
	out := make([]string, len(reads))
	for i, r := range reads {
		out[i] = r.Text
		if r.Err != nil {
			out[i] = "<err>"
		}
	}
	return out
}

// hasAll reports whether want appears, in order, among reads' texts.
func hasAll(want []string) func([]device.Read) bool {
	return func(reads []device.Read) bool {
		i := 0
		for _, r := range reads {
			if i < len(want) && r.Err == nil && r.Text == want[i] {
				i++
			}
		}
		return i == len(want)
	}
}

// count returns how many reads there are of text ("<err>" for errors).
func count(reads []device.Read, text string) int {
	n := 0
	for _, s := range texts(reads) {
		if s == text {
			n++
		}
	}
	return n
}

// symbology names an SSI code type through the driver's table.
func symbology(c byte) string { return ssi.Symbology(c) }
