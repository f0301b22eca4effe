package ledger

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
)

func TestAddQty(t *testing.T) {
	for _, tc := range []struct {
		a, b int64
		ok   bool
	}{
		{1, 2, true}, {MaxKeyQty - 1, 1, true}, {MaxKeyQty, 1, false}, {-MaxKeyQty, -1, false},
		{math.MaxInt64, 1, false}, {math.MaxInt64 - 1, math.MaxInt64 - 1, false}, {math.MinInt64, -1, false}, {0, -MaxKeyQty, true},
	} {
		got, err := addQty(tc.a, tc.b)
		if tc.ok {
			require.NoError(t, err)
			require.Equal(t, tc.a+tc.b, got)
		} else {
			require.ErrorIs(t, err, ErrQtyBound, "%d + %d", tc.a, tc.b)
		}
	}
}

// TestCheckQtyRefusesWhatWouldPassTheKeyBound: a key at the bound takes no
// more units (CheckQty says so before anything is written, and Apply's own
// checked sum refuses too); ops covered by a later count change nothing and
// pass.
func TestCheckQtyRefusesWhatWouldPassTheKeyBound(t *testing.T) {
	st := NewMemStore()
	k := Key{WH: "W", Location: "L", SKU: "S"}
	require.NoError(t, st.PutKey(k, KeyState{Sum: MaxKeyQty - 5}))
	op := &protocol.Op{Seq: 1, HLC: 10, Kind: protocol.OpReceive, Location: "L", SKU: "S", Qty: 10}
	require.ErrorIs(t, CheckQty(st, "W", "gw", op), ErrQtyBound)
	_, err := Apply(st, "W", "gw", op)
	require.ErrorIs(t, err, ErrQtyBound)
	ks, _, err := st.GetKey(k)
	require.NoError(t, err)
	require.Equal(t, int64(MaxKeyQty-5), ks.OnHand(), "nothing wrapped")

	small := &protocol.Op{Seq: 2, HLC: 11, Kind: protocol.OpReceive, Location: "L", SKU: "S", Qty: 5}
	require.NoError(t, CheckQty(st, "W", "gw", small))
	pick := &protocol.Op{Seq: 3, HLC: 12, Kind: protocol.OpPick, Location: "L", SKU: "S", Qty: 1}
	require.NoError(t, CheckQty(st, "W", "gw", pick))
}
