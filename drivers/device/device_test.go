package device

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/shelfsync/shelfsync/drivers/feedback"
	"github.com/shelfsync/shelfsync/drivers/linemode"
	"github.com/shelfsync/shelfsync/drivers/ssi"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var fixedNow = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

// start runs a Device over fake ports and stops it at test end.
func start(t *testing.T, cfg Config) (*Device, *fakeOpener, <-chan Read) {
	t.Helper()
	o := &fakeOpener{errs: map[int]error{}}
	if cfg.Name == "" {
		cfg.Name = "dev1"
	}
	if cfg.Selector == "" {
		cfg.Selector = "/dev/fake"
	}
	cfg.OpenPort = o.open
	cfg.Now = func() time.Time { return fixedNow }
	cfg.Backoff = Backoff{Min: time.Millisecond, Max: 4 * time.Millisecond}
	d := Open(cfg)
	out := make(chan Read, 16)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		assert.NoError(t, d.Run(ctx, out))
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return d, o, out
}

func TestLineFraming(t *testing.T) {
	d, o, out := start(t, Config{Line: linemode.Config{MaxLine: 16}})
	p := o.port(t, 0)
	p.in <- []byte("4006381333931\r")
	p.in <- []byte("\nLOC:A-0")
	p.in <- []byte("1\r\n" + strings.Repeat("x", 40) + "\r\nnext\r\n")

	r := recv(t, out)
	assert.Equal(t, Read{Device: "dev1", Text: "4006381333931", Raw: []byte("4006381333931"), At: fixedNow}, r)
	assert.Equal(t, "LOC:A-01", recv(t, out).Text)
	r = recv(t, out)
	require.ErrorIs(t, r.Err, linemode.ErrLineTooLong)
	assert.Equal(t, "next", recv(t, out).Text)
	waitFor(t, "stats", func() bool { return d.Stats().Reads == 3 })
	assert.Equal(t, uint64(1), d.Stats().FramingErrors)
	assert.Equal(t, "/dev/fake", d.Path())
}

func TestIdleFlush(t *testing.T) {
	_, o, out := start(t, Config{IdleFlush: 10 * time.Millisecond})
	o.port(t, 0).in <- []byte("NOTERMINATOR")
	assert.Equal(t, "NOTERMINATOR", recv(t, out).Text)
}

func TestSSIFraming(t *testing.T) {
	d, o, out := start(t, Config{Framing: FramingSSI})
	p := o.port(t, 0)
	scan := ssi.MustEncode(ssi.DecodeData(0x0B, []byte("4006381333931")))
	bad := append([]byte(nil), scan...)
	bad[len(bad)-1]++
	p.in <- append(append([]byte{0x00, 0x42}, bad...), scan...)

	r := recv(t, out)
	assert.Equal(t, "4006381333931", r.Text)
	assert.Equal(t, "EAN-13", r.Symbology)
	ack, nak := ssi.MustEncode(ssi.Ack()), ssi.MustEncode(ssi.Nak(ssi.NakResend))
	waitFor(t, "nak and ack", func() bool { return string(p.Written()) == string(nak)+string(ack) })
	st := d.Stats()
	assert.Equal(t, uint64(1), st.FramingErrors)
	assert.Equal(t, uint64(2), st.Garbage)

	require.NoError(t, d.Feedback(feedback.Warn))
	beep, _ := feedback.For(feedback.KindSSI).Encode(feedback.Warn)
	waitFor(t, "beep", func() bool { return strings.HasSuffix(string(p.Written()), string(beep)) })
}

func TestReconnect(t *testing.T) {
	d, o, out := start(t, Config{Feedback: feedback.KindHoneywell})
	o.mu.Lock()
	o.errs[1] = errors.New("open: no such device")
	o.errs[2] = errors.New("open: no such device")
	o.mu.Unlock()

	p0 := o.port(t, 0)
	waitFor(t, "connected", d.Connected)
	require.NoError(t, d.Feedback(feedback.Good))
	assert.Equal(t, "\x1b7", string(p0.Written()))

	p0.Close()         // unplug
	p1 := o.port(t, 1) // opens 1 and 2 fail, open 3 succeeds
	waitFor(t, "connected again", d.Connected)
	p1.in <- []byte("after\r\n")
	assert.Equal(t, "after", recv(t, out).Text)
	assert.Equal(t, uint64(1), d.Stats().Reconnects)
	o.mu.Lock()
	assert.Equal(t, 4, o.calls)
	o.mu.Unlock()
}

