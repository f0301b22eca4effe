package gs1

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Vectors: the id.gs1.org URIs with 05412345000013 and 998440410914660971
// are from Gs1DigitalLinkLib's ExtractFromGs1DigitalLink.feature; the
// 106141412345678908 and 614141123452 ones are biip's documented examples;
// 09520123456788 and 9520123456788 are the GS1 Digital Link standard's
// example keys.
func TestParseDigitalLink(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
	}{
		{"https://id.gs1.org/00/998440410914660971", map[string]string{"00": "998440410914660971"}},
		{"https://id.gs1.org/01/05412345000013/22/AJY3095721P49/10/ABC123/21/72292641703",
			map[string]string{"01": "05412345000013", "22": "AJY3095721P49", "10": "ABC123", "21": "72292641703"}},
		{"https://id.gs1.org/01/05412345000013/21/72292641703",
			map[string]string{"01": "05412345000013", "21": "72292641703"}},
		{"https://id.gs1.org/00/106141412345678908?02=00614141123452&37=25&10=ABC123",
			map[string]string{"00": "106141412345678908", "02": "00614141123452", "37": "25", "10": "ABC123"}},
		{"https://id.gs1.org/01/614141123452?3103=000195",
			map[string]string{"01": "00614141123452", "3103": "000195"}},
		{"https://brand.example.com/shop/products/01/09520123456788/10/AB%2F12%25x/21/12345?17=260400&3103=000195&utm_source=qr",
			map[string]string{"01": "09520123456788", "10": "AB/12%x", "21": "12345", "17": "260400", "3103": "000195"}},
		{"http://example.com/414/9520123456788/254/A-12?x=1", map[string]string{"414": "9520123456788", "254": "A-12"}},
		{"https://example.com/01/01/09520123456788", map[string]string{"01": "09520123456788"}}, // prefix "01"
		{"https://example.com/8006/095201234567880102/21/7", map[string]string{"8006": "095201234567880102", "21": "7"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			require.True(t, IsDigitalLink(tt.in))
			es, err := ParseDigitalLink(tt.in, testOpts)
			require.NoError(t, err)
			assert.Equal(t, tt.want, es.Map())
		})
	}
	es, err := ParseDigitalLink("https://example.com/01/09520123456788/10/L1?17=260400&30=6", testOpts)
	require.NoError(t, err)
	assert.Equal(t, "2026-04-30", es.ExpiryDate())
	assert.Equal(t, "L1", es.Lot())
	q, _ := es.Qty()
	assert.Equal(t, 6, q)
}

func TestParseDigitalLinkErrors(t *testing.T) {
	tests := []struct {
		in, err string
	}{
		{"ftp://example.com/01/09520123456788", "want an http or https URI"},
		{"https:///01/09520123456788", "want an http or https URI"},
		{"https://example.com/products/123", "no GS1 primary key"},
		{"https://example.com/01/09520123456788/21/1/10/2", "no GS1 primary key"}, // qualifiers out of order
		{"https://example.com/01/09520123456788/17/260101", "no GS1 primary key"}, // 17 is not a qualifier
		{"https://example.com/01/09520123456789", "gs1: AI 01 in the URI path: GTIN \"09520123456789\": check digit mismatch"},
		{"https://example.com/01/09520123456788?23=1", "gs1: unknown AI 23 in the URI query"},
		{"https://example.com/01/09520123456788?17=261301", "gs1: AI 17 in the URI query: invalid date 261301: month 13"},
		{"https://example.com/01/09520123456788/10/A%ZZ", "invalid URL escape"},
		{"https://example.com/01/09520123456788/10/A?10=B", "repeated"},
		{"https://example.com/01/09520123456788/10/" + "ABCDEFGHIJKLMNOPQRSTU", "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseDigitalLink(tt.in, testOpts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
	assert.False(t, IsDigitalLink("https://example.com/"))
	assert.False(t, IsDigitalLink("0109520123456788"))
}
