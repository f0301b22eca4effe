package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
)

// TestLongOfflineBacklogIsReflectedWithoutTxnTooBig: a gateway cut off
// for long has tens of thousands of pending effects when the server's
// stock finally reflects them all at once; they are pruned in bounded
// transactions (one transaction would exceed Badger's limit on a small
// gateway store) and the view ends equal to the server's values.
func TestLongOfflineBacklogIsReflectedWithoutTxnTooBig(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), Small: true})
	require.NoError(t, err)
	defer s.Close()
	const n = 30000
	for i := 0; i < n; i += 1000 {
		ops := make([]protocol.Op, 1000)
		for j := range ops {
			ops[j] = protocol.Op{Kind: protocol.OpReceive, Location: fmt.Sprintf("L%d", (i+j)%50), SKU: fmt.Sprintf("S%d", (i+j)%40), Qty: 1}
		}
		_, err := s.Commit(context.Background(), &Commit{Device: "d", Ops: ops, KeepSession: true})
		require.NoError(t, err)
	}
	// The server has applied everything: 30000 / 200 distinct keys.
	var vals []protocol.StockValue
	for l := 0; l < 50; l++ {
		for k := 0; k < 40; k++ {
			if l%10 == k%10 { // (i%50, i%40) pairs that occur
				vals = append(vals, protocol.StockValue{Location: fmt.Sprintf("L%d", l), SKU: fmt.Sprintf("S%d", k), OnHand: 150})
			}
		}
	}
	require.NoError(t, s.ApplyDownItems(Down{Stock: vals}, n, 1))
	rows, err := s.Stock("", "")
	require.NoError(t, err)
	require.Len(t, rows, len(vals))
	for _, r := range rows {
		require.Equal(t, int64(150), r.OnHand, "%s/%s: server value, pending fully reflected", r.Location, r.SKU)
	}
}
