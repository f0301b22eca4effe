package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
)

func commitN(t *testing.T, s *Store, n int) {
	t.Helper()
	ops := make([]protocol.Op, n)
	for i := range ops {
		ops[i] = protocol.Op{Kind: protocol.OpReceive, Location: "L", SKU: "S", Qty: 1}
	}
	_, err := s.Commit(context.Background(), &Commit{Device: "d", Ops: ops, KeepSession: true})
	require.NoError(t, err)
}

func outboxSeqs(t *testing.T, s *Store) (first, last uint64, n int) {
	t.Helper()
	ops, err := s.Outbox(0, 1<<20, 1<<30)
	require.NoError(t, err)
	if len(ops) == 0 {
		return 0, 0, 0
	}
	return ops[0].Seq, ops[len(ops)-1].Seq, len(ops)
}

// TestAckedOpsAreRetainedUpToTheCount: an ack no longer deletes the ops
// it covers; the newest MaxOps acknowledged ops stay, and what the store
// reports as its oldest held seq is exactly the first op it still has —
// also after a reopen.
func TestAckedOpsAreRetainedUpToTheCount(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Small: true, Retention: Retention{MaxOps: 10}})
	require.NoError(t, err)
	commitN(t, s, 100)
	_, err = s.Ack(5, "e1")
	require.NoError(t, err)
	first, last, n := outboxSeqs(t, s)
	require.Equal(t, []any{uint64(1), uint64(100), 100}, []any{first, last, n}, "5 acked ops are within the retention")
	_, err = s.Ack(60, "e1")
	require.NoError(t, err)
	first, last, n = outboxSeqs(t, s)
	require.Equal(t, []any{uint64(51), uint64(100), 50}, []any{first, last, n}, "10 acked ops kept (51..60) and every unacked one")
	p, err := s.Positions()
	require.NoError(t, err)
	require.Equal(t, uint64(51), p.First)
	require.NoError(t, s.Close())

	s, err = Open(Options{Dir: dir, Small: true, Retention: Retention{MaxOps: 10}})
	require.NoError(t, err)
	defer s.Close()
	f, err := s.FirstHeld()
	require.NoError(t, err)
	require.Equal(t, uint64(51), f)
	first, _, _ = outboxSeqs(t, s)
	require.Equal(t, uint64(51), first)
}

// TestRetentionByAgeAndNone: acknowledged ops older than MaxAge go (the
// unacknowledged ones never do, however old); a negative retention keeps
// none, as before retention existed.
func TestRetentionByAgeAndNone(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), Small: true, Retention: Retention{MaxAge: time.Hour}})
	require.NoError(t, err)
	defer s.Close()
	now := time.Now()
	wall := now.Add(-3 * time.Hour)
	s.SetClock(protocol.NewClock(func() time.Time { return wall }))
	commitN(t, s, 20) // 1..20, three hours old
	wall = now
	commitN(t, s, 10) // 21..30, now
	_, err = s.Ack(25, "e1")
	require.NoError(t, err)
	require.NoError(t, s.TrimRetention(context.Background()))
	first, last, _ := outboxSeqs(t, s)
	require.Equal(t, uint64(21), first, "acked ops older than an hour are dropped")
	require.Equal(t, uint64(30), last)

	wall = now.Add(-5 * time.Hour)
	s2, err := Open(Options{Dir: t.TempDir(), Small: true, Retention: Retention{MaxOps: -1}})
	require.NoError(t, err)
	defer s2.Close()
	s2.SetClock(protocol.NewClock(func() time.Time { return wall }))
	commitN(t, s2, 10)
	_, err = s2.Ack(7, "e1")
	require.NoError(t, err)
	first, _, n := outboxSeqs(t, s2)
	require.Equal(t, []any{uint64(8), 3}, []any{first, n}, "no retention: only unacked ops stay, even old ones")
}

// TestRetentionYieldsToAFullDisk: with less free space than MinFreeBytes,
// or than the disk's low-space warning when that is higher, acknowledged
// ops are not kept (scans still commit: the reserve is far below).
func TestRetentionYieldsToAFullDisk(t *testing.T) {
	free := uint64(300 << 20)
	s, err := Open(Options{Dir: t.TempDir(), Small: true, Retention: Retention{MinFreeBytes: 256 << 20}, DiskLow: 512 << 20,
		FreeBytes: func(string) uint64 { return free }})
	require.NoError(t, err)
	defer s.Close()
	commitN(t, s, 10)
	_, err = s.Ack(6, "e1")
	require.NoError(t, err)
	require.NoError(t, s.TrimRetention(context.Background()))
	first, _, n := outboxSeqs(t, s)
	require.Equal(t, []any{uint64(7), 4}, []any{first, n})
}

// TestRegressBeyondRetentionNamesTheLostRange: a server restored to a
// watermark below what the retention holds: the store takes its watermark,
// reports exactly the range it can no longer send, and the ops it still
// holds above it are pending again (the view shows them).
func TestRegressBeyondRetentionNamesTheLostRange(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir(), Small: true, Retention: Retention{MaxOps: 3}})
	require.NoError(t, err)
	defer s.Close()
	commitN(t, s, 10)
	require.NoError(t, s.ApplyDownItems(Down{Stock: []protocol.StockValue{{Location: "L", SKU: "S", OnHand: 10}}}, 10, 4))
	_, err = s.Ack(10, "e1")
	require.NoError(t, err)
	r, err := s.Regress(2, "e1")
	require.NoError(t, err)
	from, to, ok := r.Lost()
	require.True(t, ok)
	require.Equal(t, []uint64{3, 7}, []uint64{from, to})
	require.Equal(t, Regression{AckedBefore: 10, EpochBefore: "e1", WM: 2, Epoch: "e1", First: 8, Replayed: 3}, r)
	p, err := s.Positions()
	require.NoError(t, err)
	require.Equal(t, Positions{LastSeq: 10, Acked: 2, Epoch: "e1", First: 8}, p, "downstream position and up-watermark dropped")
	rows, err := s.Stock("", "")
	require.NoError(t, err)
	require.Equal(t, []StockRow{{Location: "L", SKU: "S", OnHand: 3}}, rows, "the server value is gone; ops 8..10 are pending again")
	// The server records 3..7 as lost and acks 7: the held ops stay.
	_, err = s.Ack(7, "e1")
	require.NoError(t, err)
	first, _, n := outboxSeqs(t, s)
	require.Equal(t, []any{uint64(8), 3}, []any{first, n})
}
