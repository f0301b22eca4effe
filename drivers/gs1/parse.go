package gs1

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shelfsync/shelfsync/drivers/aim"
)

// GS is the ASCII group separator scanners transmit for FNC1.
const GS = '\x1d'

// Options tune parsing. The zero value is ready to use.
type Options struct {
	// Now gives the reference date for the century of YYMMDD dates
	// (General Specifications 7.12). Default: time.Now.
	Now func() time.Time
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// ParseElementString parses a GS1 element string as a scanner delivers it:
//
//   - after an AIM identifier announcing GS1 data (]C1, ]d2, ]Q3, ]e0, ]J1…),
//     with FNC1 separators transmitted as GS (0x1D);
//   - with a leading GS instead of the AIM identifier, or with neither;
//   - with the separators stripped, which works where every AI but the last
//     has a fixed length;
//   - in the bracketed human-readable form "(01)09501101530003(10)AB-12".
//
// Every value is checked against the AI table: character set, length,
// check digit, date. Errors are *Error values naming the AI and its
// position in s.
func ParseElementString(s string, opts Options) (Elements, error) {
	now := opts.now()
	if strings.HasPrefix(s, "(") {
		return parseBracketed(s, now)
	}
	if s == "" {
		return nil, errors.New("gs1: empty element string")
	}
	base := 0
	if id, rest, ok := aim.Split(s); ok {
		if !id.GS1() {
			return nil, fmt.Errorf("gs1: symbology %s (%s) does not carry a GS1 element string", id, id.Symbology())
		}
		base, s = 3, rest
	}
	es, err := parseRaw(s, base, now)
	if err == nil && len(es) == 0 {
		return nil, errors.New("gs1: empty element string")
	}
	return es, err
}

// identify finds the AI at the start of s. AIs are prefix-free, so the
// first table hit among the 2-, 3- and 4-digit prefixes is the AI.
func identify(s string, pos int) (*spec, error) {
	for l := 2; l <= 4 && l <= len(s); l++ {
		if sp, ok := table[s[:l]]; ok {
			return sp, nil
		}
		if !prefixes[s[:l]] {
			return nil, &Error{AI: s[:l], Pos: pos, Err: ErrUnknownAI}
		}
	}
	return nil, &Error{AI: s, Pos: pos, Err: fmt.Errorf("%w: input ends inside an AI", ErrUnknownAI)}
}

// parseRaw parses unbracketed data; base is the offset of s in the input.
func parseRaw(s string, base int, now time.Time) (Elements, error) {
	var out Elements
	for i := 0; i < len(s); {
		if s[i] == GS {
			i++
			continue
		}
		start := i
		sp, err := identify(s[i:], base+i)
		if err != nil {
			return nil, err
		}
		i += len(sp.code)
		var value string
		l, fixed := predefinedLength(sp.code)
		if !fixed {
			l, fixed = sp.fixedLength()
		}
		if fixed {
			if len(s)-i < l {
				return nil, &Error{AI: sp.code, Pos: base + start,
					Err: fmt.Errorf("want %d characters, got %d", l, len(s)-i)}
			}
			value = s[i : i+l]
		} else {
			end := strings.IndexByte(s[i:], GS)
			if end < 0 {
				end = len(s) - i
			}
			value = s[i : i+end]
		}
		i += len(value)
		el, err := newElement(sp, value, base+start, now)
		if err != nil {
			return nil, err
		}
		if out, err = out.add(el); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// parseBracketed parses "(AI)value(AI)value…". A value ends where "("
// digits ")" starts the next AI, or at the end of the input; a literal
// "(" in a value is written "\\(" as in the GS1 Barcode Syntax Resource.
func parseBracketed(s string, now time.Time) (Elements, error) {
	var out Elements
	i := 0
	for i < len(s) {
		code, ok := bracketAI(s[i:])
		if !ok || len(code) < 2 || len(code) > 4 {
			return nil, &Error{AI: "?", Pos: i, Err: errors.New(`want "(AI)" with a 2 to 4 digit AI here`)}
		}
		sp, known := table[code]
		if !known {
			return nil, &Error{AI: code, Pos: i, Err: ErrUnknownAI}
		}
		start := i
		i += len(code) + 2
		var value strings.Builder
		for i < len(s) {
			if s[i] == '\\' && i+1 < len(s) && s[i+1] == '(' {
				value.WriteByte('(')
				i += 2
				continue
			}
			if _, next := bracketAI(s[i:]); next {
				break
			}
			value.WriteByte(s[i])
			i++
		}
		el, err := newElement(sp, value.String(), start, now)
		if err != nil {
			return nil, err
		}
		if out, err = out.add(el); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// bracketAI returns the digits of a leading "(" digits ")".
func bracketAI(s string) (string, bool) {
	if len(s) < 3 || s[0] != '(' {
		return "", false
	}
	end := strings.IndexByte(s, ')')
	if end < 2 || !allDigits(s[1:end]) {
		return "", false
	}
	return s[1:end], true
}

func newElement(sp *spec, value string, pos int, now time.Time) (Element, error) {
	date, err := sp.validate(value, now)
	if err != nil {
		return Element{}, &Error{AI: sp.code, Pos: pos, Err: err}
	}
	return Element{AI: sp.code, Value: value, Pos: pos, Date: date, spec: sp}, nil
}

// add appends el, rejecting a repeated AI with a different value
// (the General Specifications forbid repeating an AI with another value).
func (es Elements) add(el Element) (Elements, error) {
	for _, prev := range es {
		if prev.AI != el.AI {
			continue
		}
		if prev.Value != el.Value {
			return nil, &Error{AI: el.AI, Pos: el.Pos,
				Err: fmt.Errorf("repeated with value %q, first %q", el.Value, prev.Value)}
		}
		return es, nil
	}
	return append(es, el), nil
}
