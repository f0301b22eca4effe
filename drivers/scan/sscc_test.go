package scan

import (
	"testing"

	"github.com/shelfsync/shelfsync/drivers/gs1"
	"pgregory.net/rapid"
)

// TestSSCCProperty: any 17 digits with their GS1 check digit decode as a
// pallet with that SSCC in every form a scanner or printer delivers (]C1,
// leading FNC1, bare, bracketed, Digital Link, with content AIs after it);
// changing any one digit is refused with a check-digit error.
func TestSSCCProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		data := rapid.StringMatching(`[0-9]{17}`).Draw(t, "data")
		c, err := gs1.CheckDigit(data)
		if err != nil {
			t.Fatal(err)
		}
		sscc := data + string(c)
		forms := []string{
			"]C100" + sscc, "\x1d00" + sscc, "00" + sscc, "(00)" + sscc, "]d200" + sscc,
			"https://id.gs1.org/00/" + sscc, "(00)" + sscc + "(02)00614141123452(37)25",
		}
		for _, raw := range forms {
			s, err := opts.Decode(raw)
			if err != nil {
				t.Fatalf("Decode(%q): %v", raw, err)
			}
			if s.Kind != KindPallet || s.SSCC != sscc || s.Value != sscc {
				t.Fatalf("Decode(%q) = kind %s sscc %q value %q, want pallet %s", raw, s.Kind, s.SSCC, s.Value, sscc)
			}
		}
		pos := rapid.IntRange(0, 17).Draw(t, "pos")
		delta := rapid.IntRange(1, 9).Draw(t, "delta")
		bad := []byte(sscc)
		bad[pos] = byte('0' + (int(bad[pos]-'0')+delta)%10)
		if _, err := opts.Decode("(00)" + string(bad)); err == nil {
			t.Fatalf("Decode((00)%s) accepted a changed digit at %d of %s", bad, pos, sscc)
		}
	})
}

// FuzzSSCC feeds arbitrary 18-character values to AI 00: a value is
// accepted exactly when it is 18 digits ending in their check digit.
func FuzzSSCC(f *testing.F) {
	for _, s := range []string{"106141412345678908", "106141412345678907", "00000000000000000\x00", "1234567890123456789"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		s, err := opts.Decode("(00)" + v)
		valid := gs1.ValidateSSCC(v) == nil
		switch {
		case valid && err != nil:
			t.Fatalf("valid SSCC %q refused: %v", v, err)
		case valid && (s.Kind != KindPallet || s.SSCC != v):
			t.Fatalf("valid SSCC %q decoded as %s %q", v, s.Kind, s.SSCC)
		case !valid && err == nil && s.Kind == KindPallet && s.SSCC == v:
			t.Fatalf("invalid SSCC %q accepted", v)
		}
	})
}
