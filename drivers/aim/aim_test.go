package aim

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Identifiers from the GS1 General Specifications' symbology identifier
// table and ISO/IEC 15424.
func TestSplit(t *testing.T) {
	tests := []struct {
		in        string
		ok        bool
		id        string
		rest      string
		symbology string
		gs1       bool
	}{
		{"]C0ABC-123", true, "]C0", "ABC-123", "Code 128", false},
		{"]C1010950110153000310ABC", true, "]C1", "010950110153000310ABC", "GS1-128", true},
		{"]E04006381333931", true, "]E0", "4006381333931", "EAN-13/UPC-A/UPC-E", false},
		{"]E496385074", true, "]E4", "96385074", "EAN-8", false},
		{"]E112", true, "]E1", "12", "EAN/UPC 2-digit add-on", false},
		{"]E212345", true, "]E2", "12345", "EAN/UPC 5-digit add-on", false},
		{"]e00109501101530003", true, "]e0", "0109501101530003", "GS1 DataBar", true},
		{"]d1hello", true, "]d1", "hello", "Data Matrix", false},
		{"]d2010950110153000310ABC", true, "]d2", "010950110153000310ABC", "GS1 DataMatrix", true},
		{"]Q1https://example.com", true, "]Q1", "https://example.com", "QR Code", false},
		{"]Q30109501101530003", true, "]Q3", "0109501101530003", "GS1 QR Code", true},
		{"]J10109501101530003", true, "]J1", "0109501101530003", "GS1 DotCode", true},
		{"]A0CODE39", true, "]A0", "CODE39", "Code 39", false},
		{"]I012345678", true, "]I0", "12345678", "ITF", false},
		{"]L0pdf", true, "]L0", "pdf", "PDF417", false},
		{"]C9x", true, "]C9", "x", "Code 128", false},
		{"]W7x", true, "]W7", "x", "unknown ]W7", false},
		{"]C1", true, "]C1", "", "GS1-128", true},
		// Not identifiers.
		{"]C", false, "", "]C", "unknown", false},
		{"C1x", false, "", "C1x", "unknown", false},
		{"]1Cx", false, "", "]1Cx", "unknown", false},
		{"]C-x", false, "", "]C-x", "unknown", false},
		{"", false, "", "", "unknown", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			id, rest, ok := Split(tt.in)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.id, id.String())
			assert.Equal(t, tt.rest, rest)
			assert.Equal(t, tt.symbology, id.Symbology())
			assert.Equal(t, tt.gs1, id.GS1())
		})
	}
}

func TestParse(t *testing.T) {
	id, err := Parse("]d2")
	require.NoError(t, err)
	assert.Equal(t, ID{'d', '2'}, id)
	assert.True(t, id.GS1())
	assert.False(t, id.EANUPC())

	for _, bad := range []string{"", "]d", "]d22", "d2x", "]!2"} {
		_, err := Parse(bad)
		assert.Error(t, err, bad)
	}
	e4, err := Parse("]E4")
	require.NoError(t, err)
	assert.True(t, e4.EANUPC())
}

func FuzzSplit(f *testing.F) {
	for _, s := range []string{"]C1010950110153000310ABC", "]E0123", "]", "]]]", "abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, rest, ok := Split(s)
		if !ok {
			if rest != s || !id.IsZero() {
				t.Fatalf("Split(%q) not ok but changed input", s)
			}
			return
		}
		if id.String()+rest != s {
			t.Fatalf("Split(%q) = %q + %q does not rebuild the input", s, id, rest)
		}
		_ = id.Symbology()
	})
}
