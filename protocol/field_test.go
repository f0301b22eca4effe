package protocol

import (
	"strings"
	"testing"
)

func TestCheckFieldRefusesInvisibleCharacters(t *testing.T) {
	for _, v := range []string{"A\aB", "A\x1bB", "A\u202eB", "A\u0085B", "A\x7fB", "A\u2066B", "A\u200fB", "A\x00B", "A\xffB"} {
		if err := CheckField("sku", v, true); err == nil {
			t.Errorf("CheckField(%q) = nil, want an error", v)
		}
		op := Op{Seq: 1, Kind: OpReceive, Location: "L", SKU: v, Qty: 1}
		if err := op.Validate(); err == nil || !strings.Contains(err.Error(), "sku") {
			t.Errorf("Validate with sku %q = %v, want a sku error", v, err)
		}
	}
	for _, v := range []string{"ABC-1", "Müller", "lot/ä 12", "日本"} {
		if err := CheckField("sku", v, true); err != nil {
			t.Errorf("CheckField(%q) = %v", v, err)
		}
	}
}

func TestValidateQtyBound(t *testing.T) {
	for _, op := range []Op{
		{Seq: 1, Kind: OpReceive, Location: "L", SKU: "S", Qty: MaxOpQty + 1},
		{Seq: 1, Kind: OpAdjust, Location: "L", SKU: "S", Qty: -MaxOpQty - 1},
		{Seq: 1, Kind: OpAdjust, Location: "L", SKU: "S", Qty: -9223372036854775808},
		{Seq: 1, Kind: OpCount, Location: "L", SKU: "S", Qty: 9223372036854775807},
		{Seq: 1, Kind: OpCount, Scope: ScopeLocation, Location: "L", Lines: []CountLine{{SKU: "S", Qty: MaxOpQty + 1}}},
	} {
		if err := op.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want a bound error", op)
		}
	}
	ok := Op{Seq: 1, Kind: OpAdjust, Location: "L", SKU: "S", Qty: -MaxOpQty}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate at the bound: %v", err)
	}
}
