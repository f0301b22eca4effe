package store

import (
	"context"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
)

func openMD(t *testing.T) *Store {
	t.Helper()
	s, err := Open(Options{Dir: t.TempDir(), Small: true})
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func commit(t *testing.T, s *Store, c *Commit) []protocol.Op {
	t.Helper()
	c.KeepSession = true
	ops, err := s.Commit(context.Background(), c)
	require.NoError(t, err)
	return ops
}

// TestLocalRecordsFollowCommits: receipts per PO line, picks per task, a
// reorder notice once per downward crossing, notices and their local
// closes until the server acknowledges them.
func TestLocalRecordsFollowCommits(t *testing.T) {
	s := openMD(t)
	require.NoError(t, s.ApplyDownItems(Down{
		Items:      []protocol.Item{{SKU: "BOLT", GTINs: []string{"04006381333931"}}},
		Thresholds: []protocol.Threshold{{SKU: "BOLT", ReorderPoint: 2}},
		POs:        []protocol.PurchaseOrder{{ID: "P1", Lines: []protocol.POLine{{Line: 1, SKU: "BOLT", Qty: 5}}}},
		Tasks:      []protocol.Task{{ID: "T1", Kind: "pick", Location: "B", SKU: "BOLT", Qty: 3}},
	}, 0, 1))
	l := s.Lookup()
	its := l.ItemsByGTIN("04006381333931")
	require.Len(t, its, 1)
	require.Equal(t, "BOLT", its[0].SKU)

	commit(t, s, &Commit{Device: "d", Ops: []protocol.Op{{Kind: protocol.OpReceive, Location: "B", SKU: "BOLT", Qty: 4, Refs: &protocol.Refs{PO: "P1", POLine: 1}}}})
	require.Equal(t, int64(4), l.Received("P1", 1))
	commit(t, s, &Commit{Device: "d", Ops: []protocol.Op{{Kind: protocol.OpPick, Location: "B", SKU: "BOLT", Qty: 1, Refs: &protocol.Refs{Task: "T1"}}}})
	ns, err := s.Notices(0)
	require.NoError(t, err)
	require.Empty(t, ns, "4 → 3: still above the reorder point")
	commit(t, s, &Commit{Device: "d", Ops: []protocol.Op{{Kind: protocol.OpPick, Location: "B", SKU: "BOLT", Qty: 1, Refs: &protocol.Refs{Task: "T1"}}}})
	commit(t, s, &Commit{Device: "d", Ops: []protocol.Op{{Kind: protocol.OpPick, Location: "B", SKU: "BOLT", Qty: 1}}})
	require.Equal(t, int64(2), l.Picked("T1"))
	ns, err = s.Notices(0)
	require.NoError(t, err)
	require.Len(t, ns, 1, "3 → 2 crossed; 2 → 1 did not cross again")
	require.Equal(t, protocol.Notice{ID: "reorder/BOLT/3", Kind: protocol.NoticeReorder, Seq: 3, At: ns[0].At, SKU: "BOLT", Location: "B", Qty: 2, Threshold: 2}, ns[0])

	// Closing the task short: local status at once, the notice stamped with
	// the last seq, both gone once the server acknowledges.
	commit(t, s, &Commit{Device: "d", Notices: []protocol.Notice{{ID: "tc", Kind: protocol.NoticeTaskClose, Ref: "T1", Qty: 2}}})
	tk, _ := l.Task("T1")
	require.Equal(t, "short", tk.Status)
	ns, _ = s.Notices(0)
	require.Equal(t, uint64(4), ns[1].Seq)
	select {
	case <-s.NoticeNotify():
	default:
		t.Fatal("no notice signal")
	}
	require.NoError(t, s.ApplyDownItems(Down{NoticeAcks: []string{"tc", "reorder/BOLT/3"}}, 0, 2))
	ns, _ = s.Notices(0)
	require.Empty(t, ns)
	tk, _ = l.Task("T1")
	require.Equal(t, "", tk.Status, "the server owns the status again")
}

func TestGhostStockFromSweeps(t *testing.T) {
	s := openMD(t)
	e1, _ := hex.DecodeString("3034F4E4E4424C8000000001")
	e2, _ := hex.DecodeString("3034F4E4E4424C8000000002")
	commit(t, s, &Commit{Device: "p", Ops: []protocol.Op{{Kind: protocol.OpReceive, Location: "A", SKU: "M", Qty: 1, EPCs: [][]byte{e1}}, {Kind: protocol.OpReceive, Location: "A", SKU: "M", Qty: 1, EPCs: [][]byte{e2}}}})
	g, err := s.GhostStock()
	require.NoError(t, err)
	require.Empty(t, g, "no sweep of A yet")
	commit(t, s, &Commit{Device: "s", Ops: []protocol.Op{{Kind: protocol.OpRFIDSweep, Scope: protocol.ScopeLocation, Location: "A", Lines: []protocol.CountLine{{SKU: "M", Qty: 1}}, EPCs: [][]byte{e1}}}})
	g, err = s.GhostStock()
	require.NoError(t, err)
	require.Equal(t, map[string][]string{"A": {"3034F4E4E4424C8000000002"}}, g)
	loc, ok := s.Known("3034F4E4E4424C8000000001")
	require.True(t, ok)
	require.Equal(t, "A", loc)
}
