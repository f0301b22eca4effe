package epc

import (
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/shelfsync/shelfsync/drivers/gs1"
)

// Vectors. 3074257BF7194E4000001A85 is the SGTIN-96 worked example of the
// GS1 EPC Tag Data Standard (appendix E, "urn:epc:tag:sgtin-96:3.0614141.
// 812345.6789"); the SSCC, SGLN, GRAI and GIAI ones with company prefix
// 0614141 / 9521141 are the TDS examples as the GS1 Tag Data Translation
// test suites carry them; the others come from public EPC codec test
// tables (epctagcoder, TDT ports) and were checked against
// the TDS partition tables by hand.
var vectors = []struct {
	hex, tagURI, key string
}{
	{"3074257BF7194E4000001A85", "urn:epc:tag:sgtin-96:3.0614141.812345.6789", "80614141123458"},
	{"3174257BF4499602D2000000", "urn:epc:tag:sscc-96:3.0614141.1234567890", "106141412345678908"},
	{"311BA1B300CE0A6A83000000", "urn:epc:tag:sscc-96:0.952012.03456789123", "095201234567891235"},
	{"3159542C8000000001000000", "urn:epc:tag:sscc-96:2.348338.00000000001", "034833800000000018"},
	{"317400C0E4BB40E618000000", "urn:epc:tag:sscc-96:3.0012345.3141592600", "300123451415926002"},
	{"3276451FD46072000000162E", "urn:epc:tag:sgln-96:3.9521141.12345.5678", "9521141123454"},
	{"32305E30A7466800499602D2", "urn:epc:tag:sgln-96:1.12345678.9012.1234567890", "1234567890128"},
	{"320661AEBD33A287CEA6443D", "urn:epc:tag:sgln-96:0.81830209949.1.583287587901", "8183020994916"},
	{"3374257BF4000200000004D2", "urn:epc:tag:grai-96:3.0614141.00008.1234", "006141410000811234"},
	{"33B4257BF40C0E4000000190", "urn:epc:tag:grai-96:5.0614141.12345.400", "00614141123452400"},
	{"330C75BCD150030000000001", "urn:epc:tag:grai-96:0.123456789.012.1", "012345678901281"},
	{"3474257BF40000000000162E", "urn:epc:tag:giai-96:3.0614141.5678", "06141415678"},
	{"3434257BF400000000002694", "urn:epc:tag:giai-96:1.0614141.9876", "06141419876"},
	{"34344B5A1C00000000000001", "urn:epc:tag:giai-96:1.1234567.1", "12345671"},
	{"3414257BF400000000BC6038", "urn:epc:tag:giai-96:0.0614141.12345400", "061414112345400"},
}

func TestDecodeVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.hex, func(t *testing.T) {
			e, err := DecodeHex(v.hex)
			require.NoError(t, err)
			assert.Equal(t, v.tagURI, e.TagURI())
			assert.Equal(t, v.hex, e.Hex)
			var key string
			switch e.Scheme {
			case SchemeSGTIN96:
				key = e.GTIN
			case SchemeSSCC96:
				key = e.SSCC
			case SchemeSGLN96:
				key = e.GLN
			case SchemeGRAI96:
				key = e.GRAI
			case SchemeGIAI96:
				key = e.GIAI
			}
			assert.Equal(t, v.key, key)
		})
	}
}

func TestDecodeTDSExample(t *testing.T) {
	e, err := DecodeHex("30 74 25 7B F7 19 4E 40 00 00 1A 85")
	require.NoError(t, err)
	assert.Equal(t, EPC{
		Scheme: SchemeSGTIN96, Header: 0x30, Filter: 3, Partition: 5,
		CompanyPrefix: "0614141", Reference: "812345", Serial: "6789",
		GTIN: "80614141123458", Hex: "3074257BF7194E4000001A85",
	}, e)
	assert.Equal(t, "urn:epc:id:sgtin:0614141.812345.6789", e.URI())
	require.NoError(t, gs1.ValidateGTIN(e.GTIN))
}

