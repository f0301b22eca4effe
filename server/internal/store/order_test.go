package store

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
)

// An order the order model wrote before orders had one type (external id
// at key 4, lines at 5, status at 6) decodes into the one type.
func TestOrderDecodesTheLegacyLayout(t *testing.T) {
	old := legacyOrder{"wh1", "web-1001", "web", "1001", []OrderLine{{Line: 1, SKU: "A", Lot: "L1", Qty: 4}}, "open", 10, 20, []string{"A"}, 7}
	b, err := protocol.Marshal(old)
	require.NoError(t, err)
	var o Order
	require.NoError(t, protocol.Unmarshal(b, &o))
	require.Equal(t, Order{Warehouse: "wh1", ID: "web-1001", Channel: "web", ExternalID: "1001",
		Lines: []OrderLine{{Line: 1, SKU: "A", Lot: "L1", Qty: 4}}, Status: "open", CreatedMS: 10, UpdatedMS: 20, Short: []string{"A"}, Seq: 7}, o)
}

// An order round-trips in the current layout, and a record with only the
// detector's fields (1–5, as PutOrder alone wrote it) still decodes.
func TestOrderRoundTrips(t *testing.T) {
	o := Order{Warehouse: "wh1", ID: "O1", Channel: "web", ExternalID: "x", Lines: []OrderLine{{Line: 1, SKU: "A", Qty: 2}},
		Status: "shipped", CreatedMS: 1, UpdatedMS: 2, Seq: 3}
	b, err := protocol.Marshal(o)
	require.NoError(t, err)
	var got Order
	require.NoError(t, protocol.Unmarshal(b, &got))
	require.Equal(t, o, got)

	minimal := struct {
		Warehouse string      `cbor:"1,keyasint"`
		ID        string      `cbor:"2,keyasint"`
		Lines     []OrderLine `cbor:"4,keyasint"`
		Status    string      `cbor:"5,keyasint"`
	}{"w", "O2", []OrderLine{{Line: 1, SKU: "x", Qty: 1}}, "open"}
	b, err = protocol.Marshal(minimal)
	require.NoError(t, err)
	got = Order{}
	require.NoError(t, protocol.Unmarshal(b, &got))
	require.Equal(t, Order{Warehouse: "w", ID: "O2", Lines: []OrderLine{{Line: 1, SKU: "x", Qty: 1}}, Status: "open"}, got)

	require.Error(t, protocol.Unmarshal([]byte{0xa1, 0x04, 0x01}, &got), "lines that are a number decode in neither layout")
}
