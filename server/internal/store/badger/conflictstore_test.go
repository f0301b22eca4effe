package badger

import (
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/conflicts/conflictstest"
)

// TestBadgerConflictIndexesPassTheDetectorProperty runs the conflicts
// package's any-order property against the Badger transaction store.
func TestBadgerConflictIndexesPassTheDetectorProperty(t *testing.T) {
	s, err := Open(Options{InMemory: true})
	require.NoError(t, err)
	defer s.Close()
	conflictstest.CheckStore(t, func(rt *rapid.T, lines map[conflicts.OrderLineKey]int64) (conflicts.Store, ledger.Store) {
		require.NoError(rt, s.db.DropAll())
		txn := s.db.NewTransaction(true)
		rt.Cleanup(txn.Discard)
		for k, q := range lines {
			require.NoError(rt, putI64(txn, []byte(lineKey(pfxOrderLine, k.WH, k.Order, k.Line)), q))
		}
		l := &txnLedger{txn: txn}
		return l, l
	})
}
