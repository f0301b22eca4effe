// Package barcodesim emulates a serial barcode scanner behind a pty: it
// sends scans in line mode (with AIM prefix and suffix as configured) or as
// Zebra SSI packets, decodes the feedback the driver sends back (SSI BEEP,
// Honeywell ESC 7/8, Datalogic BEL), answers the SSI handshake as a real
// scanner does (ACKs host commands, resends unacknowledged decode data) and
// injects faults: garbage, split and merged frames, bad checksums, runaway
// lines and unplugs. The shelfsync-sim command and the agent's tests both
// drive it.
package barcodesim

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Framings.
const (
	FramingLine = "line"
	FramingSSI  = "ssi"
)

// GS modes: what becomes of a GS (0x1D, FNC1) inside a scan's text.
const (
	GSKeep  = "keep"  // sent as is
	GSStrip = "strip" // removed, as scanners configured to drop FNC1 do
)

// Fault kinds.
const (
	FaultNone     = ""
	FaultGarbage  = "garbage"  // random bytes before the scan (line mode: as a junk line)
	FaultSplit    = "split"    // the frame is written in two parts, SplitGap apart
	FaultMerge    = "merge"    // the frame is held and written with the next one in one write
	FaultBadSum   = "badsum"   // SSI only: the first send has a wrong checksum
	FaultLongLine = "longline" // line only: LongLine bytes with no terminator before the scan
	FaultUnplug   = "unplug"   // the device is unplugged for UnplugFor before the scan
)

// Faults lists the fault kinds, for help text.
var Faults = []string{FaultGarbage, FaultSplit, FaultMerge, FaultBadSum, FaultLongLine, FaultUnplug}

// suffixes maps suffix names to bytes.
var suffixes = map[string]string{"CRLF": "\r\n", "CR": "\r", "LF": "\n", "TAB": "\t", "NONE": ""}

// Config configures a simulated scanner.
type Config struct {
	// Link is where the pty's slave is symlinked; required.
	Link string
	// Framing is FramingLine (default) or FramingSSI.
	Framing string
	// AIM, when set (e.g. "]E0"), is prepended to every scan.
	AIM string
	// Suffix ends each line-mode scan: CRLF (default), CR, LF, TAB or NONE.
	Suffix string
	// GSMode is GSKeep (default) or GSStrip.
	GSMode string
	// CodeType is the SSI code type sent; 0 guesses from the text (EAN-8,
	// UPC-A, EAN-13, ITF-14, GS1-128, QR for URLs, else Code 128).
	CodeType byte
	// Fault is injected on every FaultEvery-th scan (default every 1st
	// when Fault is set).
	Fault      string
	FaultEvery int
	// Seed seeds garbage bytes and random scans; 0 means 1.
	Seed uint64
	// AckTimeout is how long an SSI scanner waits for the host's ACK
	// before resending (default 200ms); Retries bounds the resends
	// (default 2).
	AckTimeout time.Duration
	Retries    int
	// SplitGap is the pause inside a split frame (default 20ms); UnplugFor
	// the length of an unplug fault (default 300ms); LongLine the bytes of
	// a longline fault (default 5000, above the driver's 4096).
	SplitGap  time.Duration
	UnplugFor time.Duration
	LongLine  int
	// Logger gets debug events; nil discards them.
	Logger *slog.Logger
}

// EnsureDefaults returns c with zero fields set to their defaults.
func (c Config) EnsureDefaults() Config {
	if c.Framing == "" {
		c.Framing = FramingLine
	}
	if c.Suffix == "" {
		c.Suffix = "CRLF"
	}
	c.Suffix = strings.ToUpper(c.Suffix)
	if c.GSMode == "" {
		c.GSMode = GSKeep
	}
	if c.Fault != FaultNone && c.FaultEvery == 0 {
		c.FaultEvery = 1
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = 200 * time.Millisecond
	}
	if c.Retries == 0 {
		c.Retries = 2
	}
	if c.SplitGap == 0 {
		c.SplitGap = 20 * time.Millisecond
	}
	if c.UnplugFor == 0 {
		c.UnplugFor = 300 * time.Millisecond
	}
	if c.LongLine == 0 {
		c.LongLine = 5000
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the fields that cannot be used, naming them.
func (c Config) Validate() error {
	c = c.EnsureDefaults()
	var errs []error
	if c.Link == "" {
		errs = append(errs, errors.New("link: empty (where should the pty be linked?)"))
	}
	if c.Framing != FramingLine && c.Framing != FramingSSI {
		errs = append(errs, fmt.Errorf("framing %q: want line or ssi", c.Framing))
	}
	if _, ok := suffixes[c.Suffix]; !ok {
		errs = append(errs, fmt.Errorf("suffix %q: want CRLF, CR, LF, TAB or NONE", c.Suffix))
	}
	if c.GSMode != GSKeep && c.GSMode != GSStrip {
		errs = append(errs, fmt.Errorf("gsmode %q: want keep or strip", c.GSMode))
	}
	switch c.Fault {
	case FaultNone, FaultGarbage, FaultSplit, FaultMerge, FaultUnplug:
	case FaultBadSum:
		if c.Framing != FramingSSI {
			errs = append(errs, errors.New("fault badsum: needs ssi framing (line mode has no checksum)"))
		}
	case FaultLongLine:
		if c.Framing != FramingLine {
			errs = append(errs, errors.New("fault longline: needs line framing"))
		}
	default:
		errs = append(errs, fmt.Errorf("fault %q: want one of %s", c.Fault, strings.Join(Faults, ", ")))
	}
	if c.FaultEvery < 0 {
		errs = append(errs, fmt.Errorf("faultevery %d: must be positive", c.FaultEvery))
	}
	if c.Retries < 0 || c.LongLine < 0 || c.AckTimeout < 0 || c.SplitGap < 0 || c.UnplugFor < 0 {
		errs = append(errs, errors.New("retries, longline, ack-timeout, split-gap, unplug-for: must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("barcodesim: %w", err)
	}
	return nil
}

// ParseText turns a script line into scan text: "<GS>" and "\x1d" (any
// case) stand for the GS character that GS1 barcodes use as FNC1.
func ParseText(line string) string {
	r := strings.NewReplacer("<GS>", "\x1d", "<gs>", "\x1d", `\x1d`, "\x1d", `\x1D`, "\x1d")
	return r.Replace(line)
}
