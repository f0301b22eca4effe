package replicas

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/testbed"
)

// TestIntegrationReplicasClusteredBrokersKill runs the layout of
// deploy/k8s/statefulset.yaml: three replicas sharing PostgreSQL, each
// embedding a broker node, the three nodes one NATS cluster (routes,
// clustered JetStream, the MQTT streams on all three), and no other
// broker. Four gateways over three warehouses each know all three brokers
// (--broker A,B,C, each starting with a different one).
//
// Before the kill, the replicas divide the work: every warehouse is held
// by one replica, and no replica is handed a message of a warehouse it
// does not hold (it would drop it: work repeated or lost). Then, while
// every gateway scans, the replica holding the most warehouses is killed
// with SIGKILL: the gateways connected to it reconnect to the others, its
// warehouses move to the survivors, and every scan — confirmed before the
// kill or made after — is on the survivors' stock exactly once. The
// victim then restarts and rejoins; later scans land once more.
func TestIntegrationReplicasClusteredBrokersKill(t *testing.T) {
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
	schemaDSN, drop, err := testbed.NewSchema(t.Context(), dsn, "shelfsync_clustered")
	require.NoError(t, err)
	t.Cleanup(drop)
	c.dsn = schemaDSN
	out, err := exec.Command(bins.Server, "migrate", "--store", c.dsn).CombinedOutput()
	require.NoError(t, err, "migrate: %s", out)

	const n = 3
	var brokers, routes []string
	for range n {
		brokers = append(brokers, "tcp://"+freePort(t))
		routes = append(routes, freePort(t))
	}
	for i := range n {
		r := &replica{c: c, i: i, http: freePort(t)}
		r.srv = &testbed.Server{Bin: bins.Server, HTTP: r.http, Name: fmt.Sprint("server", i), Args: []string{
			"--store", c.dsn, "--mqtt", strings.TrimPrefix(brokers[i], "tcp://"), "--data", filepath.Join(c.dir, fmt.Sprint("server", i)),
			"--cluster-listen", routes[i], "--cluster-routes", strings.Join(routes, ","), "--cluster-node", fmt.Sprint("node", i),
			"--lease-ttl", "3s", "--gateway-rate", "-1"}}
		c.replicas = append(c.replicas, r)
	}
	// A node waits at start for a quorum of the others: start them at once.
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, r := range c.replicas {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = r.srv.Start(t.Context()) }()
	}
	wg.Wait()
	for i, r := range c.replicas {
		if p := r.proc(); p != nil {
			reportAtCleanup(t, p)
		}
		require.NoError(t, errs[i], "replica %d", i)
	}

	// Gateway k tries broker k%3 first, then the others in turn.
	type gwSpec struct{ wh, gw string }
	specs := []gwSpec{{"wh1", "g1"}, {"wh2", "g1"}, {"wh3", "g1"}, {"wh1", "g2"}}
	var gws []*gateway
	for k, s := range specs {
		var list []string
		for j := range n {
			list = append(list, brokers[(k+j)%n])
		}
		g := &gateway{c: c, wh: s.wh, gw: s.gw, Gateway: &testbed.Gateway{Bins: bins, WH: s.wh, GW: s.gw,
			Dir: filepath.Join(c.dir, s.wh+"-"+s.gw), HTTP: freePort(t), Broker: strings.Join(list, ",")}}
		err := g.Start(t.Context())
		for _, p := range []*testbed.Proc{g.Sim(), g.Agent()} {
			if p != nil {
				reportAtCleanup(t, p)
			}
		}
		require.NoError(t, err)
		gws = append(gws, g)
	}
	acked := func(g *gateway) error {
		st, err := g.status()
		if err != nil {
			return err
		}
		if !st.Connected || st.LastSeq == 0 || st.AckedSeq != st.LastSeq {
			return fmt.Errorf("%s/%s: connected=%v acked %d of %d", g.wh, g.gw, st.Connected, st.AckedSeq, st.LastSeq)
		}
		return nil
	}

	// Before the kill: a receipt from every gateway, confirmed.
	want := map[string]map[string]int64{"wh1": {}, "wh2": {}, "wh3": {}}
	// landedOnce: every scan in want is on each of rs's stock exactly
	// once, and every gateway is connected with everything acknowledged.
	landedOnce := func(rs []*replica) error {
		for _, r := range rs {
			for wh, w := range want {
				got, err := r.stock(wh)
				if err != nil {
					return err
				}
				if d := diff(w, got); len(d) > 0 {
					return fmt.Errorf("replica %d, %s: stock disagrees with the scans: %v", r.i, wh, d[:min(5, len(d))])
				}
			}
		}
		for _, g := range gws {
			if err := acked(g); err != nil {
				return err
			}
		}
		return nil
	}
	for _, g := range gws {
		require.NoError(t, g.scan("CMD:RECEIVE", "LOC:BIN-"+g.gw, "SKU:W", "CMD:DONE"))
		want[g.wh]["BIN-"+g.gw+"/W"]++
	}
	eventually(t, 2*time.Minute, "every receipt confirmed", func() error {
		for _, g := range gws {
			if err := acked(g); err != nil {
				return err
			}
		}
		return nil
	})
	held := func(r *replica) float64 { return r.metric("shelfsync_replica_warehouses", "") }
	var total float64
	for _, r := range c.replicas {
		total += held(r)
		require.Zero(t, r.metric("shelfsync_ingest_rejected_total", `reason="other_replica"`),
			"replica %d was handed messages of a warehouse another replica holds", r.i)
	}
	require.Equal(t, 3.0, total, "each of the 3 warehouses held by one replica")

	victim := c.replicas[0]
	for _, r := range c.replicas {
		if held(r) > held(victim) {
			victim = r
		}
	}
	require.Positive(t, held(victim), "the victim holds a warehouse")
	var onVictim []*gateway // gateways that connected to the victim's broker first
	for k, g := range gws {
		if k%n == victim.i {
			onVictim = append(onVictim, g)
		}
	}
	require.NotEmpty(t, onVictim)

	// While every gateway scans, kill the victim.
	const per = 40
	scanned := make([]int, len(gws))
	var mu sync.Mutex
	done := make(chan error, len(gws))
	for k, g := range gws {
		lines := []string{"CMD:ADJUST", "LOC:NEG-" + g.gw}
		for i := range per {
			lines = append(lines, "QTY:-1", fmt.Sprintf("SKU:N%d", i))
			want[g.wh][fmt.Sprintf("NEG-%s/N%d", g.gw, i)]--
		}
		lines = append(lines, "CMD:DONE")
		go func() {
			for i := 0; i < len(lines); i += 4 {
				if err := g.scan(lines[i:min(i+4, len(lines))]...); err != nil {
					done <- err
					return
				}
				mu.Lock()
				scanned[k] = i + 4
				mu.Unlock()
				time.Sleep(30 * time.Millisecond) // the operator's pace, not a wait
			}
			done <- nil
		}()
	}
	waitFor(t, time.Minute, "a quarter of every gateway's scans", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range scanned {
			if s < (2*per+3)/4 {
				return false
			}
		}
		return true
	})
	confirmed := 0
	for _, g := range gws {
		if st, err := g.status(); err == nil {
			confirmed += int(st.AckedSeq)
		}
	}
	victimHeld := held(victim)
	victim.proc().Stop(syscall.SIGKILL)
	killedAt := time.Now()
	for range gws {
		require.NoError(t, <-done)
	}

	var survivors []*replica
	for _, r := range c.replicas {
		if r != victim {
			survivors = append(survivors, r)
		}
	}
	took := eventually(t, 3*time.Minute, "every scan on the survivors' stock exactly once, every gateway connected and confirmed", func() error {
		return landedOnce(survivors)
	})
	total = 0
	for _, r := range survivors {
		total += held(r)
	}
	require.Equal(t, 3.0, total, "the survivors hold every warehouse, the victim's included")
	t.Logf("killed replica %d (held %v warehouses, %d gateways connected to it first) with %d ops confirmed; the %d gateways reconnected and every scan landed once, %s after the kill (%s after the scans ended)",
		victim.i, victimHeld, len(onVictim), confirmed, len(gws), time.Since(killedAt).Round(100*time.Millisecond), took.Round(100*time.Millisecond))

	// The victim comes back on its data directory and rejoins the cluster
	// (the streams are caught up from the others); the next scans of every
	// gateway land once more, on every replica's stock.
	require.NoError(t, victim.srv.Start(t.Context()), "the victim rejoins")
	reportAtCleanup(t, victim.proc())
	for _, g := range gws {
		require.NoError(t, g.scan("CMD:RECEIVE", "LOC:BIN-"+g.gw, "SKU:W", "CMD:DONE"))
		want[g.wh]["BIN-"+g.gw+"/W"]++
	}
	eventually(t, 3*time.Minute, "the scans after the rejoin on every replica's stock, once", func() error {
		return landedOnce(c.replicas)
	})
	total = 0
	for _, r := range c.replicas {
		total += held(r)
		require.Zero(t, r.metric("shelfsync_ingest_rejected_total", `reason="other_replica"`),
			"replica %d was handed messages of a warehouse another replica holds", r.i)
	}
	require.Equal(t, 3.0, total, "each warehouse held by one replica after the rejoin")
}
