package gs1

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCheckDigit(t *testing.T) {
	tests := []struct {
		data, want, source string
	}{
		{"629104150021", "3", "GS1 Hong Kong check digit calculator, worked GTIN-13 example"},
		{"730001100001", "7", "GS1 Sweden, 'Så beräknas kontrollsiffran'"},
		{"890400021003", "7", "GS1 India check digit page"},
		{"0952012345678", "8", "GS1 Digital Link standard example GTIN 09520123456788"},
		{"0541234500001", "3", "GTIN 05412345000013 from Gs1DigitalLinkLib test features"},
		{"9638507", "4", "EAN-8 96385074 (GS1 General Specifications EAN-8 example)"},
		{"0", "0", "degenerate"},
	}
	for _, tt := range tests {
		t.Run(tt.data, func(t *testing.T) {
			got, err := CheckDigit(tt.data)
			require.NoError(t, err, tt.source)
			assert.Equal(t, tt.want, string(got), tt.source)
			assert.True(t, ValidCheckDigit(tt.data+tt.want))
		})
	}
	_, err := CheckDigit("12a4")
	assert.ErrorContains(t, err, "non-digit 'a' at position 2")
	_, err = CheckDigit("")
	assert.Error(t, err)
}

func TestNormalizeGTIN(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"96385074", "00000096385074", ""},       // EAN-8
		{"012100005984", "00012100005984", ""},   // UPC-A
		{"6291041500213", "06291041500213", ""},  // EAN-13
		{"09520123456788", "09520123456788", ""}, // GTIN-14
		{"6291041500214", "", "check digit"},
		{"629104150021", "", "check digit"}, // 12 digits: UPC-A with a wrong check digit
		{"12345", "", "must have 8, 12, 13 or 14 digits"},
		{"62910415002x3", "", "non-digit"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizeGTIN(tt.in)
			if tt.err != "" {
				assert.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	_, err := NormalizeGTIN("6291041500214")
	assert.True(t, errors.Is(err, ErrCheckDigit))
}

// UPC-E zero-suppression examples: the Printronix L7032 reference manual's
// "Six-Digit Zero Expansion" table (one per rule) and UPC-A 012100005984 ↔
// UPC-E 01259814. The check digits are computed on the expanded UPC-A.
func TestExpandUPCE(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"124560", "012000004568", ""},   // N=0: MFR 12000, item 00456
		{"275831", "027100005834", ""},   // N=1
		{"412022", "041200002029", ""},   // N=2
		{"876543", "087600000548", ""},   // N=3: MFR 87600, item 00054
		{"753774", "075370000073", ""},   // N=4: MFR 75370, item 00007
		{"213756", "021375000068", ""},   // N=5…9
		{"01259814", "012100005984", ""}, // full 8-digit form with check digit
		{"0125981", "012100005984", ""},  // number system + data
		{"01259815", "", "check digit"},
		{"21259814", "", "number system 2"},
		{"12345", "", "6, 7 or 8 digits"},
		{"12a456", "", "non-digit"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ExpandUPCE(tt.in)
			if tt.err != "" {
				assert.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.True(t, ValidCheckDigit(got))
		})
	}
}

func TestGLNAndSSCC(t *testing.T) {
	// GLN 9520123456788 and SSCC 095201234567890126 (GS1 Digital Link
	// standard examples use company prefix 952012345 for both).
	require.NoError(t, ValidateGLN("9520123456788"))
	assert.ErrorContains(t, ValidateGLN("9520123456789"), "check digit")
	assert.ErrorContains(t, ValidateGLN("952012345678"), "must have 13 digits")
	require.NoError(t, ValidateSSCC("106141412345678908")) // biip DL example (00)
	assert.ErrorIs(t, ValidateSSCC("106141412345678907"), ErrCheckDigit)
	assert.Error(t, ValidateSSCC("10614141234567890"))
}
