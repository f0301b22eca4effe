package gs1

import (
	"errors"
	"fmt"
	"strings"
)

// ErrCheckDigit is wrapped by every error about a GS1 key whose last digit
// is not the check digit of the digits before it. Callers test for it with
// errors.Is to answer "bad check digit" instead of "bad format".
var ErrCheckDigit = errors.New("check digit mismatch")

// CheckDigit returns the GS1 modulo-10 check digit of data, the digits of a
// key without its check digit: weights 3, 1, 3, … from the right,
// check = (10 − sum mod 10) mod 10 (GS1 General Specifications 7.9.1).
func CheckDigit(data string) (byte, error) {
	if data == "" {
		return 0, errors.New("gs1: check digit of an empty number")
	}
	sum := 0
	for i := len(data) - 1; i >= 0; i-- {
		c := data[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("gs1: non-digit %q at position %d", c, i)
		}
		d := int(c - '0')
		if (len(data)-1-i)%2 == 0 {
			d *= 3
		}
		sum += d
	}
	return byte('0' + (10-sum%10)%10), nil
}

// ValidCheckDigit reports whether the last digit of key is the check digit
// of the digits before it.
func ValidCheckDigit(key string) bool {
	return checkKey("key", key, len(key)) == nil
}

// checkKey validates that key has n digits and ends with its check digit.
func checkKey(what, key string, n int) error {
	if err := keyError(what, key, n); err != nil {
		return fmt.Errorf("gs1: %w", err)
	}
	return nil
}

// keyError is checkKey without the package prefix, for use inside
// element errors.
func keyError(what, key string, n int) error {
	if len(key) != n {
		return fmt.Errorf("%s %q must have %d digits, got %d", what, key, n, len(key))
	}
	if n < 2 {
		return fmt.Errorf("%s %q is too short", what, key)
	}
	for i := 0; i < n; i++ {
		if key[i] < '0' || key[i] > '9' {
			return fmt.Errorf("%s %q: non-digit %q at position %d", what, key, key[i], i)
		}
	}
	want, _ := CheckDigit(key[:n-1])
	if key[n-1] != want {
		return fmt.Errorf("%s %q: %w: last digit %c, want %c", what, key, ErrCheckDigit, key[n-1], want)
	}
	return nil
}

// ValidateGLN validates a 13-digit Global Location Number.
func ValidateGLN(gln string) error { return checkKey("GLN", gln, 13) }

// ValidateSSCC validates an 18-digit Serial Shipping Container Code.
func ValidateSSCC(sscc string) error { return checkKey("SSCC", sscc, 18) }

// ValidateGTIN validates a GTIN-8, GTIN-12, GTIN-13 or GTIN-14 by length
// and check digit. UPC-E is not accepted here: expand it with ExpandUPCE.
func ValidateGTIN(gtin string) error {
	switch len(gtin) {
	case 8, 12, 13, 14:
		return checkKey(fmt.Sprintf("GTIN-%d", len(gtin)), gtin, len(gtin))
	}
	return fmt.Errorf("gs1: GTIN %q must have 8, 12, 13 or 14 digits, got %d", gtin, len(gtin))
}

// NormalizeGTIN validates an EAN-8 (GTIN-8), UPC-A (GTIN-12), EAN-13
// (GTIN-13) or GTIN-14 and returns it as a GTIN-14, left-padded with
// zeros. Eight digits are taken as EAN-8; expand UPC-E first.
func NormalizeGTIN(digits string) (string, error) {
	if err := ValidateGTIN(digits); err != nil {
		return "", err
	}
	return strings.Repeat("0", 14-len(digits)) + digits, nil
}

// ExpandUPCE expands an 8-digit UPC-E (number system, six data digits,
// check digit) into the 12-digit UPC-A it stands for, following the
// UPC-E zero-suppression rules (GS1 General Specifications, UPC-E):
// with data digits abcdeN,
//
//	N = 0, 1, 2: S ab N 0000 cde X
//	N = 3:       S abc 00000 de X
//	N = 4:       S abcd 00000 e X
//	N = 5…9:     S abcde 0000 N X
//
// A 6-digit input (data only) is taken with number system 0 and its check
// digit computed; a 7-digit one as number system + data. The number system
// must be 0 or 1 and an 8-digit input's check digit must match the UPC-A.
func ExpandUPCE(upce string) (string, error) {
	for i := 0; i < len(upce); i++ {
		if upce[i] < '0' || upce[i] > '9' {
			return "", fmt.Errorf("gs1: UPC-E %q: non-digit at position %d", upce, i)
		}
	}
	var ns, data, check string
	switch len(upce) {
	case 6:
		ns, data = "0", upce
	case 7:
		ns, data = upce[:1], upce[1:]
	case 8:
		ns, data, check = upce[:1], upce[1:7], upce[7:]
	default:
		return "", fmt.Errorf("gs1: UPC-E %q must have 6, 7 or 8 digits, got %d", upce, len(upce))
	}
	if ns != "0" && ns != "1" {
		return "", fmt.Errorf("gs1: UPC-E %q: number system %s, want 0 or 1", upce, ns)
	}
	var body string
	switch n := data[5]; {
	case n <= '2':
		body = data[0:2] + string(n) + "0000" + data[2:5]
	case n == '3':
		body = data[0:3] + "00000" + data[3:5]
	case n == '4':
		body = data[0:4] + "00000" + data[4:5]
	default:
		body = data[0:5] + "0000" + string(n)
	}
	body = ns + body
	want, _ := CheckDigit(body)
	if check != "" && check[0] != want {
		return "", fmt.Errorf("gs1: UPC-E %q: %w: last digit %s, want %c", upce, ErrCheckDigit, check, want)
	}
	return body + string(want), nil
}
