// Package gs1 validates GS1 identification keys (GTIN, GLN, SSCC) and
// parses GS1 element strings and GS1 Digital Link URIs into application
// identifier (AI) values, following the GS1 General Specifications and the
// GS1 Digital Link standard. It owns the AI table: character set, length,
// check digit, date and implied-decimal rules of each AI it knows.
//
// The package does no I/O. Dates resolve their century against an
// injectable clock (Options.Now).
package gs1

import (
	"strconv"
	"strings"
	"time"
)

// Element is one AI and its value.
type Element struct {
	AI    string    // application identifier, e.g. "17"
	Value string    // value as encoded, e.g. "261231"
	Pos   int       // byte offset of the AI in the input; -1 for Digital Link
	Date  time.Time // resolved date of a date AI (UTC midnight), else zero

	spec *spec
}

// Title returns the AI's data title, e.g. "BATCH/LOT".
func (el Element) Title() string {
	if el.spec == nil {
		return ""
	}
	return el.spec.title
}

// Measure returns the value of an implied-decimal AI (310n–369n, 390n,
// 392n) as a decimal string with n decimals and as a float, e.g. AI 3103
// "000189" → "0.189", 0.189. ok is false for other AIs.
func (el Element) Measure() (decimal string, f float64, ok bool) {
	if el.spec == nil || el.spec.kind != kindMeasure {
		return "", 0, false
	}
	d := el.spec.decimals
	digits := strings.TrimLeft(el.Value, "0")
	if len(digits) <= d {
		digits = strings.Repeat("0", d-len(digits)+1) + digits
	}
	decimal = digits
	if d > 0 {
		decimal = digits[:len(digits)-d] + "." + digits[len(digits)-d:]
	}
	f, err := strconv.ParseFloat(decimal, 64)
	return decimal, f, err == nil
}

// Elements is the ordered list of AIs of one element string or Digital
// Link URI. Each AI appears at most once.
type Elements []Element

// Get returns the value of ai.
func (es Elements) Get(ai string) (string, bool) {
	if el, ok := es.Element(ai); ok {
		return el.Value, true
	}
	return "", false
}

// Element returns the element of ai.
func (es Elements) Element(ai string) (Element, bool) {
	for _, el := range es {
		if el.AI == ai {
			return el, true
		}
	}
	return Element{}, false
}

// Map returns AI → value.
func (es Elements) Map() map[string]string {
	m := make(map[string]string, len(es))
	for _, el := range es {
		m[el.AI] = el.Value
	}
	return m
}

// String returns the bracketed human-readable form, e.g.
// "(01)09501101530003(10)AB-12".
func (es Elements) String() string {
	var b strings.Builder
	for _, el := range es {
		b.WriteString("(" + el.AI + ")" + el.Value)
	}
	return b.String()
}

// ElementString returns the unbracketed form with GS after every value
// that does not have a predefined length, except the last.
func (es Elements) ElementString() string {
	var b strings.Builder
	for i, el := range es {
		b.WriteString(el.AI + el.Value)
		if _, pre := predefinedLength(el.AI); !pre && i < len(es)-1 {
			b.WriteByte(GS)
		}
	}
	return b.String()
}

// GTIN returns the GTIN-14 of AI 01.
func (es Elements) GTIN() string { v, _ := es.Get("01"); return v }

// Lot returns the batch or lot number of AI 10.
func (es Elements) Lot() string { v, _ := es.Get("10"); return v }

// Serial returns the serial number of AI 21.
func (es Elements) Serial() string { v, _ := es.Get("21"); return v }

// SSCC returns the SSCC of AI 00.
func (es Elements) SSCC() string { v, _ := es.Get("00"); return v }

// Order returns the customer's purchase order number of AI 400.
func (es Elements) Order() string { v, _ := es.Get("400"); return v }

// Expiry returns the expiration date of AI 17 (day 00 resolved to the
// month's last day).
func (es Elements) Expiry() (time.Time, bool) {
	el, ok := es.Element("17")
	return el.Date, ok
}

// ExpiryDate returns the expiration date of AI 17 as YYYY-MM-DD, or "".
func (es Elements) ExpiryDate() string {
	if d, ok := es.Expiry(); ok {
		return d.Format(time.DateOnly)
	}
	return ""
}

// Qty returns the count of AI 30 (variable count) or, failing that,
// AI 37 (count of trade items in a logistic unit).
func (es Elements) Qty() (int, bool) {
	for _, ai := range []string{"30", "37"} {
		if v, ok := es.Get(ai); ok {
			n, err := strconv.Atoi(v)
			return n, err == nil
		}
	}
	return 0, false
}

// Location returns the GLN of AI 414 (identification of a physical
// location) and the extension of AI 254, if any.
func (es Elements) Location() (gln, ext string, ok bool) {
	gln, ok = es.Get("414")
	ext, _ = es.Get("254")
	return gln, ext, ok
}
