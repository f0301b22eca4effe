package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// serverCmd runs a shelfsync-server command to completion.
func (c *cluster) serverCmd(args ...string) string {
	c.t.Helper()
	out, err := exec.CommandContext(c.t.Context(), bins(c.t).Server, args...).CombinedOutput()
	require.NoError(c.t, err, "shelfsync-server %s: %s", strings.Join(args, " "), out)
	return string(out)
}

// backup takes an online backup of the running server.
func (c *cluster) backup() string {
	file := filepath.Join(c.dir, fmt.Sprintf("backup-%d.bak", time.Now().UnixNano()))
	c.serverCmd("backup", "--url", "http://"+c.httpAddr, "--out", file)
	return file
}

// restore stops the server, puts the backup back and starts it again.
func (c *cluster) restore(file string) {
	c.stopServer(syscall.SIGTERM)
	out := c.serverCmd("restore", "--data", filepath.Join(c.dir, "server"), "--from", file)
	require.Contains(c.t, out, "new identity")
	c.startServer()
}

// receive scans n receipts of sku (one session per call: CMD:RECEIVE …
// CMD:DONE) and waits for their beeps.
func (g *gateway) receive(sku string, n int) {
	before := 0
	for _, v := range g.beeps() {
		before += v
	}
	scans := []string{"CMD:RECEIVE"}
	for i := 0; i < n; i++ {
		scans = append(scans, "SKU:"+sku)
	}
	scans = append(scans, "CMD:DONE")
	g.scan(scans...)
	b := g.waitBeeps(before + len(scans))
	require.Zero(g.c.t, b["bad"], "every scan confirmed")
}

func (c *cluster) waitAcked(gws ...*gateway) {
	waitFor(c.t, 60*time.Second, "every op acknowledged", func() bool {
		for _, g := range gws {
			if st := g.status(); st.LastSeq == 0 || st.AckedSeq != st.LastSeq {
				return false
			}
		}
		return true
	})
}

type regressionView struct {
	Uplink struct {
		Regressions uint64 `json:"server_regressions"`
		Last        *struct {
			ServerWM   uint64 `json:"server_wm"`
			ResendFrom uint64 `json:"resend_from"`
		} `json:"last_server_regression"`
	} `json:"uplink"`
}

func (g *gateway) regressions() regressionView {
	var v regressionView
	getJSON(g.c.t, "http://"+g.HTTP+"/api/v1/status", &v)
	return v
}

// TestServerRestoredFromBackupEveryAgentResumes: three gateways stream
// scans; an online backup is taken; they keep scanning; the server is
// stopped, its data replaced by the backup and started. Every agent
// notices the new identity by itself, resends what the backup lacks from
// its retention, keeps scanning, and the server's ledger ends equal to the
// fold of every confirmed scan: nothing lost, nothing twice.
func TestServerRestoredFromBackupEveryAgentResumes(t *testing.T) {
	t.Parallel() // its own server, agents, ports and directories
	c := newCluster(t)
	gws := []*gateway{c.newGateway("wh1", "g1"), c.newGateway("wh1", "g2"), c.newGateway("wh1", "g3")}
	stream := func(n int) {
		done := make(chan struct{}, len(gws))
		for i, g := range gws {
			go func() {
				defer func() { done <- struct{}{} }()
				g.receive("S", n)
				g.receive(fmt.Sprintf("T%d", i+1), n/2)
			}()
		}
		for range gws {
			<-done
		}
	}
	stream(40)
	c.waitAcked(gws...)
	file := c.backup()
	stream(60)
	c.waitAcked(gws...)

	c.restore(file)
	stream(20)
	want := map[string]int64{"RECEIVING/S": 3 * (40 + 60 + 20)}
	for i := range gws {
		want[fmt.Sprintf("RECEIVING/T%d", i+1)] = 20 + 30 + 10
	}
	require.Equal(t, want, c.waitConverged("wh1", gws...))
	for _, g := range gws {
		st := g.status()
		require.Equal(t, st.LastSeq, st.AckedSeq)
		r := g.regressions()
		require.Equal(t, uint64(1), r.Uplink.Regressions, "%s noticed the restore once", g.GW)
		require.Equal(t, uint64(60), r.Uplink.Last.ServerWM, "%s: the backup had its first 60 ops", g.GW)
		require.Equal(t, uint64(61), r.Uplink.Last.ResendFrom)
	}
	require.Empty(t, c.conflicts("wh1", "lost-ops"), "retention covered everything")
}

