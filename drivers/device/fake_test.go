package device

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/shelfsync/shelfsync/drivers/serialport"
)

// errUnplugged is what a fakePort's Read returns once unplugged.
var errUnplugged = errors.New("fake: device unplugged")

// fakePort is an in-memory serial port: tests push bytes the device
// "sends", read back what the driver wrote, and unplug it.
type fakePort struct {
	in      chan []byte
	gone    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	rest    []byte
	written []byte
}

func newFakePort() *fakePort {
	return &fakePort{in: make(chan []byte, 64), gone: make(chan struct{})}
}

func (f *fakePort) Read(p []byte) (int, error) {
	if len(f.rest) == 0 {
		select {
		case b := <-f.in:
			f.rest = b
		case <-f.gone:
			return 0, errUnplugged
		case <-time.After(2 * time.Millisecond):
			return 0, nil // read timeout
		}
	}
	n := copy(p, f.rest)
	f.rest = f.rest[n:]
	return n, nil
}

func (f *fakePort) Write(p []byte) (int, error) {
	select {
	case <-f.gone:
		return 0, io.ErrClosedPipe
	default:
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.written = append(f.written, p...)
	return len(p), nil
}

func (f *fakePort) Close() error {
	f.once.Do(func() { close(f.gone) })
	return nil
}

// Written returns what the driver wrote so far.
func (f *fakePort) Written() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]byte(nil), f.written...)
}

// fakeOpener hands out ports in order; errs[i], when set, fails open i.
type fakeOpener struct {
	mu    sync.Mutex
	ports []*fakePort
	errs  map[int]error
	calls int
}

func (o *fakeOpener) open(string, int) (serialport.Port, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	i := o.calls
	o.calls++
	if err := o.errs[i]; err != nil {
		return nil, err
	}
	p := newFakePort()
	o.ports = append(o.ports, p)
	return p, nil
}

// port returns the i-th port opened, waiting for it.
func (o *fakeOpener) port(t *testing.T, i int) *fakePort {
	t.Helper()
	var p *fakePort
	waitFor(t, "port to open", func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		if len(o.ports) > i {
			p = o.ports[i]
		}
		return p != nil
	})
	return p
}

// waitFor polls cond until it holds, failing the test after 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// recv returns the next Read, failing after 5 s.
func recv(t *testing.T, ch <-chan Read) Read {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for a Read")
		return Read{}
	}
}

func symlink(target, link string) error { return os.Symlink(target, link) }

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
