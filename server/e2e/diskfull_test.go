package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/testbed"
)

// nonZero drops the signals never heard.
func nonZero(b map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range b {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// get returns an URL's status and body ("" and 0 while nothing answers).
func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestIntegrationRestartOnAFullDisk: the server and an agent, each on a
// size-limited tmpfs, are stopped, their disks filled completely, and
// started again. Neither exits or crashes (opening Badger writes; a write
// into its mapped files would SIGBUS): each waits to open its store and
// says why — the server on /healthz (503 "data disk full"), the metric
// shelfsync_server_disk_full and its log; the agent on /healthz (503),
// its status API ("full": true), shelfsync_agent_disk_full and its log;
// a scan meanwhile gets a bad beep and "disk full" on the gateway screen,
// and is not recorded.
// When space returns both go on by themselves: the server is healthy
// again and the agent reads its scanner, confirms and delivers scans.
func TestIntegrationRestartOnAFullDisk(t *testing.T) {
	t.Parallel()
	srvDisk, agentDisk := testbed.TmpfsDir(t, "400m"), testbed.TmpfsDir(t, "96m")
	httpAddr, mqttAddr := freePort(t), freePort(t)
	srvArgs := []string{"run", "--http", httpAddr, "--data", filepath.Join(srvDisk, "data"), "--mqtt", mqttAddr,
		"--disk-reserve", "167772160", "--disk-low", "209715200"} // 160 and 200 MiB
	srv := start(t, "server#1", false, "shelfsync-server", srvArgs...)
	base := "http://" + httpAddr
	waitFor(t, 30*time.Second, "server healthy", func() bool { c, _ := get(base + "/healthz"); return c == 200 })
	g := &gateway{c: &cluster{t: t}, Gateway: &testbed.Gateway{Bins: bins(t), WH: "wh1", GW: "dock1", Dir: filepath.Join(agentDisk, "agent"),
		HTTP: freePort(t), Broker: "tcp://" + mqttAddr, AgentArgs: []string{"--disk-reserve", "25165824", "--disk-low", "41943040"}}} // 24 and 40 MiB
	err := g.Start(t.Context())
	g.reportAtCleanup()
	require.NoError(t, err)
	g.scan("CMD:RECEIVE", "SKU:A", "SKU:A")
	require.Equal(t, 3, g.waitBeeps(3)["good"])
	want := map[string]int64{"RECEIVING/A": 2}
	waitFor(t, 30*time.Second, "server has the scans", func() bool { return equal(stock(t, base, "wh1"), want) })

	g.Agent().Stop(syscall.SIGTERM)
	srv.Stop(syscall.SIGTERM)
	srvFill, agentFill := filepath.Join(srvDisk, "filler"), filepath.Join(agentDisk, "filler")
	require.NoError(t, testbed.FillDisk(srvFill, 0))
	require.NoError(t, testbed.FillDisk(agentFill, 0))

	srv = start(t, "server#2", false, "shelfsync-server", srvArgs...)
	waitFor(t, 30*time.Second, "server answers on a full disk", func() bool {
		c, body := get(base + "/healthz")
		return c == http.StatusServiceUnavailable && strings.Contains(body, "data disk full")
	})
	_, metrics := get(base + "/metrics")
	require.Contains(t, metrics, "shelfsync_server_disk_full 1")
	require.Contains(t, srv.Output(), "data disk below its reserve")

	agentBase := "http://" + g.HTTP
	agent := start(t, "agent#2", false, "shelfsync-agent", "run", "--data", g.Dir, "--warehouse", "wh1", "--gateway", "dock1",
		"--broker", g.Broker, "--http", g.HTTP, "--device", "s1=barcode:"+g.Link()+",feedback=honeywell", "--ack-timeout", "1s",
		"--disk-reserve", "25165824", "--disk-low", "41943040")
	waitFor(t, 30*time.Second, "agent answers on a full disk", func() bool {
		c, body := get(agentBase + "/healthz")
		return c == http.StatusServiceUnavailable && strings.Contains(body, "disk full")
	})
	_, status := get(agentBase + "/api/v1/status")
	require.Contains(t, status, `"full":true`)
	_, metrics = get(agentBase + "/metrics")
	require.Contains(t, metrics, "shelfsync_agent_disk_full 1")
	require.Contains(t, agent.Output(), "data disk below its reserve")

	// The waiting agent reads its scanner: a scan gets a bad beep and
	// "disk full" on the gateway screen, and is not recorded.
	waitFor(t, 30*time.Second, "the waiting agent has its scanner open", func() bool {
		_, status := get(agentBase + "/api/v1/status")
		return strings.Contains(status, `"connected":true`)
	})
	g.scan("SKU:A")
	b := g.waitBeeps(4)
	require.Equal(t, map[string]int{"good": 3, "bad": 1}, nonZero(b), "a scan on the full disk gets a bad beep")
	_, scr := get(agentBase + "/screen/api/state")
	require.Contains(t, scr, `"disk":"full"`)
	require.Contains(t, scr, "disk full: not saved")
	_, metrics = get(agentBase + "/metrics")
	require.Contains(t, metrics, `shelfsync_agent_scans_total{verdict="bad"} 1`)

	time.Sleep(2 * time.Second) // both keep running on the full disk
	require.True(t, srv.Alive(), "server crashed on a full disk:\n%s", srv.Tail(30))
	require.True(t, agent.Alive(), "agent crashed on a full disk:\n%s", agent.Tail(30))

	require.NoError(t, os.Remove(srvFill))
	require.NoError(t, os.Remove(agentFill))
	waitFor(t, 30*time.Second, "server healthy again by itself", func() bool { c, _ := get(base + "/healthz"); return c == 200 })
	waitFor(t, 30*time.Second, "agent up by itself with its scanner", func() bool {
		st, err := g.Status()
		return err == nil && len(st.Devices) == 1 && st.Devices[0].Connected && !st.Disk.Full
	})
	g.scan("SKU:A")
	b = g.waitBeeps(5)
	require.Equal(t, map[string]int{"good": 4, "bad": 1}, nonZero(b), "scans confirmed again")
	want["RECEIVING/A"] = 3 // the refused scan was not recorded
	waitFor(t, 60*time.Second, "server gets the new scan", func() bool { return equal(stock(t, base, "wh1"), want) })
}