func TestDecodeRawAndErrors(t *testing.T) {
	// Non-GS1 header: raw, not an error (the SparkFun M6E capture's EPC).
	e, err := DecodeHex("000000000000000000001545")
	require.NoError(t, err)
	assert.Equal(t, SchemeRaw, e.Scheme)
	assert.Equal(t, "urn:epc:raw:96.x000000000000000000001545", e.URI())
	assert.Equal(t, e.URI(), e.TagURI())

	e, err = DecodeHex("E2801160600002")
	require.NoError(t, err)
	assert.Equal(t, SchemeRaw, e.Scheme)

	// 128-bit EPC bank with a 96-bit EPC and zero padding decodes.
	e, err = DecodeHex("3074257BF7194E4000001A850000")
	require.NoError(t, err)
	assert.Equal(t, "urn:epc:id:sgtin:0614141.812345.6789", e.URI())
	// Non-zero trailing bits: not a 96-bit EPC, reported raw.
	e, err = DecodeHex("3074257BF7194E4000001A850001")
	require.NoError(t, err)
	assert.Equal(t, SchemeRaw, e.Scheme)

	tests := []struct{ hex, err string }{
		{"307C257BF7194E4000001A85", "partition 7 at bits 11-13"},
		{"3074257BF7194E40", "sgtin-96 needs 12 bytes, got 8"},
		{"30 7G", "not hexadecimal"},
		{"", "empty EPC"},
	}
	bad := []struct {
		name string
		b    []byte
		err  string
	}{
		{"sgtin company prefix 2^20-1 needs 7 digits",
			build(HeaderSGTIN96, 6, 20, 1<<20-1, 24, 0), "sgtin-96: company prefix 1048575 has more than 6 digits (partition 6)"},
		{"sgtin item reference 2^24-1 needs 8 digits",
			build(HeaderSGTIN96, 6, 20, 1, 24, 1<<24-1), "reference 16777215 has more than 7 digits"},
		{"sgln location reference of 0 digits must be 0",
			build(HeaderSGLN96, 0, 40, 1, 1, 1), "reference 1 must be 0 (partition 0)"},
		{"sscc serial reference 2^18-1 needs 6 digits",
			build(HeaderSSCC96, 0, 40, 1, 18, 1<<18-1), "reference 262143 has more than 5 digits"},
	}
	for _, tt := range bad {
		_, err := Decode(tt.b)
		assert.ErrorContains(t, err, tt.err, tt.name)
		assert.ErrorIs(t, err, ErrRange, tt.name)
	}
	for _, tt := range tests {
		_, err := DecodeHex(tt.hex)
		assert.ErrorContains(t, err, tt.err, tt.hex)
	}
	_, err = DecodeHex("307C257BF7194E4000001A85")
	assert.ErrorIs(t, err, ErrRange)
}

func TestEncodeSGTIN96(t *testing.T) {
	b, err := EncodeSGTIN96(3, "80614141123458", 7, 6789)
	require.NoError(t, err)
	assert.Equal(t, "3074257BF7194E4000001A85", strings.ToUpper(hex.EncodeToString(b)))

	_, err = EncodeSGTIN96(8, "80614141123458", 7, 1)
	assert.ErrorContains(t, err, "filter 8")
	_, err = EncodeSGTIN96(1, "80614141123459", 7, 1)
	assert.ErrorContains(t, err, "check digit")
	_, err = EncodeSGTIN96(1, "0614141123452", 7, 1)
	assert.ErrorContains(t, err, "want 14 digits")
	_, err = EncodeSGTIN96(1, "80614141123458", 5, 1)
	assert.ErrorContains(t, err, "company prefix of 5 digits")
	_, err = EncodeSGTIN96(1, "80614141123458", 7, MaxSGTIN96Serial+1)
	assert.ErrorIs(t, err, ErrRange)
}

// build lays out a 96-bit EPC: header, filter 1, partition, then the
// company prefix and reference fields as (bits, value) pairs.
func build(header byte, part int, cBits int, company uint64, rBits int, ref uint64) []byte {
	b := make([]byte, 12)
	b[0] = header
	putField(b, 8, 3, 1)
	putField(b, 11, 3, uint64(part))
	putField(b, 14, cBits, company)
	putField(b, 14+cBits, rBits, ref)
	return b
}

// TestSGTIN96RoundTrip: any valid GTIN-14, prefix length, filter and serial
// survive encode → decode.
func TestSGTIN96RoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		body := rapid.StringMatching(`[0-9]{13}`).Draw(t, "body")
		c, _ := gs1.CheckDigit(body)
		gtin := body + string(c)
		digits := rapid.IntRange(6, 12).Draw(t, "companyDigits")
		filter := rapid.IntRange(0, 7).Draw(t, "filter")
		serial := rapid.Uint64Range(0, MaxSGTIN96Serial).Draw(t, "serial")

		b, err := EncodeSGTIN96(filter, gtin, digits, serial)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		e, err := Decode(b)
		if err != nil {
			t.Fatalf("decode %X: %v", b, err)
		}
		if e.GTIN != gtin || e.Filter != filter || len(e.CompanyPrefix) != digits ||
			e.Serial != strconv.FormatUint(serial, 10) {
			t.Fatalf("round trip: %+v from gtin=%s digits=%d filter=%d serial=%d", e, gtin, digits, filter, serial)
		}
	})
}

func FuzzDecode(f *testing.F) {
	for _, v := range vectors {
		b, _ := hex.DecodeString(v.hex)
		f.Add(b)
	}
	f.Add([]byte{0x30})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		_ = e.URI()
		_ = e.TagURI()
		if e.GTIN != "" && gs1.ValidateGTIN(e.GTIN) != nil {
			t.Fatalf("decoded invalid GTIN %s from %X", e.GTIN, b)
		}
	})
}
