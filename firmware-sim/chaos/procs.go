package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Binaries are the paths of the real shelfsync programs the soak runs.
type Binaries struct {
	Server string
	Agent  string
}

// FindRoot returns the repository root (the directory holding go.work),
// searching upwards from dir.
func FindRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.work above %s: run from inside the shelfsync repository or pass the repository root", dir)
		}
	}
}

// Build compiles shelfsync-server and shelfsync-agent from the repository
// at root into dir with `go build`, as the e2e tests do.
func Build(ctx context.Context, root, dir string) (Binaries, error) {
	b := Binaries{Server: filepath.Join(dir, "shelfsync-server"), Agent: filepath.Join(dir, "shelfsync-agent")}
	for _, x := range []struct{ out, pkg string }{
		{b.Server, "./server/cmd/shelfsync-server"},
		{b.Agent, "./agent/cmd/shelfsync-agent"},
	} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", x.out, x.pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go build %s: %w\n%s", x.pkg, err, out)
		}
	}
	return b, nil
}

// proc is a child process; its output goes to a log file (appended on
// every restart, so one file tells a gateway's whole story).
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

func startProc(name, logPath string, bin string, args ...string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "==== %s start %s\n", name, time.Now().Format(time.RFC3339Nano))
	p := &proc{name: name, done: make(chan struct{}), log: f}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	// Own process group, so a Ctrl-C of the harness is not delivered to
	// the children as well; and killed with the harness if it dies (a test
	// timeout), so no daemon outlives its soak.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		fmt.Fprintf(f, "==== %s exit %s: %s\n", name, time.Now().Format(time.RFC3339Nano), p.cmd.ProcessState)
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// alive reports whether the process has not exited.
func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends sig and waits for the exit (SIGKILL after 10 s).
func (p *proc) kill(sig syscall.Signal) {
	if p == nil || !p.alive() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// freeAddr returns a free loopback host:port.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

var httpc = &http.Client{Timeout: 5 * time.Second}

// getJSON fetches url into v; it returns the status code.
func getJSON(ctx context.Context, url string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(v)
}

// waitFor polls cond every 25 ms until it holds, ctx ends or d passes.
func waitFor(ctx context.Context, d time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", d, what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
	}
	return nil
}

// gate is a broadcast of "up" and "down": waiters block while down, and
// Down returns a channel closed at the next transition to down.
type gate struct {
	mu   sync.Mutex
	up   chan struct{} // closed while up
	down chan struct{} // closed while down
}

func newGate() *gate {
	g := &gate{up: make(chan struct{}), down: make(chan struct{})}
	close(g.down)
	return g
}

func (g *gate) setUp() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.up:
		return
	default:
	}
	close(g.up)
	g.down = make(chan struct{})
}

func (g *gate) setDown() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.down:
		return
	default:
	}
	close(g.down)
	g.up = make(chan struct{})
}

// chans returns the current up and down channels.
func (g *gate) chans() (up, down <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.up, g.down
}

// wait blocks until up or ctx ends.
func (g *gate) wait(ctx context.Context) error {
	up, _ := g.chans()
	select {
	case <-up:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
