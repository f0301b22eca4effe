package storetest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// testLostOps: RecordLostOps with a first seq beyond the watermark + 1
// records exactly the seqs in between as one lost-ops conflict and moves
// the watermark past them, so the gateway's next batch applies; at or
// below the watermark + 1 it changes nothing, and again it records nothing
// twice.
func testLostOps(t *testing.T, open func(t *testing.T) store.Store, _ config) {
	ctx := context.Background()
	s := open(t)
	rec, ok := s.(store.LostOpsRecorder)
	require.True(t, ok, "the store records lost ops")
	Apply(t, s, Batch("w", "g", Receive(1, 1, "L", "s", 1), Receive(2, 2, "L", "s", 1)))

	res, err := rec.RecordLostOps(ctx, "w", "g", 3)
	require.NoError(t, err)
	require.Equal(t, protocol.Duplicate, res.Verdict, "nothing lost: the gateway holds 3 on")
	require.Equal(t, uint64(2), res.WM)

	res, err = rec.RecordLostOps(ctx, "w", "g", 8)
	require.NoError(t, err)
	require.Equal(t, protocol.Apply, res.Verdict)
	require.Equal(t, uint64(7), res.WM)
	require.Len(t, res.Conflicts, 1)
	require.Equal(t, conflicts.LostOps("w", "g", 3, 7), res.Conflicts[0])
	wm, err := s.Watermark(ctx, "w", "g")
	require.NoError(t, err)
	require.Equal(t, uint64(7), wm)

	res, err = rec.RecordLostOps(ctx, "w", "g", 8)
	require.NoError(t, err)
	require.Equal(t, protocol.Duplicate, res.Verdict)
	cs, err := s.Conflicts(ctx, conflicts.Query{Warehouse: "w", Kind: conflicts.KindLostOps})
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.Equal(t, "lost:w/g/3-7", cs[0].ID)

	got := Apply(t, s, Batch("w", "g", Receive(8, 8, "L", "s", 5)))
	require.Equal(t, protocol.Apply, got.Verdict, "replication resumes after the lost range")
	rows, err := s.Stock(ctx, store.StockQuery{Warehouse: "w"})
	require.NoError(t, err)
	require.Equal(t, int64(7), rows[0].OnHand, "ops 1, 2 and 8; the lost ones never")
}
