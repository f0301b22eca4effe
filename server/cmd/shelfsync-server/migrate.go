package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/shelfsync/shelfsync/flagconf"
	"github.com/shelfsync/shelfsync/server/internal/config"
	"github.com/shelfsync/shelfsync/server/internal/store/postgres"
)

// runMigrate brings a PostgreSQL store's schema up to date (`run` does the
// same at start unless told not to), or with --status only reports it.
func runMigrate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("shelfsync-server migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("store", "", "PostgreSQL URL of the store (postgres://user:password@host:5432/db?sslmode=require)")
	status := fs.Bool("status", false, "report the schema version and change nothing")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: shelfsync-server migrate --store postgres://… [--status]\n\n"+
			"Applies the PostgreSQL schema migrations the database lacks (safe to run\n"+
			"while replicas start: they take turns). Flags (environment SHELFSYNC_<FLAG>):\n")
		fs.PrintDefaults()
	}
	if err := flagconf.Load(fs, args, ""); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		fmt.Fprintln(stderr, "error:", err)
		return 2
	}
	sc := config.ScaleOut{Store: *dsn}
	if !sc.Postgres() {
		fmt.Fprintln(stderr, "error: --store must be a postgres:// URL (the Badger store needs no migration)")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *status {
		have, want, err := postgres.SchemaVersion(ctx, *dsn)
		if err != nil {
			fmt.Fprintln(stderr, "error:", err)
			return 1
		}
		fmt.Fprintf(stdout, "schema version %d; this shelfsync-server needs %d\n", have, want)
		if have != want {
			return 1
		}
		return 0
	}
	done, err := postgres.Migrate(ctx, *dsn)
	for _, m := range done {
		fmt.Fprintf(stdout, "applied %04d_%s\n", m.Version, m.Name)
	}
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	if len(done) == 0 {
		fmt.Fprintln(stdout, "schema already up to date")
	}
	return 0
}
