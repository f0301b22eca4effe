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
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/shelfsync/shelfsync/firmware-sim/chaos"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	var cfg chaos.Config
	var quiet bool
	fs := flag.NewFlagSet("shelfsync-chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: shelfsync-chaos [flags]   (run from inside the repository; it builds the binaries)")
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
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if !quiet {
		cfg.Log = stderr
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
