package replicas

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestIntegrationReplicasKill9 runs three replicas on one PostgreSQL and
// one Mosquitto with four gateways scanning; one replica is killed with
// kill -9 mid-stream and restarted. Afterwards every replica serves the
// ledger of the confirmed scans, each op is stored once, and each provoked
// conflict exists once.
func TestIntegrationReplicasKill9(t *testing.T) {
	for _, m := range []mode{modeShared, modeLeases} {
		t.Run(string(m), func(t *testing.T) {
			c := newCluster(t, 3, m)
			for _, id := range [][2]string{{"wh1", "dock1"}, {"wh1", "dock2"}, {"wh2", "dock1"}, {"wh2", "pick1"}} {
				c.addGateway(id[0], id[1])
			}
			var victim *replica
			kill := func() { // the replica that applied the most so far, mid-stream
				best := -1.0
				for _, r := range c.replicas {
					if n := r.metric("shelfsync_ingest_batches_total", `verdict="apply"`); n > best {
						victim, best = r, n
					}
				}
				require.Positive(t, best, "no replica applied anything yet")
				t.Logf("kill -9 replica %d after it applied %.0f batches", victim.i, best)
				victim.proc().Stop(syscall.SIGKILL)
			}
			c.scanAll(workload{Items: 300, SKUs: 5, Chunk: 5, Pace: 100 * time.Millisecond},
				event{At: 0.3, Do: kill},
				event{At: 0.6, Do: func() { victim.start() }})
			c.settle(2 * time.Minute)
			c.check()
			t.Logf("%s: %s", m, c.stats())
		})
	}
}

// TestIntegrationReplicasDivideWarehouses runs three replicas in the
// default mode (warehouse partition) with two warehouses of two gateways
// each: each warehouse is held by one replica, which applies all of its
// gateways' batches; no batch is applied by two replicas or arrives out of
// order at one (no duplicate or gap verdict anywhere), and the replicas
// that hold no warehouse apply nothing.
func TestIntegrationReplicasDivideWarehouses(t *testing.T) {
	c := newCluster(t, 3, modeLeases)
	for _, id := range [][2]string{{"wh1", "dock1"}, {"wh1", "dock2"}, {"wh2", "dock1"}, {"wh2", "pick1"}} {
		c.addGateway(id[0], id[1])
	}
	c.scanAll(workload{Items: 120, SKUs: 5, Chunk: 5, Pace: 50 * time.Millisecond})
	c.settle(2 * time.Minute)
	c.check()
	held, appliers := 0.0, 0
	for _, r := range c.replicas {
		n := r.metric("shelfsync_replica_warehouses", "")
		applied := r.metric("shelfsync_ingest_batches_total", `verdict="apply"`)
		require.Zero(t, r.metric("shelfsync_ingest_batches_total", `verdict="duplicate"`), "replica %d repeated work", r.i)
		require.Zero(t, r.metric("shelfsync_ingest_batches_total", `verdict="gap"`), "replica %d saw a gateway's batches out of order", r.i)
		if n == 0 {
			require.Zero(t, applied, "replica %d holds no warehouse but applied batches", r.i)
		} else {
			appliers++
		}
		held += n
		t.Logf("replica %d: %.0f warehouses, %.0f batches applied, %.0f messages left to the others", r.i, n, applied,
			r.metric("shelfsync_ingest_rejected_total", `reason="other_replica"`))
	}
	require.Equal(t, 2.0, held, "each of the 2 warehouses held by exactly one replica")
	require.GreaterOrEqual(t, appliers, 1)
	t.Logf("%s", c.stats())
}
