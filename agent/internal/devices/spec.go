// Package devices runs the gateway's scanners: it reads each device through
// drivers/device, classifies scans with drivers/scan, steps the device's
// session, commits the resulting ops and session state durably through the
// store, and only then sends the operator a good or bad beep.
package devices

import (
	"fmt"
	"strings"
	"time"

	"github.com/shelfsync/shelfsync/drivers/device"
	"github.com/shelfsync/shelfsync/drivers/linemode"
)

// Spec is one --device flag: NAME=KIND:SELECTOR[,key=value...].
//
// KIND is "barcode" or "rfid". SELECTOR is a path (/dev/ttyACM0) or a USB
// identity (usb:05E0:1701[:SERIAL]). Barcode options: framing=line|ssi,
// feedback=none|ssi|honeywell|datalogic, suffix=auto|CR|LF|CRLF,
// prefix=TEXT, baud=N. RFID options (rfid.go): protocol=uhf18|mercury,
// role=portal|shelf, location=LOC (both required), baud=N, window=D (read
// de-duplication, default 500ms), sweep=D (shelf sweep period, default 2s),
// address=N (uhf18 reader address).
type Spec struct {
	Name     string
	Kind     string
	Selector string
	Options  map[string]string
}

// ParseSpec parses a --device value.
func ParseSpec(s string) (Spec, error) {
	name, rest, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return Spec{}, fmt.Errorf("device %q: want NAME=KIND:SELECTOR, e.g. dock1=barcode:/dev/ttyACM0", s)
	}
	kind, rest, ok := strings.Cut(rest, ":")
	if !ok {
		return Spec{}, fmt.Errorf("device %q: want NAME=KIND:SELECTOR, e.g. %s=barcode:/dev/ttyACM0", s, name)
	}
	if kind != "barcode" && kind != "rfid" {
		return Spec{}, fmt.Errorf("device %q: kind %q is not supported; use barcode or rfid", s, kind)
	}
	parts := strings.Split(rest, ",")
	sp := Spec{Name: name, Kind: kind, Selector: parts[0], Options: map[string]string{}}
	if sp.Selector == "" {
		return Spec{}, fmt.Errorf("device %q: empty selector", s)
	}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return Spec{}, fmt.Errorf("device %q: option %q is not key=value", s, p)
		}
		switch {
		case kind == "barcode" && (k == "framing" || k == "feedback" || k == "suffix" || k == "prefix" || k == "baud"):
			sp.Options[k] = v
		case kind == "rfid" && (k == "protocol" || k == "role" || k == "location" || k == "baud" || k == "window" || k == "sweep" || k == "address"):
			sp.Options[k] = v
		case kind == "rfid":
			return Spec{}, fmt.Errorf("device %q: unknown option %q (protocol, role, location, baud, window, sweep, address)", s, k)
		default:
			return Spec{}, fmt.Errorf("device %q: unknown option %q (framing, feedback, suffix, prefix, baud)", s, k)
		}
	}
	if kind == "rfid" {
		if _, err := sp.RFIDConfig(); err != nil {
			return Spec{}, err
		}
	}
	return sp, nil
}

var terminators = map[string]string{"auto": "", "CR": "\r", "LF": "\n", "CRLF": "\r\n", "TAB": "\t"}

// DeviceConfig turns the spec into a drivers/device configuration.
func (sp Spec) DeviceConfig() (device.Config, error) {
	cfg := device.Config{Name: sp.Name, Selector: sp.Selector, Framing: sp.Options["framing"], Feedback: sp.Options["feedback"]}
	if v, ok := sp.Options["suffix"]; ok {
		t, ok := terminators[strings.ToUpper(v)]
		if !ok && v != "auto" {
			return cfg, fmt.Errorf("device %s: suffix %q must be auto, CR, LF, CRLF or TAB", sp.Name, v)
		}
		cfg.Line = linemode.Config{Terminator: t}
	}
	cfg.Line.Prefix = sp.Options["prefix"]
	if v, ok := sp.Options["baud"]; ok {
		if _, err := fmt.Sscan(v, &cfg.Baud); err != nil {
			return cfg, fmt.Errorf("device %s: baud %q is not a number", sp.Name, v)
		}
	}
	cfg.Backoff = device.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	cfg = cfg.EnsureDefaults()
	return cfg, cfg.Validate()
}
