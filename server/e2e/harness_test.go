// Package e2e runs shelfsync's real binaries together: server (embedded
// broker and Badger), agents, and simulated scanners behind real ptys. The
// processes are started and awaited by the testbed module; this file only
// ties them to *testing.T.
package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/testbed"
)

// bins builds (once per test run) and returns the binaries.
func bins(t *testing.T) testbed.Bins {
	t.Helper()
	b, err := testbed.Build(t.Context())
	require.NoError(t, err)
	return b
}

func freePort(t *testing.T) string { t.Helper(); return testbed.Addr(t) }

// waitFor polls cond until it holds; the test fails if d passes first.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testbed.Await(t, d, what, cond)
}

// start starts bin ("shelfsync-server", "shelfsync-agent" or
// "shelfsync-sim") with args; it is killed at the end of the test, and its
// output printed if the test failed.
func start(t *testing.T, name string, stdin bool, bin string, args ...string) *testbed.Proc {
	t.Helper()
	b := bins(t)
	path := map[string]string{"shelfsync-server": b.Server, "shelfsync-agent": b.Agent, "shelfsync-sim": b.Sim}[bin]
	require.NotEmpty(t, path, "unknown binary %q", bin)
	p, err := testbed.Start(testbed.Spec{Name: name, Bin: path, Args: args, Stdin: stdin})
	require.NoError(t, err)
	reportAtCleanup(t, p)
	return p
}

// reportAtCleanup kills p when the test ends and prints its output if the
// test failed.
func reportAtCleanup(t *testing.T, p *testbed.Proc) {
	t.Cleanup(func() {
		p.Stop(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("---- %s output ----\n%s", p.Name, p.Tail(logLines()))
		}
	})
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

// cluster is one server, and the agents and scanners of a test.
type cluster struct {
	t        *testing.T
	dir      string
	httpAddr string
	mqttAddr string
	server   *testbed.Server
	// token, when set, is sent with every call (a server with --api-tokens).
	token string
}

func newCluster(t *testing.T) *cluster { return newClusterWith(t) }

// newClusterWith is newCluster with more server arguments (settings).
func newClusterWith(t *testing.T, serverArgs ...string) *cluster {
	c := &cluster{t: t, dir: t.TempDir(), httpAddr: freePort(t), mqttAddr: freePort(t)}
	c.server = &testbed.Server{Bin: bins(t).Server, HTTP: c.httpAddr,
		Args: append([]string{"--data", filepath.Join(c.dir, "server"), "--mqtt", c.mqttAddr}, serverArgs...)}
	c.startServer()
	return c
}

// startServer starts the server (again) and waits until it is healthy.
func (c *cluster) startServer() {
	c.t.Helper()
	err := c.server.Start(c.t.Context())
	if p := c.server.Proc(); p != nil {
		reportAtCleanup(c.t, p)
	}
	require.NoError(c.t, err)
}

// stopServer signals the server and waits for its exit.
func (c *cluster) stopServer(sig syscall.Signal) { c.server.Proc().Stop(sig) }

func httpOK(url string) bool { return testbed.HTTPOK(url) }

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	require.NoError(t, testbed.GetJSON(t.Context(), url, v))
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
	*testbed.Gateway
	c *cluster
}

func (c *cluster) newGateway(wh, gw string) *gateway {
	return c.newGatewayWith(wh, gw, nil, "feedback=honeywell")
}

// newGatewayWith starts a gateway whose simulated scanner gets simArgs,
// whose --device spec gets the options devOpts (e.g. "framing=ssi") and
// whose agent gets agentArgs.
func (c *cluster) newGatewayWith(wh, gw string, simArgs []string, devOpts string, agentArgs ...string) *gateway {
	g := &gateway{c: c, Gateway: &testbed.Gateway{Bins: bins(c.t), WH: wh, GW: gw, Dir: filepath.Join(c.dir, gw),
		HTTP: freePort(c.t), Broker: "tcp://" + c.mqttAddr, DevOpts: devOpts, SimArgs: simArgs, AgentArgs: agentArgs}}
	err := g.Start(c.t.Context())
	g.reportAtCleanup()
	require.NoError(c.t, err)
	return g
}

func (g *gateway) reportAtCleanup() {
	for _, p := range []*testbed.Proc{g.Sim(), g.Agent()} {
		if p != nil {
			reportAtCleanup(g.c.t, p)
		}
	}
}

// startAgent starts the agent again and waits until its scanner is connected.
func (g *gateway) startAgent() {
	g.c.t.Helper()
	err := g.StartAgent(g.c.t.Context())
	reportAtCleanup(g.c.t, g.Agent())
	require.NoError(g.c.t, err)
}

// status is the agent's status (zero while it does not answer).
func (g *gateway) status() testbed.AgentStatus {
	st, _ := g.Status()
	return st
}

// scan types lines into the simulated scanner.
func (g *gateway) scan(lines ...string) {
	require.NoError(g.c.t, g.Scan(lines...))
}

// beeps counts the feedback the simulated scanner received, by signal.
func (g *gateway) beeps() map[string]int { return g.Beeps() }

// waitBeeps waits until the scanner has heard n beeps in all.
func (g *gateway) waitBeeps(n int) map[string]int {
	g.c.t.Helper()
	b, err := g.WaitBeeps(g.c.t.Context(), 20*time.Second, n)
	require.NoError(g.c.t, err)
	return b
}
