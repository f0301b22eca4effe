package serialport

import "testing"

// FuzzParseSelector: selectors come from config files and flags. Parsing
// never panics, and what parses prints back to an equal selector.
func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{"/dev/ttyACM0", "usb:05E0:1701", "usb:1a86:7523@1-1.4", "05e0:1701:S/N:1@", "usb::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := ParseSelector(s)
		if err != nil {
			return
		}
		again, err := ParseSelector(sel.String())
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", s, sel.String(), err)
		}
		if again != sel {
			t.Fatalf("%q: round trip %+v != %+v", s, again, sel)
		}
	})
}
