package protocol

import "fmt"

// CheckSSCC reports whether s is a Serial Shipping Container Code: 18
// digits, the last the GS1 modulo-10 check digit of the 17 before it
// (weights 3, 1, 3, … from the right; GS1 General Specifications 7.9.1).
func CheckSSCC(s string) error {
	if len(s) != 18 {
		return fmt.Errorf("sscc %q must have 18 digits, got %d characters", s, len(s))
	}
	sum := 0
	for i := 0; i < 18; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return fmt.Errorf("sscc %q: non-digit at position %d", s, i)
		}
		if i == 17 {
			break
		}
		d := int(c - '0')
		if i%2 == 0 { // from the right of the 17 data digits, odd positions weigh 3
			d *= 3
		}
		sum += d
	}
	if want := byte('0' + (10-sum%10)%10); s[17] != want {
		return fmt.Errorf("sscc %q: check digit %c, want %c", s, s[17], want)
	}
	return nil
}
