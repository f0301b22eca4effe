// Package rfidsim emulates a serial UHF RFID reader behind a pty: a
// UHFReader18 / CF-RU5102 answering inventory polls with the visible tag
// population, or a ThingMagic Mercury module answering get-version and
// setup commands and streaming continuous-read tag records. The tag
// population (EPC, optionally pinned to one antenna) can be changed at
// run time with SetTags, and faults — line garbage, frames with a bad
// CRC — are injected on request. The shelfsync-sim command and the
// drivers' and agent's tests drive it; frames are built with the
// drivers/rfid codecs, whose framing is the thing under test.
package rfidsim

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/shelfsync/shelfsync/drivers/rfid"
)

// Fault kinds.
const (
	FaultNone    = ""
	FaultGarbage = "garbage" // random bytes before a frame
	FaultBadCRC  = "badcrc"  // a frame is sent with a corrupted CRC (and so lost)
)

// Faults lists the fault kinds, for help text.
var Faults = []string{FaultGarbage, FaultBadCRC}

// Tag is one tag of the population.
type Tag struct {
	EPC     []byte
	Antenna int // 0: seen by every antenna; n: only by antenna n
}

// Config configures a simulated reader. Zero fields take the documented
// defaults (EnsureDefaults).
type Config struct {
	// Link is where the pty's slave is symlinked; required.
	Link string
	// Protocol is rfid.UHF18 or rfid.Mercury; required.
	Protocol rfid.Protocol
	// Address is the UHFReader18 reader address (default 0x00); commands
	// to another address (other than broadcast 0xFF) are ignored.
	Address byte
	// Antennas is the number of antenna ports (default 1, at most 15).
	Antennas int
	// Rate is the Mercury continuous-read rate in tag reads per second
	// (default 100).
	Rate float64
	// RSSIMin and RSSIMax bound the reported RSSI in dBm (default -70, -40).
	RSSIMin, RSSIMax int
	// Seed seeds the random choices (tags, RSSI, garbage); default 1.
	Seed uint64
	// Fault is FaultNone (default), FaultGarbage or FaultBadCRC, applied to
	// every FaultEvery-th frame sent (default 10).
	Fault      string
	FaultEvery int
	// Logger receives events (default: discard).
	Logger *slog.Logger
}

// Validate reports a configuration error naming the field.
func (c Config) Validate() error {
	switch {
	case c.Link == "":
		return errors.New("rfidsim: Config.Link is required")
	case c.Protocol != rfid.UHF18 && c.Protocol != rfid.Mercury:
		return fmt.Errorf("rfidsim: Config.Protocol %q: want %q or %q", c.Protocol, rfid.UHF18, rfid.Mercury)
	case c.Antennas < 0 || c.Antennas > 15:
		return fmt.Errorf("rfidsim: Config.Antennas %d: want 1 to 15", c.Antennas)
	case c.Rate < 0:
		return fmt.Errorf("rfidsim: Config.Rate %v must not be negative", c.Rate)
	case c.RSSIMin < -128 || c.RSSIMax > 127 || (c.RSSIMin != 0 || c.RSSIMax != 0) && c.RSSIMin > c.RSSIMax:
		return fmt.Errorf("rfidsim: Config.RSSIMin %d and RSSIMax %d: want -128 ≤ min ≤ max ≤ 127", c.RSSIMin, c.RSSIMax)
	case c.Fault != FaultNone && c.Fault != FaultGarbage && c.Fault != FaultBadCRC:
		return fmt.Errorf("rfidsim: Config.Fault %q: want one of %s", c.Fault, strings.Join(Faults, ", "))
	case c.FaultEvery < 0:
		return fmt.Errorf("rfidsim: Config.FaultEvery %d must not be negative", c.FaultEvery)
	}
	return nil
}

// EnsureDefaults returns c with defaults in the zero fields.
func (c Config) EnsureDefaults() Config {
	if c.Antennas == 0 {
		c.Antennas = 1
	}
	if c.Rate == 0 {
		c.Rate = 100
	}
	if c.RSSIMin == 0 && c.RSSIMax == 0 {
		c.RSSIMin, c.RSSIMax = -70, -40
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.FaultEvery == 0 {
		c.FaultEvery = 10
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// ParseTags reads a tag population: one tag per line, the EPC in hex,
// optionally followed by the antenna that sees it. Blank lines and lines
// starting with # are skipped.
func ParseTags(r io.Reader) ([]Tag, error) {
	var tags []Tag
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) > 2 {
			return nil, fmt.Errorf("rfidsim: tags line %d: want \"EPC [antenna]\", got %d fields", line, len(fields))
		}
		epc, err := hex.DecodeString(fields[0])
		if err != nil || len(epc) == 0 || len(epc) > rfid.MaxEPCLen {
			return nil, fmt.Errorf("rfidsim: tags line %d: EPC %q must be 1 to %d bytes of hex", line, fields[0], rfid.MaxEPCLen)
		}
		t := Tag{EPC: epc}
		if len(fields) == 2 {
			if t.Antenna, err = strconv.Atoi(fields[1]); err != nil || t.Antenna < 1 || t.Antenna > 15 {
				return nil, fmt.Errorf("rfidsim: tags line %d: antenna %q: want 1 to 15", line, fields[1])
			}
		}
		tags = append(tags, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("rfidsim: tags: %w", err)
	}
	return tags, nil
}
