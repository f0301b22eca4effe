package chaos

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestChaosShort is the soak in about a minute, run by `make test`: three
// gateways, every fault kind, a fixed seed (SHELFSYNC_CHAOS_SEED overrides
// it). `make chaos` runs the full one.
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test: skipped with -short")
	}
	t.Parallel() // each soak has its own server, agents, ports and directories
	seed := uint64(42)
	if s := os.Getenv("SHELFSYNC_CHAOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SHELFSYNC_CHAOS_SEED=%q: %v", s, err)
		}
		seed = v
	}
	// The soak runs until it has both 1,000 ops and 30 faults, however
	// long a slow machine takes; MaxDuration only stops a run that stalls.
	const wantOps, wantFaults = 1_000, 30
	sum := runSoak(t, Config{
		Seed: seed, Agents: 3, Warehouses: 1, Devices: 2,
		Ops: wantOps, Faults: wantFaults, FaultEvery: time.Second, ScenarioEvery: 500 * time.Millisecond,
	})
	if sum.Faults < wantFaults {
		t.Errorf("only %d faults were injected in %s", sum.Faults, sum.Duration)
	}
	if sum.Ops < wantOps {
		t.Errorf("only %d ops were committed in %s", sum.Ops, sum.Duration)
	}
	if !sum.OK() {
		t.Errorf("%s", sum.Line())
	}
}

// TestChaosServerRestores: the server is restored from its online backups
// again and again (each restore goes back to a backup taken seconds after
// the previous one, while operators keep scanning); every confirmed op
// ends applied exactly once and every provoked conflict is listed.
func TestChaosServerRestores(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test: skipped with -short")
	}
	t.Parallel()
	sum := runSoak(t, Config{
		Seed: 9, Agents: 3, Warehouses: 1, Devices: 2, Ops: 800, Faults: 4, FaultEvery: 3 * time.Second,
		FaultKinds: []string{FaultRestoreServer},
	})
	if sum.Restores < 2 {
		t.Errorf("only %d server restores were carried out (%s)", sum.Restores, sum.FaultKinds)
	}
	if !sum.OK() {
		t.Errorf("%s", sum.Line())
	}
}

// runSoak runs cfg (at most 5 minutes of workload, 90 s to heal) and logs
// its progress and report.
func runSoak(t *testing.T, cfg Config) Summary {
	t.Helper()
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 7*time.Minute)
	defer cancel()
	cfg.MaxDuration, cfg.HealTimeout, cfg.Log = 5*time.Minute, 90*time.Second, &progress
	sum, err := Run(ctx, cfg)
	if err != nil {
		t.Log(progress.String())
		t.Fatalf("chaos could not run: %v", err)
	}
	var report bytes.Buffer
	sum.Report(&report)
	t.Log("\n" + progress.String() + report.String())
	return sum
}
