package uplink

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
)

// TestShipNoticesGoOnlyToAServerThatTakesThem: an older server would
// acknowledge a ship notice without shipping, so a status carries ship
// notices only while the server announces ship-notices; other notices go
// either way, at most protocol.MaxNotices.
func TestShipNoticesGoOnlyToAServerThatTakesThem(t *testing.T) {
	ns := []protocol.Notice{
		{ID: "task-close/T1/1", Kind: protocol.NoticeTaskClose, Seq: 4},
		{ID: "ship/O1/2", Kind: protocol.NoticeShip, Ref: "O1", Seq: 5},
		{ID: "reorder/MILK/6", Kind: protocol.NoticeReorder, Seq: 6},
	}
	require.Equal(t, []protocol.Notice{ns[0], ns[2]}, Sendable(ns, protocol.FeatureOpsDeflate|protocol.FeatureProbes))
	require.Equal(t, ns, Sendable(ns, protocol.FeatureShipNotices))

	var many []protocol.Notice
	for i := range protocol.MaxNotices + 5 {
		many = append(many, protocol.Notice{ID: fmt.Sprint(i), Kind: protocol.NoticeShip})
	}
	require.Empty(t, Sendable(many, 0))
	require.Len(t, Sendable(many, protocol.FeatureShipNotices), protocol.MaxNotices)
}
