package protocol

import (
	"testing"

	"pgregory.net/rapid"
)

// TestCheckSSCC: the GS1 example SSCC passes; every single-digit change of
// a valid SSCC fails (a mod-10 check with weights 3 and 1 catches them
// all); other lengths and non-digits fail.
func TestCheckSSCC(t *testing.T) {
	if err := CheckSSCC("106141412345678908"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "106141412345678907", "10614141234567890", "1061414123456789080", "10614141234567890a"} {
		if CheckSSCC(bad) == nil {
			t.Errorf("CheckSSCC(%q) passed", bad)
		}
	}
	rapid.Check(t, func(t *rapid.T) {
		data := rapid.StringMatching(`[0-9]{17}`).Draw(t, "data")
		var good string
		for c := byte('0'); c <= '9'; c++ {
			if CheckSSCC(data+string(c)) == nil {
				if good != "" {
					t.Fatalf("two check digits pass for %s", data)
				}
				good = data + string(c)
			}
		}
		if good == "" {
			t.Fatalf("no check digit passes for %s", data)
		}
		pos := rapid.IntRange(0, 17).Draw(t, "pos")
		b := []byte(good)
		b[pos] = byte('0' + (int(b[pos]-'0')+rapid.IntRange(1, 9).Draw(t, "delta"))%10)
		if CheckSSCC(string(b)) == nil {
			t.Fatalf("%s passes after changing digit %d of %s", b, pos, good)
		}
	})
}

func FuzzCheckSSCC(f *testing.F) {
	f.Add("106141412345678908")
	f.Fuzz(func(t *testing.T, s string) {
		if CheckSSCC(s) == nil && len(s) != 18 {
			t.Fatalf("%q passed", s)
		}
	})
}
