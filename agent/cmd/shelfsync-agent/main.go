// Command shelfsync-agent is the gateway daemon: it reads scanners, commits
// operations durably to a local store and replicates them to the server.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/shelfsync/shelfsync/agent/internal/app"
	"github.com/shelfsync/shelfsync/agent/internal/config"
	"github.com/shelfsync/shelfsync/flagconf"
)

var version = "dev"

const usage = `shelfsync-agent — gateway daemon of shelfsync

Usage:
  shelfsync-agent run [flags]           read scanners, commit ops locally, replicate to the server
  shelfsync-agent decode [--epc] [INPUT ...]
                                        show how the agent reads barcodes (or EPC hex) as JSON;
                                        no INPUT: one per stdin line; exit 1 if any is invalid
  shelfsync-agent scanners              list serial ports with USB identity, maker and a fitting driver
  shelfsync-agent labels [flags]        print the scan vocabulary's labels as Code 128 barcodes (HTML/SVG)
  shelfsync-agent config print [flags]  print the effective configuration as TOML
  shelfsync-agent version               print the version

Settings come from flags, then SHELFSYNC_* environment variables
(--warehouse → SHELFSYNC_WAREHOUSE), then the TOML file given with --config.
Run 'shelfsync-agent run --help' for every flag and its default.
`

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return runAgent(args[1:], stderr)
	case "decode":
		return runDecode(args[1:], stdin, stdout, stderr)
	case "scanners":
		return runScanners(stdout, stderr)
	case "labels":
		return runLabels(args[1:], stdout, stderr) // labels.go
	}
	return flagconf.Shared("shelfsync-agent", version, usage, args, stdout, stderr, func(fs *flag.FlagSet) { new(config.Config).Register(fs) })
}

func runAgent(args []string, stderr io.Writer) int {
	var cfg config.Config
	var profile string
	register := func(fs *flag.FlagSet) { cfg.Register(fs); flagconf.RegisterCPUProfile(fs, &profile) }
	if _, code, ok := flagconf.Parse("shelfsync-agent", "run", args, stderr, register); !ok {
		return code
	}
	log := flagconf.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	stopProfile, err := flagconf.StartCPUProfile(profile)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	defer stopProfile()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.WaitForDisk(ctx, cfg, log); err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	a, err := app.New(cfg, version, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if err := a.Run(ctx); err != nil {
		log.Error("agent stopped with an error", "err", err)
		return 1
	}
	log.Info("agent stopped")
	return 0
}
