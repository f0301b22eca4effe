package store

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
)

// TestDownEpochResetsAPositionOfAnotherServer: a gateway applied downstream
// items 1..4 of a server (e0) without ever recording an ack from it; the
// server's state is then restored under a new identity (e1), whose
// downstream log starts again at 1. The position of e0's log must not be
// taken for e1's (its items 1..4 would be dropped as already seen and
// their keys never reflected): a batch of e1 drops the position and the
// server values (ResetDown). A batch of the same identity, or a store that recorded
// none, keeps them.
func TestDownEpochResetsAPositionOfAnotherServer(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), Small: true})
	require.NoError(t, err)
	defer s.Close()
	reset, err := s.DownEpoch("e0")
	require.NoError(t, err)
	require.False(t, reset, "nothing recorded yet")
	require.NoError(t, s.ApplyDownItems(Down{Epoch: "e0", Stock: []protocol.StockValue{{Location: "L", SKU: "S", OnHand: 10}}}, 0, 4))

	reset, err = s.DownEpoch("e0")
	require.NoError(t, err)
	require.False(t, reset, "the same identity")
	reset, err = s.DownEpoch("")
	require.NoError(t, err)
	require.False(t, reset, "a batch that names no identity")
	p, err := s.Positions()
	require.NoError(t, err)
	require.Equal(t, uint64(4), p.Down)
	require.Empty(t, p.Epoch, "no ack was ever recorded")

	reset, err = s.DownEpoch("e1")
	require.NoError(t, err)
	require.True(t, reset)
	p, err = s.Positions()
	require.NoError(t, err)
	require.Zero(t, p.Down, "e1's log starts again at 1")

	require.NoError(t, s.ApplyDownItems(Down{Epoch: "e1", Stock: []protocol.StockValue{{Location: "L", SKU: "S", OnHand: 3}}}, 0, 2))
	reset, err = s.DownEpoch("e1")
	require.NoError(t, err)
	require.False(t, reset)
	rows, err := s.Stock("", "")
	require.NoError(t, err)
	require.Equal(t, []StockRow{{Location: "L", SKU: "S", OnHand: 3}}, rows, "e1's items applied, not dropped as seen")
}

// TestDownEpochLeavesAStoreWithoutOne: a store written before identities
// were recorded with the position keeps its position.
func TestDownEpochLeavesAStoreWithoutOne(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), Small: true})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.ApplyDownItems(Down{Stock: []protocol.StockValue{{Location: "L", SKU: "S", OnHand: 10}}}, 0, 4))
	reset, err := s.DownEpoch("e1")
	require.NoError(t, err)
	require.False(t, reset)
	p, err := s.Positions()
	require.NoError(t, err)
	require.Equal(t, uint64(4), p.Down)
}
