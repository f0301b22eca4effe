// Command shelfsync-sim runs simulated shelfsync devices behind ptys: a
// barcode scanner speaking line mode or Zebra SSI, and RFID readers. Each
// device is linked at a path that the agent opens as if it were a USB
// serial port.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
)

// subcommand is one simulator.
type subcommand struct {
	run     func(args []string) error
	summary string
}

var subcommands = map[string]subcommand{
	"barcode": {runBarcode, "a barcode scanner (line mode or Zebra SSI) that scans stdin, a script or random catalog items"},
	"rfid":    {runRFID, "an RFID reader (UHFReader18 or ThingMagic Mercury protocol)"},
}

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "shelfsync-sim:", err)
		os.Exit(2)
	}
}

func run(args []string, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return errors.New("missing subcommand")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stderr)
		return nil
	}
	sub, ok := subcommands[args[0]]
	if !ok {
		usage(stderr)
		return fmt.Errorf("unknown subcommand %q", args[0])
	}
	err := sub.run(args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	return nil
}

// usage prints the overview and every subcommand's flags with defaults.
func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: shelfsync-sim <subcommand> [flags]

Runs a simulated device behind a pseudo-terminal, linked at --link, for the
shelfsync agent to open as a serial port (configure the agent's device with
selector = the link path). Logs and received feedback go to stderr.

Subcommands:
`)
	names := make([]string, 0, len(subcommands))
	for name := range subcommands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-8s %s\n", name, subcommands[name].summary)
	}
	for _, name := range names {
		fmt.Fprintf(w, "\n%s flags:\n", name)
		if err := subcommands[name].run([]string{"-h"}); err != nil && !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(w, "  (%v)\n", err)
		}
	}
}

// newLogger returns the logger every subcommand uses: text on stderr, at
// debug level when verbose.
func newLogger(verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
