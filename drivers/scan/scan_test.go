package scan

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shelfsync/shelfsync/drivers/gs1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var opts = Options{Now: func() time.Time { return time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC) }}

// GTIN vectors: EAN-13 4006381333931, UPC-A 036000291452 and EAN-8
// 96385074 are the worked examples of the EAN-13, UPC and EAN-8 articles
// of the English Wikipedia; 09501101530003 is the GS1 General
// Specifications' example GTIN; UPC-E 01259814 ↔ UPC-A 012100005984.
func TestDecode(t *testing.T) {
	tests := []struct {
		raw  string
		want Scan
	}{
		{"CMD:RECEIVE", Scan{Kind: KindCommand, Command: Receive}},
		{"cmd:done\r\n", Scan{Kind: KindCommand, Command: Done}},
		{"CMD:Cancel", Scan{Kind: KindCommand, Command: Cancel}},
		{"OP:alice", Scan{Kind: KindOperator, Value: "alice"}},
		{"LOC:A-01-03", Scan{Kind: KindLocation, Value: "A-01-03"}},
		{"PO:4500012345", Scan{Kind: KindPO, Value: "4500012345"}},
		{"ORD:SO-77", Scan{Kind: KindOrder, Value: "SO-77"}},
		{"TASK:T9", Scan{Kind: KindTask, Value: "T9"}},
		{"QTY:12", Scan{Kind: KindQty, Qty: 12, HasQty: true}},
		{"QTY:-3", Scan{Kind: KindQty, Qty: -3, HasQty: true}},
		{"QTY:+3", Scan{Kind: KindQty, Qty: 3, HasQty: true}},
		{"QTY:0", Scan{Kind: KindQty, Qty: 0, HasQty: true}},
		{"LOT:L 42", Scan{Kind: KindLot, Value: "L 42", Lot: "L 42"}},
		{"REASON:damaged", Scan{Kind: KindReason, Value: "DAMAGED"}},
		{"OWNER:acme", Scan{Kind: KindOwner, Value: "acme"}},
		{"owner: Globex ", Scan{Kind: KindOwner, Value: "Globex"}},
		{"SKU:WIDGET-1", Scan{Kind: KindItem, Value: "WIDGET-1", SKU: "WIDGET-1"}},
		{"]C0LOC:B-2", Scan{AIM: "]C0", Symbology: "Code 128", Kind: KindLocation, Value: "B-2"}},
		{"4006381333931", Scan{Kind: KindItem, Symbology: "EAN-13", GTIN: "04006381333931"}},
		{"036000291452", Scan{Kind: KindItem, Symbology: "UPC-A", GTIN: "00036000291452"}},
		{"96385074", Scan{Kind: KindItem, Symbology: "EAN-8", GTIN: "00000096385074"}},
		{"09501101530003", Scan{Kind: KindItem, Symbology: "GTIN-14", GTIN: "09501101530003"}},
		{"]E04006381333931", Scan{AIM: "]E0", Symbology: "EAN-13/UPC-A/UPC-E", Kind: KindItem, GTIN: "04006381333931"}},
		{"]E496385074", Scan{AIM: "]E4", Symbology: "EAN-8", Kind: KindItem, GTIN: "00000096385074"}},
		{"]E001259814", Scan{AIM: "]E0", Symbology: "UPC-E", Kind: KindItem, GTIN: "00012100005984"}},
		{"]E3400638133393112", Scan{AIM: "]E3", Symbology: "EAN-13/UPC-A/UPC-E with add-on", Kind: KindItem, GTIN: "04006381333931"}},
		{"]C1010950110153000317260700\x1d10LOT-9\x1d21S1", Scan{AIM: "]C1", Symbology: "GS1-128", Kind: KindItem,
			GTIN: "09501101530003", Lot: "LOT-9", Serial: "S1", Expiry: "2026-07-31",
			AIs: map[string]string{"01": "09501101530003", "17": "260700", "10": "LOT-9", "21": "S1"}}},
		{"]d20109501101530003\x1d3712", Scan{AIM: "]d2", Symbology: "GS1 DataMatrix", Kind: KindItem,
			GTIN: "09501101530003", Qty: 12, HasQty: true, AIs: map[string]string{"01": "09501101530003", "37": "12"}}},
		{"(02)09501101530003(30)5", Scan{Symbology: "GS1 element string", Kind: KindItem, GTIN: "09501101530003",
			Qty: 5, HasQty: true, AIs: map[string]string{"02": "09501101530003", "30": "5"}}},
		{"\x1d0109501101530003", Scan{Symbology: "GS1 element string", Kind: KindItem, GTIN: "09501101530003",
			AIs: map[string]string{"01": "09501101530003"}}},
		{"010950110153000310L1", Scan{Symbology: "GS1 element string", Kind: KindItem, GTIN: "09501101530003", Lot: "L1",
			AIs: map[string]string{"01": "09501101530003", "10": "L1"}}},
		{"]Q3(414)9520123456788(254)A1", Scan{}}, // brackets after ]Q3 are not scanner output: rejected below
		{"(414)9520123456788(254)BIN-7", Scan{Symbology: "GS1 element string", Kind: KindLocation, Value: "9520123456788/BIN-7",
			AIs: map[string]string{"414": "9520123456788", "254": "BIN-7"}}},
		{"]Q34149520123456788", Scan{AIM: "]Q3", Symbology: "GS1 QR Code", Kind: KindLocation, Value: "9520123456788",
			AIs: map[string]string{"414": "9520123456788"}}},
		{"(400)PO-1", Scan{Symbology: "GS1 element string", Kind: KindOrder, Value: "PO-1", AIs: map[string]string{"400": "PO-1"}}},
		{"(10)ABC", Scan{Symbology: "GS1 element string", Kind: KindLot, Value: "ABC", Lot: "ABC", AIs: map[string]string{"10": "ABC"}}},
		{"]Q1https://id.gs1.org/01/09520123456788/10/ABC123/21/12345?17=260400",
			Scan{AIM: "]Q1", Symbology: "QR Code", Kind: KindItem, GTIN: "09520123456788", Lot: "ABC123", Serial: "12345",
				Expiry: "2026-04-30", AIs: map[string]string{"01": "09520123456788", "10": "ABC123", "21": "12345", "17": "260400"}}},
		{"https://example.com/414/9520123456788", Scan{Symbology: "GS1 Digital Link", Kind: KindLocation, Value: "9520123456788",
			AIs: map[string]string{"414": "9520123456788"}}},
		// 106141412345678908 is the GS1 General Specifications' example SSCC.
		{"(00)106141412345678908", Scan{Symbology: "GS1 element string", Kind: KindPallet, Value: "106141412345678908",
			SSCC: "106141412345678908", AIs: map[string]string{"00": "106141412345678908"}}},
		{"]C100106141412345678908", Scan{AIM: "]C1", Symbology: "GS1-128", Kind: KindPallet, Value: "106141412345678908",
			SSCC: "106141412345678908", AIs: map[string]string{"00": "106141412345678908"}}},
		{"00106141412345678908", Scan{Symbology: "GS1 element string", Kind: KindPallet, Value: "106141412345678908",
			SSCC: "106141412345678908", AIs: map[string]string{"00": "106141412345678908"}}},
		// A logistic label: the SSCC names the pallet; its content fields are kept.
		{"]C100106141412345678908020061414112345217260700" + "3725\x1d10ABC", Scan{AIM: "]C1", Symbology: "GS1-128",
			Kind: KindPallet, Value: "106141412345678908", SSCC: "106141412345678908", GTIN: "00614141123452",
			Qty: 25, HasQty: true, Lot: "ABC", Expiry: "2026-07-31",
			AIs: map[string]string{"00": "106141412345678908", "02": "00614141123452", "37": "25", "17": "260700", "10": "ABC"}}},
		{"https://id.gs1.org/00/106141412345678908", Scan{Symbology: "GS1 Digital Link", Kind: KindPallet,
			Value: "106141412345678908", SSCC: "106141412345678908", AIs: map[string]string{"00": "106141412345678908"}}},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := opts.Decode(tt.raw)
			if tt.want.Kind == "" {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			got.Raw = ""
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct{ raw, err string }{
		{"4006381333932", `scan: gs1: GTIN-13 "4006381333932": check digit mismatch: last digit 2, want 1`},
		{"]E04006381333932", "check digit"},
		{"]E001259815", "check digit"},
		{"]E0ABC", "not all digits"},
		{"]C1" + "0109501101530003" + "2345", "scan: gs1: unknown AI 23 at position 19"},
		{"0109501101530003" + "17261301", "invalid date 261301: month 13"},
		{"CMD:DANCE", `unknown command "DANCE"`},
		{"LOC:", "LOC: label has no value"},
		{"QTY:many", `QTY: "many" is not a whole number`},
		{"QTY:+-1", "not a whole number"},
		{"SKU:A" + string(make([]byte, 10)), "control character U+0000 at value position 1"},
		{"LOT:ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLM", "value is 65 bytes, at most 64 allowed"},
		{"OP:\xff", "not valid UTF-8"},
		{"hello world", "not a shelfsync label"},
		{"12345", "AI 12 at position 0: want 6 characters, got 3"},
		{"", "empty scan"},
		{"]C0", "empty scan"},
		{"(00)106141412345678907", `SSCC "106141412345678907": check digit mismatch: last digit 7, want 8`},
		{"(00)10614141234567890", "too short"},
		{"(21)S1", "has no AI shelfsync uses"},
		{"https://example.com/01/09520123456789", "check digit"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			_, err := opts.Decode(tt.raw)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
	_, err := opts.Decode("hello")
	assert.True(t, errors.Is(err, ErrUnknownLabel))
}

func TestJSON(t *testing.T) {
	tests := []struct {
		raw  string
		epc  bool
		want string
	}{
		{"]C1010950110153000317260700\x1d10LOT-9\x1d3712", false,
			`{"symbology":"GS1-128","aim":"]C1","kind":"item","lot":"LOT-9","expiry":"2026-07-31","qty":12,` +
				`"ais":{"01":"09501101530003","10":"LOT-9","17":"260700","37":"12"},"gtin":"09501101530003"}`},
		{"CMD:PICK", false, `{"kind":"command","command":"PICK"}`},
		{"(00)106141412345678908", false, `{"symbology":"GS1 element string","kind":"pallet","value":"106141412345678908",` +
			`"sscc":"106141412345678908","ais":{"00":"106141412345678908"}}`},
		{"QTY:0", false, `{"kind":"qty","qty":0}`},
		{"3074257BF7194E4000001A85", true,
			`{"scheme":"sgtin-96","filter":3,"uri":"urn:epc:id:sgtin:0614141.812345.6789",` +
				`"tag_uri":"urn:epc:tag:sgtin-96:3.0614141.812345.6789","gtin":"80614141123458","serial":"6789"}`},
		{"3174257BF4499602D2000000", true,
			`{"scheme":"sscc-96","filter":3,"sscc":"106141412345678908","uri":"urn:epc:id:sscc:0614141.1234567890",` +
				`"tag_uri":"urn:epc:tag:sscc-96:3.0614141.1234567890"}`},
		{"E2801160600002", true, `{"scheme":"raw","uri":"urn:epc:raw:56.xE2801160600002","hex":"E2801160600002"}`},
		{"4006381333932", false, `{"error":"scan: gs1: GTIN-13 \"4006381333932\": check digit mismatch: last digit 2, want 1"}`},
		{"307C257BF7194E4000001A85", true, `{"error":"scan: epc: sgtin-96: partition 7 at bits 11-13: value out of range (want 0-6)"}`},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			out, err := opts.JSON(tt.raw, tt.epc)
			assert.Equal(t, out.Error != "", err != nil)
			b, merr := json.Marshal(out)
			require.NoError(t, merr)
			assert.JSONEq(t, tt.want, string(b))
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"CMD:RECEIVE", "QTY:-3", "]E001259814", "]C1010950110153000317260700\x1d10LOT-9",
		"(414)9520123456788(254)BIN-7", "https://id.gs1.org/01/09520123456788/10/ABC123", "4006381333931",
		"QTY:9223372036854775807", "QTY:-1000000001", "QTY:+1000000000",
		"(00)106141412345678908", "]C100106141412345678908\x1d0200614141123452", "https://id.gs1.org/00/106141412345678908",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		s, err := opts.Decode(raw)
		if err != nil {
			return
		}
		if s.Qty > MaxQty || s.Qty < -MaxQty {
			t.Fatalf("Decode(%q): qty %d beyond the bound", raw, s.Qty)
		}
		if s.Kind == "" {
			t.Fatalf("Decode(%q) succeeded without a kind", raw)
		}
		if s.Kind == KindItem && s.GTIN == "" && s.SKU == "" {
			t.Fatalf("Decode(%q): item without GTIN or SKU", raw)
		}
		if (s.Kind == KindPallet) != (s.SSCC != "") {
			t.Fatalf("Decode(%q): kind %s with SSCC %q", raw, s.Kind, s.SSCC)
		}
		if s.Kind == KindPallet && gs1.ValidateSSCC(s.SSCC) != nil {
			t.Fatalf("Decode(%q): pallet with invalid SSCC %q: %v", raw, s.SSCC, gs1.ValidateSSCC(s.SSCC))
		}
	})
}

func TestQtyBound(t *testing.T) {
	for _, raw := range []string{"QTY:9223372036854775807", "QTY:99999999999999999999", "QTY:-1000000001", "QTY:1000000001"} {
		_, err := Decode(raw)
		if err == nil || !strings.Contains(err.Error(), "beyond") {
			t.Errorf("Decode(%q) = %v, want a bound error", raw, err)
		}
	}
	for raw, want := range map[string]int{"QTY:1000000000": MaxQty, "QTY:-1000000000": -MaxQty, "QTY:+7": 7} {
		s, err := Decode(raw)
		if err != nil || s.Qty != want {
			t.Errorf("Decode(%q) = %d, %v; want %d", raw, s.Qty, err, want)
		}
	}
}
