// Command shelfsync-server is the central shelfsync daemon: it consolidates
// the operations of every gateway of every warehouse into one ledger.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/shelfsync/shelfsync/flagconf"
	"github.com/shelfsync/shelfsync/server/internal/app"
	"github.com/shelfsync/shelfsync/server/internal/config"
)

var version = "dev"

const usage = `shelfsync-server — central server of shelfsync

Usage:
  shelfsync-server run [flags]        run the server (embedded MQTT broker and Badger store by default)
  shelfsync-server certs init|issue|issue-server|issue-broker [flags]
                                      private CA and certificates (see 'certs help')
  shelfsync-server tokens add --file F --name N --role viewer|operator|admin
                                      make an HTTP API bearer token (printed once)
  shelfsync-server passwd --file F --user WH/GW
                                      set a gateway's MQTT password (Mosquitto format)
  shelfsync-server migrate --store postgres://… [--status]
                                      apply the PostgreSQL schema migrations (run also does)
  shelfsync-server backup --out FILE (--url URL | --data DIR)
                                      consistent backup of the embedded store (online with --url)
  shelfsync-server restore --data DIR --from FILE
                                      put a backup back (server stopped); the state gets a new identity
  shelfsync-server config print [flags]
                                      print the effective configuration as TOML
  shelfsync-server version            print the version

Settings come from flags, then SHELFSYNC_* environment variables
(--http → SHELFSYNC_HTTP), then the TOML file given with --config.
Run 'shelfsync-server run --help' for every flag and its default.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return runServer(args[1:], stderr)
	case "certs": // certs.go
		return runCerts(args[1:], stdout, stderr)
	case "tokens":
		return runTokens(args[1:], stdout, stderr)
	case "passwd":
		return runPasswd(args[1:], os.Stdin, stdout, stderr)
	case "backup": // backup.go
		return runBackup(args[1:], stdout, stderr)
	case "restore":
		return runRestore(args[1:], stdout, stderr)
	case "migrate": // migrate.go
		return runMigrate(args[1:], stdout, stderr)
	}
	return flagconf.Shared("shelfsync-server", version, usage, args, stdout, stderr, func(fs *flag.FlagSet) { new(config.Config).Register(fs) })
}

func runServer(args []string, stderr io.Writer) int {
	var cfg config.Config
	var profile string
	register := func(fs *flag.FlagSet) { cfg.Register(fs); flagconf.RegisterCPUProfile(fs, &profile) }
	if _, code, ok := flagconf.Parse("shelfsync-server", "run", args, stderr, register); !ok {
		return code
	}
	log := flagconf.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	stopProfile, err := flagconf.StartCPUProfile(profile)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	defer stopProfile()
	if cfg.MemoryLimit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		// Without it the heap grows to twice what is live before a
		// collection: freed batches and memtables held ~half the RSS
		// under a 100-gateway ingest.
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := app.New(ctx, cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if err := srv.Run(ctx); err != nil {
		log.Error("server stopped with an error", "err", err)
		return 1
	}
	log.Info("server stopped")
	return 0
}
