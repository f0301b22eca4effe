package serialport

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Errors from ParseSelector and Resolve.
var (
	// ErrSelector: the selector text cannot be parsed.
	ErrSelector = errors.New("serialport: bad selector")
	// ErrNotFound: no port matches a USB selector (the device may be
	// unplugged).
	ErrNotFound = errors.New("serialport: no matching port")
	// ErrAmbiguous: several ports match a USB selector; add the serial
	// number or the USB port path.
	ErrAmbiguous = errors.New("serialport: several ports match")
)

// Selector names a port: either a device path, or a USB identity matched
// against the enumerated ports each time the port is (re)opened.
type Selector struct {
	Path     string // device path; when set, the USB fields are empty
	VID, PID string // 4 upper-case hex digits
	Serial   string // USB serial number; empty matches any
	PortPath string // USB port path such as "1-1.4"; empty matches any
}

// ParseSelector parses a port selector:
//
//	/dev/ttyACM0                  a device path (or any path starting with / or .)
//	usb:05E0:1701                 USB vendor and product id, hex, any case
//	usb:05E0:1701:S/N123          … and serial number
//	usb:1A86:7523@1-1.4           … or USB port path, to tell apart
//	                              identical readers with no serial number
//	05E0:1701[:serial][@portpath] the same without "usb:"
//
// Ids are compared case-insensitively.
func ParseSelector(s string) (Selector, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Selector{}, fmt.Errorf("%w: empty (want a /dev path or usb:VID:PID[:SERIAL][@PORTPATH])", ErrSelector)
	}
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") {
		return Selector{Path: s}, nil
	}
	rest := s
	if len(rest) >= 4 && strings.EqualFold(rest[:4], "usb:") {
		rest = rest[4:]
	}
	var sel Selector
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		sel.PortPath, rest = rest[at+1:], rest[:at]
		if sel.PortPath == "" {
			return Selector{}, fmt.Errorf("%w %q: empty USB port path after @", ErrSelector, s)
		}
	}
	parts := strings.SplitN(rest, ":", 3)
	if len(parts) < 2 {
		return Selector{}, fmt.Errorf("%w %q: want a /dev path or usb:VID:PID[:SERIAL][@PORTPATH]", ErrSelector, s)
	}
	var err error
	if sel.VID, err = parseID(parts[0]); err != nil {
		return Selector{}, fmt.Errorf("%w %q: vendor id: %w", ErrSelector, s, err)
	}
	if sel.PID, err = parseID(parts[1]); err != nil {
		return Selector{}, fmt.Errorf("%w %q: product id: %w", ErrSelector, s, err)
	}
	if len(parts) == 3 {
		sel.Serial = parts[2]
	}
	return sel, nil
}

// parseID parses a 1-4 digit hex USB id into 4 upper-case digits.
func parseID(s string) (string, error) {
	if len(s) == 0 || len(s) > 4 {
		return "", fmt.Errorf("%q is not 1-4 hex digits", s)
	}
	v, err := strconv.ParseUint(s, 16, 16)
	if err != nil {
		return "", fmt.Errorf("%q is not 1-4 hex digits", s)
	}
	return fmt.Sprintf("%04X", v), nil
}

// IsPath reports whether s names a device path rather than a USB identity.
func (s Selector) IsPath() bool { return s.Path != "" }

// String returns s in the form ParseSelector reads.
func (s Selector) String() string {
	if s.IsPath() {
		return s.Path
	}
	out := "usb:" + s.VID + ":" + s.PID
	if s.Serial != "" {
		out += ":" + s.Serial
	}
	if s.PortPath != "" {
		out += "@" + s.PortPath
	}
	return out
}

// Match reports whether p is the port s names.
func (s Selector) Match(p PortInfo) bool {
	if s.IsPath() {
		return p.Name == s.Path
	}
	return p.IsUSB &&
		strings.EqualFold(p.VID, s.VID) && strings.EqualFold(p.PID, s.PID) &&
		(s.Serial == "" || strings.EqualFold(p.Serial, s.Serial)) &&
		(s.PortPath == "" || strings.EqualFold(p.PortPath, s.PortPath))
}

// Resolve returns the device path s names now. A path selector resolves to
// itself without looking; a USB selector is matched against List.
func (s Selector) Resolve() (string, error) {
	if s.IsPath() {
		return s.Path, nil
	}
	ports, err := List()
	if err != nil {
		return "", err
	}
	return s.ResolveIn(ports)
}

// ResolveIn is Resolve against a given port list.
func (s Selector) ResolveIn(ports []PortInfo) (string, error) {
	if s.IsPath() {
		return s.Path, nil
	}
	var found []PortInfo
	for _, p := range ports {
		if s.Match(p) {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%w: %s (is it plugged in? list ports with `shelfsync-agent scanners`)", ErrNotFound, s)
	case 1:
		return found[0].Name, nil
	}
	alts := make([]string, len(found))
	for i, p := range found {
		alts[i] = p.Name + " = " + p.Selector
	}
	return "", fmt.Errorf("%w: %s matches %s; use one of those selectors", ErrAmbiguous, s, strings.Join(alts, ", "))
}
