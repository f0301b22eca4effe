package replicas

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestIntegrationReplicasMeasure measures what splitting gateways across
// replicas costs in gaps, resends and repeated downstream items:
//
//   - steady: six gateways scan at about 60 scans/s each while the
//     replicas run (well under what one replica applies);
//   - backlog: the same gateways scan 1,500 ops each while no replica
//     runs, then the replicas start and the agents flush their outboxes
//     (256-op batches back to back).
//
// It logs one line per mode and scenario, and with SHELFSYNC_MEASURE_OUT
// appends them as JSON lines to that file. Every run also checks the
// invariants, like the kill -9 test.
func TestIntegrationReplicasMeasure(t *testing.T) {
	var mu sync.Mutex
	var results []map[string]any
	for _, tc := range []struct {
		mode     mode
		replicas int
	}{{modeShared, 1}, {modeShared, 3}, {modeLeases, 3}} {
		for _, scenario := range []string{"steady", "backlog"} {
			if only := os.Getenv("SHELFSYNC_MEASURE_ONLY"); only != "" && only != fmt.Sprintf("%s-%d/%s", tc.mode, tc.replicas, scenario) {
				continue
			}
			name := fmt.Sprintf("%s-%d/%s", tc.mode, tc.replicas, scenario)
			t.Run(name, func(t *testing.T) {
				c := newCluster(t, tc.replicas, tc.mode)
				for i := range 6 {
					c.addGateway(fmt.Sprint("wh", i%2+1), fmt.Sprint("gw", i))
				}
				var before stats
				start := time.Now()
				switch scenario {
				case "steady":
					c.scanAll(workload{Items: 600, SKUs: 20, Chunk: 3, Pace: 50 * time.Millisecond})
				case "backlog":
					for _, r := range c.replicas {
						r.proc().Stop(syscall.SIGTERM)
					}
					c.scanAll(workload{Items: 1500, SKUs: 20, Chunk: 50, Pace: 5 * time.Millisecond})
					for _, g := range c.gateways {
						want := g.scannedCount()
						waitFor(t, time.Minute, "scans committed", func() bool { b := g.beeps(); return b["good"] >= want })
					}
					before = c.stats()
					c.obs.reset()
					start = time.Now()
					var wg sync.WaitGroup
					for _, r := range c.replicas {
						wg.Add(1)
						go func() { defer wg.Done(); r.start() }()
					}
					wg.Wait()
				}
				c.settle(3 * time.Minute)
				took := time.Since(start)
				c.check()
				s := c.stats().sub(before)
				t.Logf("%s: %s; drained in %s", name, s, took.Round(10*time.Millisecond))
				mu.Lock()
				results = append(results, map[string]any{"name": name, "mode": string(tc.mode), "replicas": tc.replicas, "scenario": scenario,
					"ops": s.Ops, "batches_sent": s.Batches, "resends": s.Resends, "verdict_apply": s.Apply, "verdict_gap": s.Gap,
					"verdict_duplicate": s.Duplicate, "down_items": s.DownItems, "down_repeats": s.DownRepeats, "seconds": took.Seconds()})
				mu.Unlock()
			})
		}
	}
	if out := os.Getenv("SHELFSYNC_MEASURE_OUT"); out != "" {
		f, err := os.OpenFile(out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err == nil {
			for _, r := range results {
				b, _ := json.Marshal(r)
				fmt.Fprintf(f, "%s\n", b)
			}
			f.Close()
		}
	}
}
