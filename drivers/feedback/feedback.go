// Package feedback owns the commands that make a scanner tell its operator
// how a scan went: a good beep, a bad (error) beep, and a distinct warning
// beep for a discrepancy. Each kind of scanner gets an Encoder that turns a
// Signal into the bytes to write to its port; a Decoder does the reverse
// for simulators and tests.
package feedback

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Signal is what the operator should hear.
type Signal int

// Signals. The zero Signal is invalid.
const (
	Good Signal = iota + 1 // scan accepted
	Bad                    // scan rejected
	Warn                   // accepted, but there is a discrepancy to look at
)

// String returns "good", "bad", "warn" or "signal(N)".
func (s Signal) String() string {
	switch s {
	case Good:
		return "good"
	case Bad:
		return "bad"
	case Warn:
		return "warn"
	}
	return fmt.Sprintf("signal(%d)", int(s))
}

// ParseSignal parses what String returns.
func ParseSignal(s string) (Signal, error) {
	for _, sig := range []Signal{Good, Bad, Warn} {
		if strings.EqualFold(s, sig.String()) {
			return sig, nil
		}
	}
	return 0, fmt.Errorf("feedback: unknown signal %q (want good, bad or warn)", s)
}

// Kinds of scanner feedback.
const (
	KindNone      = "none"      // no feedback: the scanner beeps on its own
	KindSSI       = "ssi"       // Zebra SSI BEEP packets
	KindHoneywell = "honeywell" // Honeywell serial escapes ESC 7 / ESC 8
	KindDatalogic = "datalogic" // Datalogic RS-232 BEL
)

// Errors.
var (
	// ErrUnknownKind: For or Lookup was given a kind it does not know.
	ErrUnknownKind = errors.New("feedback: unknown kind")
	// ErrSignal: Encode was given a Signal outside Good, Bad, Warn.
	ErrSignal = errors.New("feedback: invalid signal")
)

// Encoder turns a Signal into bytes for one kind of scanner.
type Encoder interface {
	// Kind returns the kind this Encoder was made for.
	Kind() string
	// Encode returns the bytes to write for sig; nil means nothing to write.
	Encode(sig Signal) ([]byte, error)
}

var encoders = map[string]Encoder{
	KindNone:      none{},
	KindSSI:       ssiEncoder{},
	KindHoneywell: bytesEncoder{kind: KindHoneywell, codes: honeywell},
	KindDatalogic: bytesEncoder{kind: KindDatalogic, codes: datalogic},
}

// Kinds returns the known kinds, sorted.
func Kinds() []string {
	out := make([]string, 0, len(encoders))
	for k := range encoders {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Lookup returns the Encoder for kind ("" means none), or an error wrapping
// ErrUnknownKind that lists the known kinds.
func Lookup(kind string) (Encoder, error) {
	if kind == "" {
		kind = KindNone
	}
	if e, ok := encoders[strings.ToLower(kind)]; ok {
		return e, nil
	}
	return nil, fmt.Errorf("%w %q (want one of %s)", ErrUnknownKind, kind, strings.Join(Kinds(), ", "))
}

// For returns the Encoder for kind. An unknown kind gets an Encoder whose
// Encode always fails with the Lookup error, so the mistake is reported at
// the first beep rather than swallowed; check with Lookup to fail earlier.
func For(kind string) Encoder {
	e, err := Lookup(kind)
	if err != nil {
		return broken{kind: kind, err: err}
	}
	return e
}

func checkSignal(sig Signal) error {
	if sig < Good || sig > Warn {
		return fmt.Errorf("%w: %d", ErrSignal, int(sig))
	}
	return nil
}

type none struct{}

func (none) Kind() string { return KindNone }
func (none) Encode(sig Signal) ([]byte, error) {
	return nil, checkSignal(sig)
}

type broken struct {
	kind string
	err  error
}

func (b broken) Kind() string                  { return b.kind }
func (b broken) Encode(Signal) ([]byte, error) { return nil, b.err }

// bytesEncoder sends fixed byte strings per signal.
type bytesEncoder struct {
	kind  string
	codes map[Signal]string
}

func (e bytesEncoder) Kind() string { return e.kind }
func (e bytesEncoder) Encode(sig Signal) ([]byte, error) {
	if err := checkSignal(sig); err != nil {
		return nil, err
	}
	return []byte(e.codes[sig]), nil
}
