package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shelfsync/shelfsync/firmware-sim/barcodesim"
)

// barcodeOpts holds the barcode subcommand's flags beyond the simulator's
// Config.
type barcodeOpts struct {
	cfg     barcodesim.Config
	script  string
	random  int
	catalog string
	rate    float64
	gap     time.Duration
	stay    bool
	verbose bool
}

// parseBarcode parses the barcode subcommand's flags.
func parseBarcode(args []string, output io.Writer) (barcodeOpts, error) {
	var o barcodeOpts
	var seed uint64
	fs := flag.NewFlagSet("barcode", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: shelfsync-sim barcode [flags] [< scans.txt]")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.cfg.Link, "link", "/tmp/shelfsync-barcode0", "path where the scanner's pty is symlinked (a stale link is replaced)")
	fs.StringVar(&o.cfg.Framing, "framing", barcodesim.FramingLine, "line (text + suffix) or ssi (Zebra SSI packets; the driver must ACK)")
	fs.StringVar(&o.cfg.AIM, "aim", "", "AIM symbology identifier prepended to every scan, e.g. ]E0 or ]C1 (default none)")
	fs.StringVar(&o.cfg.Suffix, "suffix", "CRLF", "line-mode terminator: CRLF, CR, LF, TAB or NONE")
	fs.StringVar(&o.cfg.GSMode, "gs-mode", barcodesim.GSKeep, "GS (FNC1, written <GS> or \\x1d in scripts): keep or strip")
	fs.StringVar(&o.script, "script", "", "file of scans, one per line, with # comments and @sleep D, @unplug, @replug directives (default: read stdin)")
	fs.IntVar(&o.random, "random", 0, "instead of a script, scan N random items from --catalog")
	fs.StringVar(&o.catalog, "catalog", "", "catalog for --random: one barcode per line, or CSV with the barcode first")
	fs.Float64Var(&o.rate, "rate", 2, "scans per second for --random (0: as fast as the driver takes them)")
	fs.DurationVar(&o.gap, "gap", 0, "pause between script scans")
	fs.StringVar(&o.cfg.Fault, "fault", "", "fault to inject: "+strings.Join(barcodesim.Faults, ", ")+" (default none)")
	fs.IntVar(&o.cfg.FaultEvery, "fault-every", 10, "inject the fault on every Nth scan")
	fs.Uint64Var(&seed, "seed", 1, "seed for random scans and garbage bytes")
	fs.BoolVar(&o.stay, "stay", false, "keep the scanner plugged in after the last scan, until interrupted")
	fs.BoolVar(&o.verbose, "v", false, "log debug events (faults, ACKs)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.cfg.Seed = seed
	if o.random > 0 && o.catalog == "" {
		return o, errors.New("--random needs --catalog")
	}
	if o.random > 0 && o.script != "" {
		return o, errors.New("use --script or --random, not both")
	}
	if o.rate < 0 {
		return o, errors.New("--rate must not be negative")
	}
	return o, o.cfg.Validate()
}

// runBarcode runs the simulated barcode scanner until its input ends or
// it is interrupted.
func runBarcode(args []string) error {
	o, err := parseBarcode(args, os.Stderr)
	if err != nil {
		return err
	}
	o.cfg.Logger = newLogger(o.verbose)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var catalog []string
	if o.random > 0 {
		f, err := os.Open(o.catalog)
		if err != nil {
			return err
		}
		catalog, err = barcodesim.LoadCatalog(f)
		f.Close()
		if err != nil {
			return err
		}
	}
	input := io.Reader(os.Stdin)
	if o.script != "" {
		f, err := os.Open(o.script)
		if err != nil {
			return err
		}
		defer f.Close()
		input = f
	}

	sim, err := barcodesim.New(o.cfg)
	if err != nil {
		return err
	}
	o.cfg.Logger.Info("barcode scanner ready", "link", sim.Link(), "framing", o.cfg.Framing)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for sig := range sim.Feedback() {
			fmt.Fprintf(os.Stderr, "feedback: %s\n", sig)
		}
	}()

	var n int
	if o.random > 0 {
		n, err = sim.RunRandom(ctx, catalog, o.random, o.rate)
	} else {
		n, err = sim.RunScript(ctx, input, o.gap)
	}
	o.cfg.Logger.Info("scans sent", "count", n)
	if err == nil && o.stay {
		<-ctx.Done()
	}
	closeErr := sim.Close()
	wg.Wait()
	return errors.Join(err, closeErr)
}
