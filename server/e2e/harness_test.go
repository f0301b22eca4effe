// Package e2e runs shelfsync's real binaries together: server (embedded
// broker and Badger), agents, and simulated scanners behind real ptys.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "shelfsync-e2e-bin")
	if err != nil {
		panic(err)
	}
	binDir = dir
	for _, b := range []struct{ name, pkg string }{
		{"shelfsync-server", "./server/cmd/shelfsync-server"},
		{"shelfsync-agent", "./agent/cmd/shelfsync-agent"},
		{"shelfsync-sim", "./firmware-sim/cmd/shelfsync-sim"},
	} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b.name), b.pkg)
		cmd.Dir = "../.." // repository root: the go.work workspace
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build", b.name, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// proc is a child process whose output is kept for failure reports.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	in   io.WriteCloser
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func start(t *testing.T, name string, stdin bool, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(binDir, args[0]), args[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if stdin {
		w, err := p.cmd.StdinPipe()
		require.NoError(t, err)
		p.in = w
	}
	require.NoError(t, p.cmd.Start())
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("---- %s output ----\n%s", p.name, tail(p.output(), logLines()))
		}
	})
	return p
}

// logLines is how many lines of each process's output a failing test
// prints (SHELFSYNC_E2E_LOG_LINES, default 60).
func logLines() int {
	n, err := strconv.Atoi(os.Getenv("SHELFSYNC_E2E_LOG_LINES"))
	if err != nil || n <= 0 {
		return 60
	}
	return n
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (p *proc) kill(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// cluster is one server, and the agents and scanners of a test.
type cluster struct {
	t          *testing.T
	dir        string
	httpAddr   string
	mqttAddr   string
	server     *proc
	serverRuns int
}

func newCluster(t *testing.T) *cluster {
	c := &cluster{t: t, dir: t.TempDir(), httpAddr: freePort(t), mqttAddr: freePort(t)}
	c.startServer()
	return c
}

func (c *cluster) startServer() {
	c.serverRuns++
	c.server = start(c.t, fmt.Sprintf("server#%d", c.serverRuns), false, "shelfsync-server", "run",
		"--data", filepath.Join(c.dir, "server"), "--http", c.httpAddr, "--mqtt", c.mqttAddr)
	waitFor(c.t, 15*time.Second, "server healthy", func() bool { return httpOK("http://" + c.httpAddr + "/healthz") })
}

func httpOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, url)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

type stockBody struct {
	Items []struct {
		Warehouse, Location, SKU, Lot string
		OnHand                        int64 `json:"on_hand"`
	}
}

// stock returns location/sku → on-hand from an API base URL.
func stock(t *testing.T, base, wh string) map[string]int64 {
	var b stockBody
	getJSON(t, base+"/api/v1/stock?warehouse="+wh, &b)
	out := map[string]int64{}
	for _, it := range b.Items {
		out[it.Location+"/"+it.SKU] = it.OnHand
	}
	return out
}

// gateway is an agent process with one simulated scanner behind a pty.
type gateway struct {
	c        *cluster
	wh, gw   string
	dir      string
	httpAddr string
	link     string
	agent    *proc
	sim      *proc
	runs     int
	devOpts  string
}

func (c *cluster) newGateway(wh, gw string) *gateway {
	return c.newGatewayWith(wh, gw, nil, "feedback=honeywell")
}

// newGatewayWith starts a gateway whose simulated scanner gets simArgs and
// whose --device spec gets the options devOpts (e.g. "framing=ssi").
func (c *cluster) newGatewayWith(wh, gw string, simArgs []string, devOpts string) *gateway {
	g := &gateway{c: c, wh: wh, gw: gw, dir: filepath.Join(c.dir, gw), httpAddr: freePort(c.t), link: filepath.Join(c.dir, gw+".tty"), devOpts: devOpts}
	args := append([]string{"shelfsync-sim", "barcode", "--link", g.link, "--suffix", "CRLF"}, simArgs...)
	g.sim = start(c.t, gw+"/sim", true, args...)
	waitFor(c.t, 10*time.Second, "pty link", func() bool { _, err := os.Stat(g.link); return err == nil })
	g.startAgent()
	return g
}

func (g *gateway) startAgent() {
	g.runs++
	g.agent = start(g.c.t, fmt.Sprintf("%s/agent#%d", g.gw, g.runs), false, "shelfsync-agent", "run",
		"--data", g.dir, "--warehouse", g.wh, "--gateway", g.gw, "--broker", "tcp://"+g.c.mqttAddr,
		"--http", g.httpAddr, "--device", "s1=barcode:"+g.link+","+g.devOpts, "--ack-timeout", "1s")
	waitFor(g.c.t, 15*time.Second, "agent healthy", func() bool { return httpOK("http://" + g.httpAddr + "/healthz") })
	waitFor(g.c.t, 15*time.Second, "scanner connected", func() bool {
		st := g.status()
		return len(st.Devices) == 1 && st.Devices[0].Connected
	})
}

type agentStatus struct {
	LastSeq     uint64 `json:"last_seq"`
	AckedSeq    uint64 `json:"acked_seq"`
	OutboxDepth uint64 `json:"outbox_depth"`
	Connected   bool   `json:"connected"`
	Devices     []struct {
		Name      string
		Connected bool
	}
}

func (g *gateway) status() agentStatus {
	var st agentStatus
	resp, err := http.Get("http://" + g.httpAddr + "/api/v1/status")
	if err != nil {
		return st
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&st)
	return st
}

// scan types lines into the simulated scanner.
func (g *gateway) scan(lines ...string) {
	for _, l := range lines {
		_, err := io.WriteString(g.sim.in, l+"\n")
		require.NoError(g.c.t, err)
	}
}

// beeps counts the feedback the simulated scanner received, by signal.
func (g *gateway) beeps() map[string]int {
	out := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(g.sim.output()))
	for sc.Scan() {
		if _, sig, ok := strings.Cut(sc.Text(), "feedback: "); ok {
			out[strings.Fields(sig)[0]]++
		}
	}
	return out
}

// waitBeeps waits until the scanner has heard n beeps in all.
func (g *gateway) waitBeeps(n int) map[string]int {
	var b map[string]int
	waitFor(g.c.t, 20*time.Second, fmt.Sprintf("%d beeps", n), func() bool {
		b = g.beeps()
		return b["good"]+b["bad"]+b["warn"] >= n
	})
	return b
}