func TestFeedbackNotConnected(t *testing.T) {
	d := Open(Config{Name: "x", Selector: "/dev/null"})
	err := d.Feedback(feedback.Good)
	require.ErrorIs(t, err, ErrNotConnected)
	assert.False(t, d.Connected())
}

func TestRunStopsOnCancel(t *testing.T) {
	d := Open(Config{Name: "x", Selector: "usb:FFFF:FFFF"}) // never found
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Run(ctx, make(chan Read)) }()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"ok", Config{Name: "a", Selector: "/dev/ttyACM0"}, ""},
		{"no name", Config{Selector: "/dev/ttyACM0"}, "Name"},
		{"bad selector", Config{Name: "a", Selector: "ttyACM0"}, "Selector"},
		{"bad framing", Config{Name: "a", Selector: "/dev/x", Framing: "hid"}, "Framing"},
		{"bad feedback", Config{Name: "a", Selector: "/dev/x", Feedback: "loud"}, "Feedback"},
		{"bad backoff", Config{Name: "a", Selector: "/dev/x", Backoff: Backoff{Min: time.Second, Max: time.Millisecond}}, "Backoff"},
		{"bad line", Config{Name: "a", Selector: "/dev/x", Line: linemode.Config{MaxLine: -1}}, "Line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, strings.ToLower(err.Error()), strings.ToLower(tt.want))
			require.Error(t, Open(tt.cfg).Run(context.Background(), nil))
		})
	}
}

func TestBackoff(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	tests := []struct {
		n    int
		r    float64
		want time.Duration
	}{
		{0, 0, 50 * time.Millisecond},
		{0, 0.999999, 100 * time.Millisecond},
		{1, 0, 100 * time.Millisecond},
		{3, 0.5, 600 * time.Millisecond},
		{6, 0, 2500 * time.Millisecond}, // 6.4 s capped at 5 s
		{100, 0, 2500 * time.Millisecond},
	}
	for _, tt := range tests {
		assert.InDelta(t, tt.want, b.backoff(tt.n, tt.r), float64(time.Millisecond), "n=%d r=%v", tt.n, tt.r)
	}
}

// TestPtyHangup checks the real serial stack: a pty whose master closes
// looks like an unplugged USB device, and the Device reconnects to the
// new pty behind the same link.
func TestPtyHangup(t *testing.T) {
	link := t.TempDir() + "/scanner"
	plug := func() (master interface {
		Write([]byte) (int, error)
		Close() error
	}, closeAll func()) {
		m, s, err := pty.Open()
		require.NoError(t, err)
		_ = removeIfExists(link)
		require.NoError(t, symlink(s.Name(), link))
		return m, func() { m.Close(); s.Close() }
	}
	m, unplug := plug()
	d := Open(Config{Name: "pty", Selector: link, Backoff: Backoff{Min: 5 * time.Millisecond, Max: 20 * time.Millisecond}})
	out := make(chan Read, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); assert.NoError(t, d.Run(ctx, out)) }()
	defer func() { cancel(); <-done }()

	waitFor(t, "connected", d.Connected)
	_, err := m.Write([]byte("one\r\n"))
	require.NoError(t, err)
	assert.Equal(t, "one", recv(t, out).Text)

	unplug()
	waitFor(t, "disconnected", func() bool { return !d.Connected() })
	m, unplug = plug()
	defer unplug()
	waitFor(t, "reconnected", d.Connected)
	_, err = m.Write([]byte("two\r\n"))
	require.NoError(t, err)
	assert.Equal(t, "two", recv(t, out).Text)
	assert.GreaterOrEqual(t, d.Stats().Reconnects, uint64(1))
}
