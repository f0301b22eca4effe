package badger

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
)

// TestStockKeyLayoutBeforeOwnersReadsAsAvailable: a data directory written
// before owners and statuses holds k/{wh}\0{loc}\0{sku}\0{lot}; those bytes
// are still the key of owner "" and status available, in both directions.
func TestStockKeyLayoutBeforeOwnersReadsAsAvailable(t *testing.T) {
	old := []byte("k/w\x00L-1\x00s\x00A")
	k, ok := parseStockKey(old)
	require.True(t, ok)
	require.Equal(t, ledger.Key{WH: "w", Location: "L-1", SKU: "s", Lot: "A"}, k)
	require.Equal(t, old, stockKey(k))
	require.Equal(t, []byte("d/w\x00L-1\x00s\x00A\x00"), deltaPrefix(k))
}

// TestStockKeyPathsRoundTripAndNeverNest: every key reads back from its
// bytes, and no key's delta prefix is a prefix of another key's delta
// prefix (a sum over one key's deltas never reads another's).
func TestStockKeyPathsRoundTripAndNeverNest(t *testing.T) {
	code := rapid.SampledFrom([]string{"", "A", "AB", "acme", "x y"})
	key := rapid.Custom(func(t *rapid.T) ledger.Key {
		return ledger.Key{WH: "w", Location: "L", SKU: rapid.SampledFrom([]string{"s", "s2"}).Draw(t, "sku"), Lot: code.Draw(t, "lot"),
			Owner: code.Draw(t, "owner"), Status: protocol.StockStatus(rapid.IntRange(0, 3).Draw(t, "status"))}
	})
	rapid.Check(t, func(t *rapid.T) {
		a, b := key.Draw(t, "a"), key.Draw(t, "b")
		got, ok := parseStockKey(stockKey(a))
		require.True(t, ok)
		require.Equal(t, a, got)
		if a != b {
			require.False(t, bytes.HasPrefix(deltaPrefix(a), deltaPrefix(b)), "%v nests in %v", a, b)
			require.NotEqual(t, stockKey(a), stockKey(b))
		}
	})
}

// TestDeltaKeyBuiltInPlaceEqualsTheLayout: the delta key the apply builds
// into one buffer is deltaPrefix(k) + orderBytes(o) (the layout), byte for
// byte, and deltaKeyLen is its length.
func TestDeltaKeyBuiltInPlaceEqualsTheLayout(t *testing.T) {
	code := rapid.SampledFrom([]string{"", "A", "AB", "acme", "x y", "é"})
	rapid.Check(t, func(t *rapid.T) {
		k := ledger.Key{WH: code.Draw(t, "wh"), Location: code.Draw(t, "loc"), SKU: code.Draw(t, "sku"), Lot: code.Draw(t, "lot"),
			Owner: code.Draw(t, "owner"), Status: protocol.StockStatus(rapid.IntRange(0, 3).Draw(t, "status"))}
		o := ledger.Order{HLC: protocol.HLC(rapid.Uint64().Draw(t, "hlc")), GW: code.Draw(t, "gw"), Seq: rapid.Uint64().Draw(t, "seq")}
		want := append(deltaPrefix(k), orderBytes(o)...)
		got := appendDeltaKey(nil, k, o)
		require.Equal(t, want, got)
		require.Len(t, got, deltaKeyLen(k, o))
		require.Equal(t, []byte(pfxKey+keyPath(k)), append([]byte(pfxKey), appendKeyPath(nil, k)...))
	})
}
