package replicas

import (
	"syscall"
	"testing"
	"time"
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
			victim := c.replicas[1]
			c.scanAll(workload{Items: 300, SKUs: 5, Chunk: 5, Pace: 100 * time.Millisecond},
				event{At: 0.3, Do: func() { victim.p.kill(syscall.SIGKILL) }},
				event{At: 0.6, Do: victim.start})
			c.settle(2 * time.Minute)
			c.check()
			t.Logf("%s: %s", m, c.stats())
		})
	}
}
