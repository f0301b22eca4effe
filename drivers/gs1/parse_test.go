package gs1

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testOpts = Options{Now: func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }}

// Vectors: "010541234500001310ABC123<GS>17290331" and
// "31030001890105412345000013<GS>10XYZ" are from the Gs1DigitalLinkLib
// Parser.feature test table; GTIN 09501101530003 is the GS1 General
// Specifications' example GTIN; the rest are built from them.
func TestParseElementString(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"GS separated", "010541234500001310ABC123\x1d17290331",
			map[string]string{"01": "05412345000013", "10": "ABC123", "17": "290331"}},
		{"measure first", "31030001890105412345000013\x1d10XYZ",
			map[string]string{"3103": "000189", "01": "05412345000013", "10": "XYZ"}},
		{"AIM ]C1", "]C1010950110153000317260731\x1d10AB-123",
			map[string]string{"01": "09501101530003", "17": "260731", "10": "AB-123"}},
		{"AIM ]d2", "]d201095011015300031726073110AB-123\x1d21SN1",
			map[string]string{"01": "09501101530003", "17": "260731", "10": "AB-123", "21": "SN1"}},
		{"AIM ]Q3", "]Q30109501101530003", map[string]string{"01": "09501101530003"}},
		{"AIM ]e0", "]e00109501101530003", map[string]string{"01": "09501101530003"}},
		{"AIM ]J1", "]J10109501101530003", map[string]string{"01": "09501101530003"}},
		{"leading GS", "\x1d0109501101530003\x1d10LOT1", map[string]string{"01": "09501101530003", "10": "LOT1"}},
		{"FNC1 stripped, variable last", "0109501101530003172607311012345",
			map[string]string{"01": "09501101530003", "17": "260731", "10": "12345"}},
		{"bracketed", "(01)09501101530003(17)260731(10)AB(2",
			map[string]string{"01": "09501101530003", "17": "260731", "10": "AB(2"}},
		{"bracketed escaped parenthesis", `(10)AB\(12)C(21)X`, map[string]string{"10": "AB(12)C", "21": "X"}},
		{"location", "4149520123456788\x1d254A-12", map[string]string{"414": "9520123456788", "254": "A-12"}},
		{"order", "400PO-4711", map[string]string{"400": "PO-4711"}},
		{"counts", "0209501101530003\x1d3712", map[string]string{"02": "09501101530003", "37": "12"}},
		{"fixed-length non-predefined AI without GS", "8006095011015300030102" + "10L",
			map[string]string{"8006": "095011015300030102", "10": "L"}},
		{"GDTI with serial", "2539520123456788ABC\x1d10L", map[string]string{"253": "9520123456788ABC", "10": "L"}},
		{"repeated same value", "0109501101530003\x1d0109501101530003", map[string]string{"01": "09501101530003"}},
		{"internal", "91Any:thing\x1d99?", map[string]string{"91": "Any:thing", "99": "?"}},
		{"CPID set 39", "8010AB#-/12", map[string]string{"8010": "AB#-/12"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, err := ParseElementString(tt.in, testOpts)
			require.NoError(t, err)
			assert.Equal(t, tt.want, es.Map())
		})
	}
}

