package chaos

import (
	"context"
	"fmt"
	"github.com/shelfsync/shelfsync/testbed"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/shelfsync/shelfsync/drivers/feedback"
)

// BenchResult is one benchmark figure, as bench/results.jsonl holds them.
type BenchResult struct {
	Name          string  `json:"name"`
	Value         float64 `json:"value"`
	Unit          string  `json:"unit"`
	Baseline      string  `json:"baseline"`
	BaselineValue float64 `json:"baseline_value"`
	Ratio         float64 `json:"ratio"`
}

func benchResult(name string, v float64, unit, baseline string, bv float64) BenchResult {
	r := BenchResult{Name: name, Value: round4(v), Unit: unit, Baseline: baseline, BaselineValue: round4(bv)}
	if bv != 0 {
		r.Ratio = round4(v / bv)
	}
	return r
}

func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }

// LatencyConfig is one latency measurement.
type LatencyConfig struct {
	Scans int           // default 1000
	Gap   time.Duration // pause between scans (default 10 ms)
	Root  string
	Bin   *testbed.Bins
	Log   func(format string, args ...any)
	// Offline points the agent at a port nobody listens on: scan→durable
	// without replication traffic in the same store (a diagnostic).
	Offline bool
}

// Latency measures, with the real binaries on loopback and one simulated
// scanner behind a pty, the time from a scan leaving the scanner to
//
//   - its good beep, which the agent sends only after the op is durable
//     (scan_to_durable_p50_ms, scan_to_durable_p99_ms; baseline: a raw
//     100-byte write + fsync in the same directory), and
//   - the server's stock API showing it (scan_to_server_p50_ms,
//     scan_to_server_p99_ms; baseline: scan_to_durable at the same
//     percentile).
func Latency(ctx context.Context, cfg LatencyConfig) ([]BenchResult, error) {
	if cfg.Scans <= 0 {
		cfg.Scans = 1000
	}
	if cfg.Gap <= 0 {
		cfg.Gap = 10 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = func(string, ...any) {}
	}
	work, err := os.MkdirTemp("", "shelfsync-bench-latency-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	if err := mkdirs(filepath.Join(work, "logs")); err != nil {
		return nil, err
	}
	bin := cfg.Bin
	if bin == nil {
		b, err := testbed.BuildAt(ctx, cfg.Root)
		if err != nil {
			return nil, err
		}
		bin = &b
	}
	addrs, err := testbed.FreeAddrs(2)
	if err != nil {
		return nil, err
	}
	httpAddr, mqttAddr := addrs[0], addrs[1]
	srvProc, err := testbed.Start(testbed.Spec{Name: "server", LogFile: filepath.Join(work, "logs", "server.log"), Bin: bin.Server, Args: []string{"run",
		"--data", filepath.Join(work, "server"), "--http", httpAddr, "--mqtt", mqttAddr, "--log-level", "warn"}})
	if err != nil {
		return nil, err
	}
	defer srvProc.Stop(15)
	if err := testbed.WaitFor(ctx, 60*time.Second, "server healthy", func() bool {
		var v map[string]any
		err := testbed.GetJSON(ctx, "http://"+httpAddr+"/healthz", &v)
		return err == nil
	}); err != nil {
		return nil, err
	}
	a := &agent{wh: "wh1", gw: "lat1", bin: bin.Agent, dir: filepath.Join(work, "lat1"), logPath: filepath.Join(work, "logs", "lat1.log"),
		broker: mqttAddr, devs: []string{"s0"}, gate: newGate()}
	if cfg.Offline {
		if a.broker, err = testbed.FreeAddr(); err != nil {
			return nil, err
		}
	}
	if a.httpAddr, err = testbed.FreeAddr(); err != nil {
		return nil, err
	}
	if err := mkdirs(a.dir); err != nil {
		return nil, err
	}
	if err := a.openSims(7); err != nil {
		return nil, err
	}
	defer a.closeSims()
	a.mu.Lock()
	err = a.startLocked(ctx)
	a.mu.Unlock()
	defer func() { a.p.Stop(15) }()
	if err != nil {
		return nil, err
	}
	if err := testbed.WaitFor(ctx, 30*time.Second, "agent connected", func() bool { st, err := a.status(ctx); return err == nil && (st.Connected || cfg.Offline) }); err != nil {
		return nil, err
	}
	sim := a.sims["s0"]
	beep := func(text string) (time.Duration, error) {
		t0 := time.Now()
		if err := sim.Scan(text); err != nil {
			return 0, err
		}
		select {
		case sig := <-sim.Feedback():
			if sig != feedback.Good {
				return 0, fmt.Errorf("scan %q: %s beep", text, sig)
			}
			return time.Since(t0), nil
		case <-time.After(10 * time.Second):
			return 0, fmt.Errorf("scan %q: no beep", text)
		}
	}
	for _, s := range []string{"CMD:RECEIVE", "LOC:LAT"} {
		if _, err := beep(s); err != nil {
			return nil, err
		}
	}
	url := "http://" + httpAddr + "/api/v1/stock?warehouse=wh1&location=LAT&sku=LAT-1"
	var durable, visible []time.Duration
	for i := 1; i <= cfg.Scans && ctx.Err() == nil; i++ {
		t0 := time.Now()
		d, err := beep("SKU:LAT-1")
		if err != nil {
			return nil, err
		}
		durable = append(durable, d)
		if cfg.Offline {
			visible = append(visible, d)
			sleep(ctx, cfg.Gap)
			continue
		}
		deadline := t0.Add(30 * time.Second)
		for {
			var body struct {
				Items []stockRow `json:"items"`
			}
			if err := testbed.GetJSON(ctx, url, &body); err == nil && len(body.Items) == 1 && body.Items[0].OnHand >= int64(i) {
				visible = append(visible, time.Since(t0))
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("scan %d not on the server after 30 s", i)
			}
			time.Sleep(200 * time.Microsecond)
		}
		sleep(ctx, cfg.Gap)
	}
	fsync, err := fsyncLatencies(work, cfg.Scans)
	if err != nil {
		return nil, err
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	d50, d99 := pct(durable, 50), pct(durable, 99)
	v50, v99 := pct(visible, 50), pct(visible, 99)
	f50, f99 := pct(fsync, 50), pct(fsync, 99)
	cfg.Log("latency over %d scans: scan→durable p50 %.2f p99 %.2f ms; scan→server p50 %.2f p99 %.2f ms; write+fsync p50 %.3f p99 %.3f ms",
		len(durable), ms(d50), ms(d99), ms(v50), ms(v99), ms(f50), ms(f99))
	return []BenchResult{
		benchResult("scan_to_durable_p50_ms", ms(d50), "ms", "raw 100-byte write + fsync, p50", ms(f50)),
		benchResult("scan_to_durable_p99_ms", ms(d99), "ms", "raw 100-byte write + fsync, p99", ms(f99)),
		benchResult("scan_to_server_p50_ms", ms(v50), "ms", "scan_to_durable_p50_ms (durable at the gateway)", ms(d50)),
		benchResult("scan_to_server_p99_ms", ms(v99), "ms", "scan_to_durable_p99_ms (durable at the gateway)", ms(d99)),
	}, nil
}

// pct returns the p-th percentile (nearest rank).
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// fsyncLatencies times n appends of 100 bytes, each followed by fsync.
func fsyncLatencies(dir string, n int) ([]time.Duration, error) {
	f, err := os.Create(filepath.Join(dir, "fsync.bin"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 100)
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if _, err := f.Write(buf); err != nil {
			return nil, err
		}
		if err := f.Sync(); err != nil {
			return nil, err
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}
