// Package linemode frames the byte stream of a line-mode barcode scanner into
// scans: one scan per line, ended by CR, LF, CRLF or a configured terminator,
// with an optional prefix and suffix stripped. It does no I/O of its own
// beyond reading the io.Reader it is given, and it never grows memory past
// Config.MaxLine whatever the scanner sends.
package linemode

import (
	"errors"
	"fmt"
	"strings"
)

// DefaultMaxLine is the MaxLine used when Config.MaxLine is zero.
const DefaultMaxLine = 4096

// AutoTerminator, as Config.Terminator, ends a line at CR, LF or CRLF.
const AutoTerminator = "auto"

// maxTerminator bounds an explicit terminator's length.
const maxTerminator = 8

// ErrLineTooLong reports a line longer than Config.MaxLine. The line was
// discarded up to its terminator; the error is wrapped with the byte count.
var ErrLineTooLong = errors.New("line too long")

// Config says how a scanner ends and decorates its scans.
type Config struct {
	// Terminator ends each line: "auto" (the default when empty) accepts CR,
	// LF and CRLF (CRLF counts once); anything else is matched literally,
	// e.g. "\r\n", "\t" or "\x03".
	Terminator string
	// Prefix and Suffix are stripped from a line when present (a scanner
	// programmed to send e.g. STX … ETX before its terminator).
	Prefix, Suffix string
	// MaxLine is the longest line kept, in bytes, without the terminator.
	// Default DefaultMaxLine.
	MaxLine int
}

// EnsureDefaults returns c with zero fields set to their defaults.
func (c Config) EnsureDefaults() Config {
	if c.Terminator == "" {
		c.Terminator = AutoTerminator
	}
	if c.MaxLine == 0 {
		c.MaxLine = DefaultMaxLine
	}
	return c
}

// Validate reports a field that cannot be used, naming it.
func (c Config) Validate() error {
	c = c.EnsureDefaults()
	if c.MaxLine < 1 {
		return fmt.Errorf("linemode: MaxLine %d: must be at least 1", c.MaxLine)
	}
	if c.Terminator != AutoTerminator && len(c.Terminator) > maxTerminator {
		return fmt.Errorf("linemode: Terminator %q: at most %d bytes", c.Terminator, maxTerminator)
	}
	return nil
}

// ParseTerminator turns a suffix name as printed in scanner manuals (CRLF,
// CR, LF, TAB, ETX, AUTO) into a Config.Terminator; other text is returned
// unchanged so that literal bytes can be given too.
func ParseTerminator(name string) string {
	switch strings.ToUpper(name) {
	case "", "AUTO":
		return AutoTerminator
	case "CRLF":
		return "\r\n"
	case "CR":
		return "\r"
	case "LF":
		return "\n"
	case "TAB":
		return "\t"
	case "ETX":
		return "\x03"
	}
	return name
}

// Line is one scan.
type Line struct {
	// Text is the scan with prefix, suffix and terminator removed. Control
	// and invalid bytes are kept: validating them is the caller's job.
	Text string
	// Raw is the line as received, without its terminator. It is the
	// caller's to keep.
	Raw []byte
}