func TestParseElementStringErrors(t *testing.T) {
	tests := []struct {
		name, in, err string
	}{
		{"unknown AI", "0109501101530003" + "2345", "gs1: unknown AI 23 at position 16"},
		{"unknown 3-digit AI", "]C1" + "0109501101530003" + "3381000100", "gs1: unknown AI 338 at position 19"},
		{"unknown AI bracketed", "(01)09501101530003(99)x(238)y", "gs1: unknown AI 238 at position 23"},
		{"bracketed AI too long", "(01)09501101530003(99)x(12345)y", "AI ? at position 23"},
		{"check digit", "0109501101530004", "gs1: AI 01 at position 0: GTIN \"09501101530004\": check digit mismatch"},
		{"month 13", "0109501101530003" + "17261301", "gs1: AI 17 at position 16: invalid date 261301: month 13"},
		{"day 31 in April", "17260431", "day 31"},
		{"too short", "01123", "gs1: AI 01 at position 0: want 14 characters, got 3"},
		{"lot too long", "10ABCDEFGHIJKLMNOPQRSTU", "too long"},
		{"space not in set 82", "10AB C", "character ' ' at value position 2 is not allowed"},
		{"set 39 rejects lowercase", "8010abc", "character 'a'"},
		{"empty variable value", "10\x1d21X", "too short"},
		{"non-digit count", "30AB", "non-digit"},
		{"conflicting repeat", "10A\x1d10B", "repeated"},
		{"not GS1 symbology", "]C0ABC", "symbology ]C0 (Code 128) does not carry a GS1 element string"},
		{"empty", "]C1", "empty element string"},
		{"AI cut off", "31", "unknown AI 31"},
		{"bad bracket", "(01)09501101530003x(", ""},
		{"7003 day 00", "7003260100" + "1230", "day 00"},
		{"7003 hour 24", "7003260101" + "2400", "invalid time"},
		{"measure 3106 undefined", "3106000100", "unknown AI 3106"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseElementString(tt.in, testOpts)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
	_, err := ParseElementString("0109501101530003"+"2345", testOpts)
	var e *Error
	require.True(t, errors.As(err, &e))
	assert.Equal(t, 16, e.Pos)
	assert.ErrorIs(t, err, ErrUnknownAI)
	_, err = ParseElementString("0109501101530004", testOpts)
	assert.ErrorIs(t, err, ErrCheckDigit)
}

// Dates follow the GS1 General Specifications 7.12 century rule and
// day 00 = last day of the month.
func TestDates(t *testing.T) {
	at := func(y int) Options {
		return Options{Now: func() time.Time { return time.Date(y, 6, 1, 0, 0, 0, 0, time.UTC) }}
	}
	tests := []struct {
		in   string
		now  int
		want string
	}{
		{"17260731", 2026, "2026-07-31"},
		{"17260200", 2026, "2026-02-28"},
		{"17280200", 2026, "2028-02-29"},
		{"17261200", 2026, "2026-12-31"},
		{"17760101", 2026, "2076-01-01"}, // 50 ahead: same century
		{"17770101", 2026, "1977-01-01"}, // 51 ahead: previous century
		{"17000101", 2099, "2100-01-01"}, // 99 behind: next century
		{"17490101", 2099, "2149-01-01"}, // 50 behind: next century
		{"17500101", 2099, "2050-01-01"}, // 49 behind: same century
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			es, err := ParseElementString(tt.in, at(tt.now))
			require.NoError(t, err)
			assert.Equal(t, tt.want, es.ExpiryDate())
		})
	}
	es, err := ParseElementString("7003260715"+"1430", testOpts)
	require.NoError(t, err)
	el, _ := es.Element("7003")
	assert.Equal(t, time.Date(2026, 7, 15, 14, 30, 0, 0, time.UTC), el.Date)
}

func TestAccessors(t *testing.T) {
	in := "]C1" + "0109501101530003" + "17260200" + "3103001250" + "3012" + "\x1d" + "10L-7" + "\x1d" + "21S9" +
		"\x1d" + "4149520123456788" + "254BIN-4" + "\x1d" + "400ORD-1"
	es, err := ParseElementString(in, testOpts)
	require.NoError(t, err)
	assert.Equal(t, "09501101530003", es.GTIN())
	assert.Equal(t, "L-7", es.Lot())
	assert.Equal(t, "S9", es.Serial())
	assert.Equal(t, "ORD-1", es.Order())
	assert.Equal(t, "2026-02-28", es.ExpiryDate())
	qty, ok := es.Qty()
	assert.True(t, ok)
	assert.Equal(t, 12, qty)
	gln, ext, ok := es.Location()
	assert.True(t, ok)
	assert.Equal(t, "9520123456788", gln)
	assert.Equal(t, "BIN-4", ext)
	assert.Equal(t, "", es.SSCC())
	assert.Equal(t, "(01)09501101530003(17)260200(3103)001250(30)12(10)L-7(21)S9(414)9520123456788(254)BIN-4(400)ORD-1", es.String())
	again, err := ParseElementString(es.ElementString(), testOpts)
	require.NoError(t, err)
	assert.Equal(t, es.Map(), again.Map())
	el, _ := es.Element("3103")
	assert.Equal(t, "NET WEIGHT (kg)", el.Title())
}

