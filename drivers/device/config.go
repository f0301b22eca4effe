// Package device runs one scanner or reader on a serial port for the
// agent: it finds the port by selector, frames what the device sends into
// Reads, answers the protocol's handshakes, sends operator feedback, and
// when the device goes away closes the port and looks for it again with
// jittered exponential backoff until its context ends.
//
// The byte-level protocol is a Framer: line mode and Zebra SSI are built
// in; RFID reader protocols plug in through Config.NewFramer.
package device

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/shelfsync/shelfsync/drivers/feedback"
	"github.com/shelfsync/shelfsync/drivers/linemode"
	"github.com/shelfsync/shelfsync/drivers/serialport"
)

// Framings built in.
const (
	FramingLine = "line" // line-mode scanners (the default)
	FramingSSI  = "ssi"  // Zebra SSI
)

// Backoff defaults.
const (
	DefaultBackoffMin = 100 * time.Millisecond
	DefaultBackoffMax = 5 * time.Second
)

// Log attribute keys.
const (
	logDevice  = "device"
	logPath    = "path"
	logErr     = "err"
	logBackoff = "backoff"
	logAttempt = "attempt"
)

// Backoff bounds the wait between reconnection attempts: it starts at Min,
// doubles per failed attempt up to Max, and is jittered down by up to half.
type Backoff struct {
	Min, Max time.Duration
}

// Config configures one device.
type Config struct {
	// Name identifies the device in Reads and logs (e.g. "dock1-scanner").
	Name string
	// Selector names the port; see serialport.ParseSelector.
	Selector string
	// Framing is FramingLine (default) or FramingSSI; ignored when
	// NewFramer is set.
	Framing string
	// Line configures line framing.
	Line linemode.Config
	// IdleFlush, for line framing, takes a partial line as a scan once no
	// byte has come for this long: for scanners programmed with no
	// terminator. 0 (the default) waits for the terminator.
	IdleFlush time.Duration
	// Feedback is the feedback kind (see feedback.Kinds). Default: "ssi"
	// for SSI framing, "none" otherwise; a Framer that implements
	// FeedbackEncoder is used when Feedback is empty.
	Feedback string
	// Baud is the serial speed; 0 means serialport.DefaultBaud.
	Baud int
	// Backoff between reconnections; zero fields take DefaultBackoffMin
	// and DefaultBackoffMax.
	Backoff Backoff
	// Logger receives connection events; nil discards them.
	Logger *slog.Logger

	// NewFramer, when set, makes the Framer for each connection instead of
	// Framing: the hook for reader protocols outside this package.
	NewFramer func() (Framer, error)
	// OpenPort opens a port; nil means serialport.Open. For tests.
	OpenPort func(path string, baud int) (serialport.Port, error)
	// Now stamps Reads; nil means time.Now.
	Now func() time.Time
	// Rand returns a number in [0, 1) to jitter the backoff; nil means
	// math/rand/v2.
	Rand func() float64
}

// EnsureDefaults returns c with zero fields set to their defaults.
func (c Config) EnsureDefaults() Config {
	if c.Framing == "" {
		c.Framing = FramingLine
	}
	if c.Feedback == "" && c.NewFramer == nil {
		c.Feedback = feedback.KindNone
		if c.Framing == FramingSSI {
			c.Feedback = feedback.KindSSI
		}
	}
	c.Line = c.Line.EnsureDefaults()
	if c.Backoff.Min <= 0 {
		c.Backoff.Min = DefaultBackoffMin
	}
	if c.Backoff.Max <= 0 {
		c.Backoff.Max = DefaultBackoffMax
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.OpenPort == nil {
		c.OpenPort = serialport.Open
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	return c
}

// Validate reports the first field that cannot be used, naming it.
func (c Config) Validate() error {
	c = c.EnsureDefaults()
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name: empty (give each device a name)"))
	}
	if _, err := serialport.ParseSelector(c.Selector); err != nil {
		errs = append(errs, fmt.Errorf("selector: %w", err))
	}
	if c.NewFramer == nil && c.Framing != FramingLine && c.Framing != FramingSSI {
		errs = append(errs, fmt.Errorf("framing %q: want %q or %q", c.Framing, FramingLine, FramingSSI))
	}
	if err := c.Line.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("line: %w", err))
	}
	if c.Feedback != "" {
		if _, err := feedback.Lookup(c.Feedback); err != nil {
			errs = append(errs, fmt.Errorf("feedback: %w", err))
		}
	}
	if c.Backoff.Min > c.Backoff.Max {
		errs = append(errs, fmt.Errorf("backoff: Min %v above Max %v", c.Backoff.Min, c.Backoff.Max))
	}
	if c.Baud < 0 {
		errs = append(errs, fmt.Errorf("baud %d: must not be negative", c.Baud))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("device %q: %w", c.Name, err)
	}
	return nil
}

// backoff returns the wait before reconnection attempt n (0-based): Min
// doubled n times, capped at Max, then jittered into [d/2, d) by r in
// [0, 1).
func (b Backoff) backoff(n int, r float64) time.Duration {
	d := b.Min
	for i := 0; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	return d/2 + time.Duration(r*float64(d/2))
}
