package feedback

import (
	"bytes"

	"github.com/shelfsync/shelfsync/drivers/ssi"
)

// Honeywell host escape commands (Honeywell 2020 / Hand Held Products
// IT2020 user manuals, "Host Escape Commands"): ESC 7 indicates a
// successful decode, ESC 8 an unsuccessful one, ESC 4/5/6 beep at low,
// medium and high pitch. Warn is low-high-low tones, unlike either. Xenon
// and Granit models want each escape followed by a comma and host ACK mode
// enabled; the Decoder accepts the commas.
var honeywell = map[Signal]string{
	Good: "\x1b7",
	Bad:  "\x1b8",
	Warn: "\x1b4\x1b6\x1b4",
}

// Datalogic RS-232 host commands (Magellan Product Reference Guides,
// "Host Commands"): BEL (0x07) forces the good-read tone. Bad is three
// BELs, Warn two, written at once so that they arrive together.
var datalogic = map[Signal]string{
	Good: "\a",
	Bad:  "\a\a\a",
	Warn: "\a\a",
}

// SSI beep codes (Zebra SSI BEEP data byte): 0x00 one short high, 0x07
// three short low, 0x18 high-low-high.
const (
	BeepGood byte = 0x00
	BeepBad  byte = 0x07
	BeepWarn byte = 0x18
)

var ssiBeeps = map[Signal]byte{Good: BeepGood, Bad: BeepBad, Warn: BeepWarn}

// SSIBeepCode returns the SSI beep code shelfsync sends for sig.
func SSIBeepCode(sig Signal) (byte, bool) {
	c, ok := ssiBeeps[sig]
	return c, ok
}

// SignalForBeep returns the Signal an SSI beep code stands for, if it is one
// shelfsync sends.
func SignalForBeep(code byte) (Signal, bool) {
	for sig, c := range ssiBeeps {
		if c == code {
			return sig, true
		}
	}
	return 0, false
}

type ssiEncoder struct{}

func (ssiEncoder) Kind() string { return KindSSI }
func (ssiEncoder) Encode(sig Signal) ([]byte, error) {
	if err := checkSignal(sig); err != nil {
		return nil, err
	}
	return ssi.MustEncode(ssi.Beep(ssiBeeps[sig])), nil
}

// Decoder recognises feedback commands in the bytes a host wrote to a
// scanner: for simulators and tests. A Decoder is not safe for concurrent
// use.
type Decoder struct {
	kind string
	ssi  ssi.Decoder
	rest []byte // an ESC waiting for its command byte
}

// NewDecoder returns a Decoder for kind, or an error wrapping
// ErrUnknownKind.
func NewDecoder(kind string) (*Decoder, error) {
	e, err := Lookup(kind)
	if err != nil {
		return nil, err
	}
	return &Decoder{kind: e.Kind()}, nil
}

// Feed returns the signals found in p. BELs are grouped by Feed call: a
// host writes a whole group at once. For SSI, only BEEP packets count;
// use ssi.Host or ssi.Decoder directly to see the rest.
func (d *Decoder) Feed(p []byte) []Signal {
	switch d.kind {
	case KindSSI:
		var out []Signal
		d.ssi.Feed(p, func(pkt ssi.Packet, err error) {
			if err != nil || pkt.Opcode != ssi.OpBeep || len(pkt.Data) != 1 {
				return
			}
			if sig, ok := SignalForBeep(pkt.Data[0]); ok {
				out = append(out, sig)
			}
		})
		return out
	case KindHoneywell:
		return d.honeywell(p)
	case KindDatalogic:
		switch n := bytes.Count(p, []byte{'\a'}); {
		case n == 0:
			return nil
		case n == 1:
			return []Signal{Good}
		case n == 2:
			return []Signal{Warn}
		default:
			return []Signal{Bad}
		}
	}
	return nil
}

func (d *Decoder) honeywell(p []byte) []Signal {
	b := append(d.rest, p...)
	d.rest = nil
	var out []Signal
	var tones []byte
	flushTones := func() {
		if string(tones) == "464" {
			out = append(out, Warn)
		}
		tones = tones[:0]
	}
	for i := 0; i < len(b); i++ {
		if b[i] != 0x1b {
			continue
		}
		if i+1 == len(b) {
			d.rest = []byte{0x1b}
			break
		}
		switch c := b[i+1]; c {
		case '7':
			flushTones()
			out = append(out, Good)
		case '8':
			flushTones()
			out = append(out, Bad)
		case '4', '5', '6':
			tones = append(tones, c)
		}
		i++
	}
	flushTones()
	return out
}
