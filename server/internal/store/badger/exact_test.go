package badger

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// TestEveryOpAppliedExactlyOnce: 400 ops, each on a key of its own, sent
// in batches and then all again (redelivery). Every key ends at exactly 1,
// so an apply that drops one op and applies another twice — which a check
// of totals, or of one shared key, would not see — fails here by name.
func TestEveryOpAppliedExactlyOnce(t *testing.T) {
	s, err := Open(Options{InMemory: true})
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	const n, per = 400, 50
	send := func() {
		for first := uint64(1); first <= n; first += per {
			b := &protocol.OpBatch{Header: protocol.Header{WH: "W", GW: "g"}, First: first, Last: first + per - 1}
			for seq := first; seq <= b.Last; seq++ {
				b.Ops = append(b.Ops, protocol.Op{Seq: seq, HLC: protocol.MakeHLC(int64(seq), 0), Kind: protocol.OpReceive, Location: "L", SKU: fmt.Sprintf("S%03d", seq), Qty: 1})
			}
			_, err := s.ApplyBatch(ctx, "W", "g", b)
			require.NoError(t, err)
		}
	}
	send()
	send()
	rows, err := s.Stock(ctx, store.StockQuery{Warehouse: "W"})
	require.NoError(t, err)
	got := map[string]int64{}
	for _, r := range rows {
		got[r.SKU] = r.OnHand
	}
	for seq := 1; seq <= n; seq++ {
		sku := fmt.Sprintf("S%03d", seq)
		require.Equal(t, int64(1), got[sku], "op %d (%s) applied %d times", seq, sku, got[sku])
	}
	require.Len(t, got, n)
}
