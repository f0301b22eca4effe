package app

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/masterdata"
)

// TestHelloFirstSeqRecordsLostOps: a gateway whose retention starts at 21
// says hello to a server that applied only up to 10 (restored): the
// server records exactly 11..20 as a lost-ops conflict, acknowledges 20,
// raises the conflict's alert, issues count tasks for the locations of the
// gateway's zone (only those), and replication resumes at 21. The same
// hello again changes nothing; a hello under the server's own epoch that
// was acknowledged beyond the watermark is counted as a state gone back in
// time.
func TestHelloFirstSeqRecordsLostOps(t *testing.T) {
	ctx := context.Background()
	s := startServer(t, t.TempDir())
	require.NoError(t, s.md.md.PutZones(ctx, "wh1", []masterdata.Zone{{Zone: "Z1", Gateway: "g1"}, {Zone: "Z2", Gateway: "g2"}}))
	require.NoError(t, s.md.md.PutLocations(ctx, "wh1", []protocol.Location{{Code: "L", Zone: "Z1"}, {Code: "M", Zone: "Z1"}, {Code: "N", Zone: "Z2"}}))
	g := newFakeGateway(t, s.MQTTAddr(), "wh1", "g1")
	require.Equal(t, uint64(10), g.sendBatch(1, 10, 1).WM)

	hello := func(first, acked uint64, epoch string) *protocol.Ack {
		raw, err := protocol.Encode(&protocol.Hello{Header: protocol.Header{WH: "wh1", GW: "g1"}, LastSeq: 30, AckedSeq: acked, DownSeq: 3,
			Epoch: epoch, FirstSeq: first, HLC: protocol.MakeHLC(time.Now().UnixMilli(), 0)})
		require.NoError(t, err)
		return g.waitAck(g.send(raw))
	}
	// An agent older than retention sends no first_seq: nothing is
	// recorded, the answer is the watermark as before (SPEC.md §6.1).
	a := hello(0, 30, "an-older-state")
	require.Equal(t, uint64(10), a.WM)
	cs, err := s.st.Conflicts(ctx, conflicts.Query{Warehouse: "wh1", Kind: conflicts.KindLostOps})
	require.NoError(t, err)
	require.Empty(t, cs)

	a = hello(21, 30, "an-older-state")
	require.Equal(t, uint64(20), a.WM, "the watermark moves past the lost range")
	require.Empty(t, a.Error)

	cs, err = s.st.Conflicts(ctx, conflicts.Query{Warehouse: "wh1", Kind: conflicts.KindLostOps})
	require.NoError(t, err)
	require.Len(t, cs, 1)
	c := cs[0]
	require.Equal(t, "lost:wh1/g1/11-20", c.ID)
	require.Equal(t, conflicts.StatusOpen, c.Status)
	require.Equal(t, []conflicts.OpRef{{WH: "wh1", GW: "g1", Seq: 11}, {WH: "wh1", GW: "g1", Seq: 20}}, c.Ops)
	require.Contains(t, c.Detail, "11..20")
	require.Equal(t, 10.0, metric(t, s, "", "shelfsync_ingest_lost_ops_total", ""))

	waitFor(t, 10*time.Second, "count tasks for zone Z1", func() bool {
		ts, err := s.st.Tasks(ctx, "wh1")
		require.NoError(t, err)
		var locs []string
		for _, tk := range ts {
			if tk.Kind == "count" && strings.HasPrefix(tk.Reason, "lost-ops") {
				locs = append(locs, tk.Location)
			}
		}
		slices.Sort(locs)
		return slices.Equal(locs, []string{"L", "M"})
	})
	waitFor(t, 10*time.Second, "the conflict's notification", func() bool {
		return metric(t, s, "", "shelfsync_conflict_notifications_total", `event="opened",kind="lost-ops"`) == 1
	})

	// Replication resumes at 21; the same hello again records nothing.
	require.Equal(t, uint64(30), g.sendBatch(21, 30, 1).WM)
	require.Equal(t, uint64(30), hello(21, 30, s.st.Epoch()).WM)
	cs, err = s.st.Conflicts(ctx, conflicts.Query{Warehouse: "wh1", Kind: conflicts.KindLostOps})
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.Zero(t, metric(t, s, "", "shelfsync_ingest_state_behind_gateway_total", ""))

	// Under its own epoch, acknowledged beyond the watermark: the state
	// went back in time without a new identity.
	hello(31, 40, s.st.Epoch())
	require.Equal(t, 1.0, metric(t, s, "", "shelfsync_ingest_state_behind_gateway_total", ""))
	// … or that applied downstream items this state never issued.
	raw, err := protocol.Encode(&protocol.Hello{Header: protocol.Header{WH: "wh1", GW: "g1"}, LastSeq: 30, AckedSeq: 30, DownSeq: 1_000_000,
		Epoch: s.st.Epoch(), FirstSeq: 31, HLC: protocol.MakeHLC(time.Now().UnixMilli(), 0)})
	require.NoError(t, err)
	g.waitAck(g.send(raw))
	require.Equal(t, 2.0, metric(t, s, "", "shelfsync_ingest_state_behind_gateway_total", ""))
}
