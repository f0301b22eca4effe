package store

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
)

// TestShipNoticeIsKeptAndMarksTheOrderUntilAcknowledged: a pack session's
// ship notice is committed durably (it survives a reopen), marks the order
// shipped at this gateway (a second pack is refused) and stamped with the
// last seq, and both go once the server acknowledges the notice.
func TestShipNoticeIsKeptAndMarksTheOrderUntilAcknowledged(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Small: true})
	require.NoError(t, err)
	commit(t, s, &Commit{Device: "d", Ops: []protocol.Op{{Kind: protocol.OpPick, Location: "B", SKU: "BOLT", Qty: 1, Refs: &protocol.Refs{Order: "O1"}}}})
	require.False(t, s.Lookup().Shipped("O1"))
	commit(t, s, &Commit{Device: "d", Notices: []protocol.Notice{{ID: "ship/O1/1", Kind: protocol.NoticeShip, Ref: "O1", Qty: 1, SSCC: "106141412345678908"}}})
	require.True(t, s.Lookup().Shipped("O1"))
	require.False(t, s.Lookup().Shipped("O2"))
	require.NoError(t, s.Close())

	s, err = Open(Options{Dir: dir, Small: true})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	ns, err := s.Notices(0)
	require.NoError(t, err)
	require.Equal(t, []protocol.Notice{{ID: "ship/O1/1", Kind: protocol.NoticeShip, Seq: 1, Ref: "O1", Qty: 1, SSCC: "106141412345678908"}}, ns)
	require.True(t, s.Lookup().Shipped("O1"), "kept across a restart")

	require.NoError(t, s.ApplyDownItems(Down{NoticeAcks: []string{"ship/O1/1"}}, 0, 1))
	ns, err = s.Notices(0)
	require.NoError(t, err)
	require.Empty(t, ns)
	require.False(t, s.Lookup().Shipped("O1"), "the server has it now")
}
