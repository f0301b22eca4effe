package replicas

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/testbed"
)

// TestIntegrationReplicasEmbeddedBrokersFailover runs the layout of
// deploy/compose/compose.embedded.yaml and deploy/k8s/statefulset.yaml: two
// replicas sharing PostgreSQL, each with its own embedded broker (not
// clustered), and an agent given both brokers (--broker A,B). The agent
// connects to A, which applies its first scans; A is killed with SIGKILL;
// the agent reconnects to B, and every scan — the confirmed ones before the
// kill and those after — is on B's stock exactly once.
func TestIntegrationReplicasEmbeddedBrokersFailover(t *testing.T) {
	dsn := testbed.PostgresURL()
	if dsn == "" {
		if testbed.Integration() {
			t.Fatal("SHELFSYNC_TEST_PG is not set")
		}
		t.Skip("SHELFSYNC_TEST_PG is not set: run deploy/dev/services.sh, then eval \"$(deploy/dev/env.sh)\"")
	}
	bins, err := testbed.Build(t.Context())
	require.NoError(t, err)
	c := &cluster{t: t, dir: t.TempDir(), bins: bins}
	schemaDSN, drop, err := testbed.NewSchema(t.Context(), dsn, "shelfsync_embedded")
	require.NoError(t, err)
	t.Cleanup(drop)
	c.dsn = schemaDSN
	out, err := exec.Command(bins.Server, "migrate", "--store", c.dsn).CombinedOutput()
	require.NoError(t, err, "migrate: %s", out)

	var brokers []string
	for i := range 2 {
		mqtt := freePort(t)
		r := &replica{c: c, i: i, http: freePort(t)}
		r.srv = &testbed.Server{Bin: bins.Server, HTTP: r.http, Name: fmt.Sprint("server", i), Args: []string{
			"--store", c.dsn, "--mqtt", mqtt, "--data", filepath.Join(c.dir, fmt.Sprint("server", i)), "--gateway-rate", "-1"}}
		c.replicas = append(c.replicas, r)
		r.start()
		brokers = append(brokers, "tcp://"+mqtt)
	}
	a, b := c.replicas[0], c.replicas[1]
	applied := func(r *replica) float64 { return r.metric("shelfsync_ingest_batches_total", `verdict="apply"`) }

	g := &gateway{c: c, wh: "wh1", gw: "g1", Gateway: &testbed.Gateway{Bins: bins, WH: "wh1", GW: "g1",
		Dir: filepath.Join(c.dir, "wh1-g1"), HTTP: freePort(t), Broker: brokers[0] + "," + brokers[1]}}
	err = g.Start(t.Context())
	for _, p := range []*testbed.Proc{g.Sim(), g.Agent()} {
		if p != nil {
			reportAtCleanup(t, p)
		}
	}
	require.NoError(t, err)

	// Before the kill: the agent is on A (the first URL), A applies.
	require.NoError(t, g.scan("CMD:RECEIVE", "LOC:BIN-1", "SKU:W", "CMD:DONE"))
	waitFor(t, time.Minute, "the receipt acknowledged", func() bool {
		st, err := g.status()
		return err == nil && st.LastSeq > 0 && st.AckedSeq == st.LastSeq
	})
	require.Positive(t, applied(a), "A applied the receipt")
	require.Zero(t, applied(b), "B applied nothing while the agent was on A")

	a.proc().Stop(syscall.SIGKILL)

	// After: scans made while and after the agent fails over land on B.
	const n = 30
	lines := []string{"CMD:ADJUST", "LOC:NEG"}
	for i := range n {
		lines = append(lines, "QTY:-1", fmt.Sprintf("SKU:N%d", i))
	}
	lines = append(lines, "CMD:DONE")
	require.NoError(t, g.scan(lines...))
	want := map[string]int64{"BIN-1/W": 1}
	for i := range n {
		want[fmt.Sprintf("NEG/N%d", i)] = -1
	}
	eventually(t, 2*time.Minute, "every scan on B's stock, once", func() error {
		got, err := b.stock("wh1")
		if err != nil {
			return err
		}
		if d := diff(want, got); len(d) > 0 {
			return fmt.Errorf("stock disagrees with the scans: %v", d[:min(5, len(d))])
		}
		st, err := g.status()
		if err != nil {
			return err
		}
		if !st.Connected || st.AckedSeq != st.LastSeq {
			return fmt.Errorf("agent connected=%v acked %d of %d", st.Connected, st.AckedSeq, st.LastSeq)
		}
		return nil
	})
	require.Positive(t, applied(b), "B applied the batches after the kill")
}
