// Command shelfsync-agent is the gateway daemon: it reads scanners, commits
// operations durably to a local store and replicates them to the server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
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
	case "config":
		return flagconf.PrintCommand("shelfsync-agent", args[1:], stdout, stderr, func(fs *flag.FlagSet) { new(config.Config).Register(fs) })
	case "version", "--version":
		fmt.Fprintln(stdout, version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
	return 2
}

func newFlagSet(name string, cfg *config.Config, stderr io.Writer) *flag.FlagSet {
	return flagconf.NewFlagSet("shelfsync-agent", name, stderr, cfg.Register)
}

func runAgent(args []string, stderr io.Writer) int {
	var cfg config.Config
	fs := newFlagSet("run", &cfg, stderr)
	if err := flagconf.Load(fs, args, "config"); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "error:", err)
		return 2
	}
	log := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	a, err := app.New(cfg, version, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := a.Run(ctx); err != nil {
		log.Error("agent stopped with an error", "err", err)
		return 1
	}
	log.Info("agent stopped")
	return 0
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
