package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/testbed"
	"github.com/shelfsync/shelfsync/testbed/crashfs"
)

// TestPowerCutAgentLosesNoConfirmedScan: the agent's data directory is a
// crashfs, which keeps only what was fsynced (file bytes) and what
// directory syncs recorded (entries). Scans are confirmed, then the agent
// is killed with SIGKILL and the file system "loses power": unsynced
// writes — in the page cache or in flight — and unsynced creations and
// renames are dropped, and it is mounted again. After a restart every
// good-beeped scan is in the agent's stock, over three such cuts, and the
// server gets them all once it is up. kill -9 alone keeps the page cache,
// so it cannot tell a synced commit from an unsynced one; this can (with
// the agent's Badger writes unsynced, the first cut loses scans).
func TestPowerCutAgentLosesNoConfirmedScan(t *testing.T) {
	t.Parallel() // its own server, agent, ports, directories and mount
	c := newCluster(t)
	c.stopServer(syscall.SIGKILL) // nothing is acked: every scan lives only in the agent's store
	dir := filepath.Join(c.dir, "dock1")
	require.NoError(t, os.Mkdir(dir, 0o755))
	fsys := crashfs.MountT(t, dir, crashfs.Options{})
	g := &gateway{c: c, Gateway: &testbed.Gateway{Bins: bins(t), WH: "wh1", GW: "dock1", Dir: dir,
		HTTP: freePort(t), Broker: "tcp://" + c.mqttAddr}}
	err := g.Start(t.Context())
	g.reportAtCleanup()
	require.NoError(t, err)
	t.Cleanup(func() { g.Agent().Stop(syscall.SIGKILL) }) // before the unmount

	agentStock := func() map[string]int64 { return stock(t, "http://"+g.HTTP, "wh1") }
	beeps, units := 0, int64(0)
	for cut := 1; cut <= 3; cut++ {
		var scans []string
		if cut == 1 {
			scans = append(scans, "CMD:RECEIVE") // the session survives restarts
		}
		for i := 0; i < 10*cut; i++ {
			scans = append(scans, "SKU:A")
		}
		g.scan(scans...)
		beeps += len(scans)
		b := g.waitBeeps(beeps)
		require.Equal(t, beeps, b["good"], "every scan confirmed: %v", b)
		units += int64(10 * cut)
		syncs := fsys.Syncs()
		g.Agent().Stop(syscall.SIGKILL) // right after the good beeps
		require.NoError(t, fsys.Crash())
		g.startAgent()
		require.Equal(t, map[string]int64{"RECEIVING/A": units}, agentStock(),
			fmt.Sprintf("after power cut %d (%d syncs before it): every confirmed scan survives", cut, syncs))
	}
	c.startServer()
	waitFor(t, 30*time.Second, "server converges", func() bool {
		return equal(stock(t, "http://"+c.httpAddr, "wh1"), map[string]int64{"RECEIVING/A": units})
	})
}