func TestMeasure(t *testing.T) {
	tests := []struct {
		in, dec string
		f       float64
	}{
		{"3103000189", "0.189", 0.189}, // Gs1DigitalLinkLib Parser.feature value
		{"3102001250", "12.50", 12.5},
		{"3100000012", "12", 12},
		{"3105000000", "0.00000", 0},
		{"3925" + "12345", "0.12345", 0.12345},
		{"3922" + "5", "0.05", 0.05},
	}
	for _, tt := range tests {
		es, err := ParseElementString(tt.in, testOpts)
		require.NoError(t, err, tt.in)
		dec, f, ok := es[0].Measure()
		assert.True(t, ok)
		assert.Equal(t, tt.dec, dec, tt.in)
		assert.InDelta(t, tt.f, f, 1e-12, tt.in)
	}
	es, _ := ParseElementString("10A", testOpts)
	_, _, ok := es[0].Measure()
	assert.False(t, ok)
}

func TestLookupAI(t *testing.T) {
	info, ok := LookupAI("253")
	require.True(t, ok)
	assert.Equal(t, "N13+X..17", info.Format)
	assert.Equal(t, 13, info.MinLen)
	assert.Equal(t, 30, info.MaxLen)
	assert.True(t, info.CheckDigit)
	assert.False(t, info.Predefined)
	info, _ = LookupAI("3103")
	assert.Equal(t, 3, info.Decimals)
	assert.True(t, info.Predefined)
	info, _ = LookupAI("414")
	assert.True(t, info.Predefined)
	assert.Equal(t, -1, info.Decimals)
	for _, ai := range []string{"00", "01", "02", "10", "11", "13", "15", "16", "17", "20", "21", "22", "30", "37",
		"240", "241", "250", "251", "253", "254", "255", "3100", "3165", "3205", "3375", "3695", "400", "401",
		"402", "403", "410", "417", "420", "421", "7003", "8003", "8004", "8006", "8017", "8018", "8020", "90", "91", "99"} {
		_, ok := LookupAI(ai)
		assert.True(t, ok, ai)
	}
	for _, ai := range []string{"3380", "3580", "3106", "23", "1"} {
		_, ok := LookupAI(ai)
		assert.False(t, ok, ai)
	}
}

func FuzzParseElementString(f *testing.F) {
	for _, s := range []string{
		"]C1010950110153000317260731\x1d10AB-123",
		"(01)09501101530003(17)260731(10)AB",
		"\x1d0109501101530003\x1d10LOT1",
		"31030001890105412345000013\x1d10XYZ",
		"4149520123456788\x1d254A-12",
		"7003260101" + "2400",
		"(99)x(12345)y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		es, err := ParseElementString(s, testOpts)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "gs1: ") {
				t.Fatalf("error without package prefix: %v", err)
			}
			return
		}
		// A valid parse round-trips through both output forms.
		again, err := ParseElementString(es.ElementString(), testOpts)
		if err != nil {
			t.Fatalf("re-parse of %q (from %q): %v", es.ElementString(), s, err)
		}
		if es.String() != again.String() {
			t.Fatalf("round trip %q → %q", es.String(), again.String())
		}
	})
}

func FuzzParseDigitalLink(f *testing.F) {
	for _, s := range []string{
		"https://id.gs1.org/01/05412345000013/22/AJY3095721P49/10/ABC123/21/72292641703",
		"https://id.gs1.org/00/106141412345678908?02=00614141123452&37=25&10=ABC123",
		"http://example.com/414/9520123456788/254/A-12?x=1",
		"https://example.com/01/09520123456788/10/A%ZZ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		es, err := ParseDigitalLink(s, testOpts)
		if err != nil {
			return
		}
		if len(es) == 0 {
			t.Fatalf("%q parsed to no elements", s)
		}
	})
}

func FuzzExpandUPCE(f *testing.F) {
	for _, s := range []string{"01259814", "124560", "0125981"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ExpandUPCE(s)
		if err == nil && (len(a) != 12 || !ValidCheckDigit(a)) {
			t.Fatalf("ExpandUPCE(%q) = %q, not a valid UPC-A", s, a)
		}
	})
}
