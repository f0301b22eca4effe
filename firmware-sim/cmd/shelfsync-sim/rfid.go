package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/shelfsync/shelfsync/drivers/rfid"
	"github.com/shelfsync/shelfsync/firmware-sim/rfidsim"
)

// rfidOpts holds the rfid subcommand's flags beyond the simulator's
// Config.
type rfidOpts struct {
	cfg     rfidsim.Config
	tags    string
	verbose bool
}

// parseRFID parses the rfid subcommand's flags.
func parseRFID(args []string, output io.Writer) (rfidOpts, error) {
	var o rfidOpts
	var protocol string
	var address uint
	fs := flag.NewFlagSet("rfid", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: shelfsync-sim rfid --protocol uhf18|mercury [flags]")
		fmt.Fprintln(fs.Output(), "Send SIGHUP to reload --tags while running.")
		fs.PrintDefaults()
	}
	fs.StringVar(&protocol, "protocol", string(rfid.UHF18), "reader protocol: uhf18 (UHFReader18/CF-RU5102 inventory polling) or mercury (ThingMagic continuous read)")
	fs.StringVar(&o.cfg.Link, "link", "/tmp/shelfsync-rfid0", "path where the reader's pty is symlinked (a stale link is replaced)")
	fs.StringVar(&o.tags, "tags", "", "tag population file: one EPC in hex per line, optionally followed by the antenna that sees it (default: no tags)")
	fs.IntVar(&o.cfg.Antennas, "antennas", 1, "antenna ports; unpinned tags are seen by all")
	fs.Float64Var(&o.cfg.Rate, "rate", 100, "mercury: tag reads per second of the continuous read")
	fs.IntVar(&o.cfg.RSSIMin, "rssi-min", -70, "lowest RSSI reported, dBm")
	fs.IntVar(&o.cfg.RSSIMax, "rssi-max", -40, "highest RSSI reported, dBm")
	fs.Uint64Var(&o.cfg.Seed, "seed", 1, "seed for tag, antenna, RSSI and garbage choices")
	fs.StringVar(&o.cfg.Fault, "fault", "", "fault to inject: "+strings.Join(rfidsim.Faults, ", ")+" (default none)")
	fs.IntVar(&o.cfg.FaultEvery, "fault-every", 10, "inject the fault into every Nth frame")
	fs.UintVar(&address, "address", 0, "uhf18: reader address (0-254)")
	fs.BoolVar(&o.verbose, "v", false, "log debug events (commands, stream start/stop)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if address > 254 {
		return o, fmt.Errorf("--address %d: want 0 to 254", address)
	}
	o.cfg.Protocol = rfid.Protocol(protocol)
	o.cfg.Address = byte(address)
	return o, o.cfg.Validate()
}

// loadTags reads the population file; no file is no tags.
func loadTags(path string) ([]rfidsim.Tag, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tags, err := rfidsim.ParseTags(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return tags, nil
}

// runRFID runs the simulated RFID reader until interrupted; SIGHUP
// reloads the tag file.
func runRFID(args []string) error {
	o, err := parseRFID(args, os.Stderr)
	if err != nil {
		return err
	}
	log := newLogger(o.verbose)
	o.cfg.Logger = log
	tags, err := loadTags(o.tags)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	sim, err := rfidsim.New(o.cfg)
	if err != nil {
		return err
	}
	sim.SetTags(tags)
	log.Info("rfid reader ready", "link", sim.Link(), "protocol", o.cfg.Protocol, "tags", len(tags))
	for {
		select {
		case <-ctx.Done():
			st := sim.Stats()
			log.Info("rfid reader stopped", "commands", st.Commands, "frames", st.Frames, "reads", st.Reads, "faults", st.Faults)
			return sim.Close()
		case <-hup:
			tags, err := loadTags(o.tags)
			if err != nil {
				log.Error("reload tags", "err", err)
				continue
			}
			sim.SetTags(tags)
			log.Info("tags reloaded", "tags", len(tags))
		}
	}
}
