// Command shelfsync-chaos runs shelfsync's soak test under faults: real
// server and agent binaries, simulated scanners and operators, a fault
// proxy between agents and broker, kill -9 of agents and server, broker
// restarts; then it checks that nothing confirmed was lost and nothing was
// applied twice. It ends with one line
//
//	chaos: seed=S agents=N ops=N faults=N lost=N duplicated=N
//
// and exits 1 when lost or duplicated is not 0 or another check failed.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/shelfsync/shelfsync/firmware-sim/chaos"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "latency" {
		return latency(args[1:], stdout, stderr)
	}
	var cfg chaos.Config
	var quiet bool
	fs := flag.NewFlagSet("shelfsync-chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: shelfsync-chaos [flags]          the soak (run from inside the repository; it builds the binaries)")
		fmt.Fprintln(stderr, "       shelfsync-chaos latency [flags]  scan→durable and scan→server latency, as JSON lines")
		fs.PrintDefaults()
	}
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the workload and the fault schedule")
	fs.IntVar(&cfg.Agents, "agents", 10, "gateways (agent processes)")
	fs.IntVar(&cfg.Warehouses, "warehouses", 2, "warehouses the gateways are spread over")
	fs.IntVar(&cfg.Devices, "devices", 2, "workload scanners per gateway (plus one for conflict scenarios)")
	fs.IntVar(&cfg.Ops, "ops", 100_000, "run until at least this many ops were scanned …")
	fs.IntVar(&cfg.Faults, "faults", 100, "… and at least this many faults injected")
	fs.DurationVar(&cfg.MaxDuration, "max-duration", 30*time.Minute, "stop the workload after this long regardless")
	fs.DurationVar(&cfg.FaultEvery, "fault-every", 700*time.Millisecond, "mean gap between faults")
	fs.DurationVar(&cfg.ScenarioEvery, "scenario-every", time.Second, "gap between conflict scenarios")
	fs.DurationVar(&cfg.HealTimeout, "heal-timeout", 5*time.Minute, "how long to wait for convergence after healing")
	fs.StringVar(&cfg.Root, "root", "", "repository root (default: found from the working directory)")
	fs.StringVar(&cfg.WorkDir, "dir", "", "data and log directory (default: a temporary one, removed after a clean run)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the data and log directory")
	fs.BoolVar(&quiet, "q", false, "no progress lines")
	agentArgs := fs.String("agent-args", "--acl-backoff 2s", "extra shelfsync-agent run flags, space-separated (the default keeps the agent's ACL-loop guard from pausing healthy gateways for 5 min under injected resets)")
	kinds := fs.String("fault-kinds", "", "only these fault kinds, comma-separated (partition, stall, latency, slow, reset, kill-agent, kill-server, broker-restart, restore-server, disk-full, clock-jump; default all)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if !quiet {
		cfg.Log = stderr
	}
	cfg.AgentArgs = strings.Fields(*agentArgs)
	if *kinds != "" {
		cfg.FaultKinds = strings.Split(*kinds, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := chaos.Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "chaos: cannot run:", err)
		if sum.WorkDir != "" {
			fmt.Fprintln(stderr, "chaos: data and logs kept in", sum.WorkDir)
		}
		return 2
	}
	sum.Report(stdout)
	if !sum.OK() {
		return 1
	}
	return 0
}

// latency prints the scan-latency benchmark figures as JSON lines.
func latency(args []string, stdout, stderr io.Writer) int {
	var cfg chaos.LatencyConfig
	var out string
	fs := flag.NewFlagSet("shelfsync-chaos latency", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.Scans, "scans", 1000, "scans to time")
	fs.DurationVar(&cfg.Gap, "gap", 10*time.Millisecond, "pause between scans")
	fs.StringVar(&cfg.Root, "root", "", "repository root (default: found from the working directory)")
	fs.StringVar(&out, "out", "", "also append the JSON lines to this file")
	fs.BoolVar(&cfg.Offline, "offline", false, "diagnostic: no server (scan→durable without replication; scan→server figures are then meaningless)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	cfg.Log = func(format string, a ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", a...) }
	rs, err := chaos.Latency(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(stderr, "bench: latency:", err)
		return 1
	}
	w := stdout
	if out != "" {
		f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(stderr, "bench:", err)
			return 1
		}
		defer f.Close()
		w = io.MultiWriter(stdout, f)
	}
	for _, r := range rs {
		b, _ := json.Marshal(r)
		fmt.Fprintln(w, string(b))
	}
	return 0
}
