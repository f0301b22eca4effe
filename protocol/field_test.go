package protocol

import (
	"strings"
	"testing"
	"unicode/utf8"

	"pgregory.net/rapid"
)

func TestCheckFieldRefusesInvisibleCharacters(t *testing.T) {
	for _, v := range []string{"A\aB", "A\x1bB", "A\u202eB", "A\u0085B", "A\x7fB", "A\u2066B", "A\u200fB", "A\x00B", "A\xffB"} {
		if err := CheckField("sku", v, true); err == nil {
			t.Errorf("CheckField(%q) = nil, want an error", v)
		}
		op := Op{Seq: 1, Kind: OpReceive, Location: "L", SKU: v, Qty: 1}
		if err := op.Validate(); err == nil || !strings.Contains(err.Error(), "sku") {
			t.Errorf("Validate with sku %q = %v, want a sku error", v, err)
		}
	}
	for _, v := range []string{"ABC-1", "Müller", "lot/ä 12", "日本"} {
		if err := CheckField("sku", v, true); err != nil {
			t.Errorf("CheckField(%q) = %v", v, err)
		}
	}
}

func TestValidateQtyBound(t *testing.T) {
	for _, op := range []Op{
		{Seq: 1, Kind: OpReceive, Location: "L", SKU: "S", Qty: MaxOpQty + 1},
		{Seq: 1, Kind: OpAdjust, Location: "L", SKU: "S", Qty: -MaxOpQty - 1},
		{Seq: 1, Kind: OpAdjust, Location: "L", SKU: "S", Qty: -9223372036854775808},
		{Seq: 1, Kind: OpCount, Location: "L", SKU: "S", Qty: 9223372036854775807},
		{Seq: 1, Kind: OpCount, Scope: ScopeLocation, Location: "L", Lines: []CountLine{{SKU: "S", Qty: MaxOpQty + 1}}},
	} {
		if err := op.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want a bound error", op)
		}
	}
	ok := Op{Seq: 1, Kind: OpAdjust, Location: "L", SKU: "S", Qty: -MaxOpQty}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate at the bound: %v", err)
	}
}

// TestCheckFieldASCIIFastPathEqualsTheChecks: a field the one-pass ASCII
// check accepts is one the full checks (UTF-8, no NUL, no invisible
// character) accept, and checkField answers as the full checks do for any
// string — printable ASCII, control bytes, DEL, multi-byte runes, bytes
// that are not UTF-8.
func TestCheckFieldASCIIFastPathEqualsTheChecks(t *testing.T) {
	full := func(v string) bool {
		i, _ := invisibleRune(v)
		return utf8.ValidString(v) && strings.IndexByte(v, 0) < 0 && i < 0
	}
	chars := rapid.OneOf(rapid.IntRange(0x20, 0x7e), rapid.IntRange(0, 0x1f), rapid.Just(0x7f),
		rapid.IntRange(0x80, 0x10ffff), rapid.IntRange(0x2066, 0x2069), rapid.IntRange(0x202a, 0x202e))
	rapid.Check(t, func(t *rapid.T) {
		var b []byte
		for _, c := range rapid.SliceOfN(chars, 1, 12).Draw(t, "chars") {
			if c < 0x80 {
				b = append(b, byte(c))
			} else {
				b = utf8.AppendRune(b, rune(c))
			}
		}
		if rapid.Bool().Draw(t, "raw_byte") { // a byte that is not UTF-8 on its own
			b = append(b, byte(rapid.IntRange(0x80, 0xff).Draw(t, "byte")))
		}
		v := string(b)
		if printableASCII(v) && !full(v) {
			t.Fatalf("%q: the fast path accepts what the checks refuse", v)
		}
		if got := checkField("f", v, true) == nil; got != full(v) {
			t.Fatalf("%q: checkField accepts=%v, the checks %v", v, got, full(v))
		}
	})
}