// TestRestoreBeyondRetentionRecordsLostOps: a gateway that keeps only 20
// acknowledged ops; the server goes back to a backup that had 100 of its
// 200: ops 101..180 can never come back. The server records exactly that
// range as a lost-ops conflict, raises its alert, sends a count task for
// the gateway's zone, and replication resumes: the retained 181..200 and
// the scans after the restore are applied once each.
func TestRestoreBeyondRetentionRecordsLostOps(t *testing.T) {
	t.Parallel() // its own server, agents, ports and directories
	c := newCluster(t)
	require.Equal(t, 200, c.post("/api/v1/masterdata/wh1/zones", []map[string]string{{"zone": "Z1", "gateway": "g1"}}, nil))
	require.Equal(t, 200, c.post("/api/v1/masterdata/wh1/locations", []map[string]string{{"code": "RECEIVING", "zone": "Z1", "type": "dock"}}, nil))
	g := c.newGatewayWith("wh1", "g1", nil, "feedback=honeywell", "--retain-ops", "20")
	// Until the dock's location reaches the gateway, a receive has no
	// default location and every item scan asks for a LOC: label.
	waitFor(t, 20*time.Second, "the dock at the gateway", func() bool { return g.screen().Counts["locations"] == 1 })
	g.receive("S", 100)
	c.waitAcked(g)
	file := c.backup()
	g.receive("S", 100)
	c.waitAcked(g)

	c.restore(file)
	waitFor(t, 30*time.Second, "lost-ops conflict", func() bool { return len(c.conflicts("wh1", "lost-ops")) == 1 })
	cf := c.conflicts("wh1", "lost-ops")[0]
	require.Equal(t, "lost:wh1/g1/101-180", cf.ID)
	require.Equal(t, "open", cf.Status)
	require.Len(t, cf.Ops, 2)
	require.Equal(t, []uint64{101, 180}, []uint64{cf.Ops[0].Seq, cf.Ops[1].Seq})
	waitFor(t, 30*time.Second, "the conflict's notification", func() bool {
		return serverMetric(t, "http://"+c.httpAddr, `shelfsync_conflict_notifications_total{event="opened",kind="lost-ops"}`) == 1
	})
	waitFor(t, 30*time.Second, "a count task for the zone at the gateway", func() bool {
		for _, tk := range g.tasks() {
			if tk.Kind == "count" && tk.Location == "RECEIVING" {
				return true
			}
		}
		return false
	})

	g.receive("S", 10)
	require.Equal(t, map[string]int64{"RECEIVING/S": 100 + 20 + 10}, c.waitConverged("wh1", g),
		"the first 100, the 20 retained, the 10 after: nothing twice")
	require.Equal(t, 80.0, serverMetric(t, "http://"+c.httpAddr, "shelfsync_ingest_lost_ops_total"))
}

// TestGatewayResendsToABrandNewServer: the server's data directory is
// lost; a new, empty server starts in its place. The gateway resends every
// op it retains and its stock reappears, exactly once.
func TestGatewayResendsToABrandNewServer(t *testing.T) {
	t.Parallel() // its own server, agents, ports and directories
	c := newCluster(t)
	g := c.newGateway("wh1", "g1")
	g.receive("S", 50)
	g.receive("T", 30)
	c.waitAcked(g)
	c.stopServer(syscall.SIGTERM)
	require.NoError(t, os.RemoveAll(filepath.Join(c.dir, "server")))
	c.startServer()
	require.Equal(t, map[string]int64{"RECEIVING/S": 50, "RECEIVING/T": 30}, c.waitConverged("wh1", g))
	require.Equal(t, uint64(1), g.regressions().Uplink.Regressions)
	require.Empty(t, c.conflicts("wh1", "lost-ops"))
}
