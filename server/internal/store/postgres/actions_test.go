package postgres

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/storetest"
)

// TestIntegrationPostgresReapply re-applies a quarantined op that has
// become valid. This store has no master-data check, so the contract suite
// cannot quarantine a valid op; the test fixes the stored op instead, as
// an operator's correction of the data behind it would.
func TestIntegrationPostgresReapply(t *testing.T) {
	s := openTest(t, freshSchema(t))
	ctx := context.Background()
	res := storetest.Apply(t, s, storetest.Batch("w", "g", storetest.Receive(1, 1000, "L", "s", 1), storetest.Receive(2, 2000, "L", "", 4)))
	require.Equal(t, 1, res.Quarantined)
	fixed, err := protocol.Marshal(storetest.Receive(2, 2000, "L", "s", 4))
	require.NoError(t, err)
	_, err = s.pool.Exec(ctx, `UPDATE quarantine SET body = $1 WHERE wh = 'w' AND gw = 'g' AND seq = 2`, fixed)
	require.NoError(t, err)

	res, err = s.QuarantineAction(ctx, "w", "g", 2, "reapply", "lead")
	require.NoError(t, err)
	require.Equal(t, 1, res.Applied)
	require.Equal(t, []ledger.Change{{Key: ledger.Key{WH: "w", Location: "L", SKU: "s"}, Before: 1, After: 5, Existed: true}}, res.Changes)

	rows, err := s.Stock(ctx, store.StockQuery{Warehouse: "w"})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, int64(5), rows[0].OnHand)
	qs, err := s.Quarantined(ctx, "w")
	require.NoError(t, err)
	require.Equal(t, "reapplied", qs[0].Status)
	require.Equal(t, "lead", qs[0].By)
	cs, err := s.Conflicts(ctx, conflicts.Query{Kind: conflicts.KindQuarantinedOp})
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.Equal(t, conflicts.StatusResolved, cs[0].Status)
	hs, err := s.History(ctx, ledger.Key{WH: "w", Location: "L", SKU: "s"})
	require.NoError(t, err)
	require.Len(t, hs, 2)
	require.Equal(t, "receive", hs[1].Kind, "the op is in the op log")
	require.Equal(t, int64(5), hs[1].OnHand)

	r, err := s.DownFrom(ctx, "w", "g", 0, 100)
	require.NoError(t, err)
	var v protocol.StockValue
	require.NoError(t, protocol.Unmarshal(r.Items[len(r.Items)-1].Body, &v))
	require.Equal(t, int64(5), v.OnHand, "the gateways get the new on-hand")

	_, err = s.QuarantineAction(ctx, "w", "g", 2, "reapply", "lead")
	require.ErrorContains(t, err, "already reapplied")
}
