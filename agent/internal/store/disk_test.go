package store

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
)

// TestCommitRefusedBelowDiskReserve: below the reserve a commit fails with
// ErrDiskFull and records nothing (nor does a downstream batch); above it
// commits go through again, with no restart.
func TestCommitRefusedBelowDiskReserve(t *testing.T) {
	var free atomic.Uint64
	free.Store(1 << 30)
	s, err := Open(Options{Dir: t.TempDir(), Small: true, DiskReserve: 100 << 20, DiskLow: 200 << 20,
		FreeBytes: func(string) uint64 { return free.Load() }})
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	op := func() *Commit {
		return &Commit{Device: "d", Ops: []protocol.Op{{Kind: protocol.OpReceive, Location: "L", SKU: "S", Qty: 1}}, KeepSession: true}
	}
	_, err = s.Commit(ctx, op())
	require.NoError(t, err)

	free.Store(150 << 20)
	require.Equal(t, DiskState{FreeBytes: 150 << 20, ReserveBytes: 100 << 20, Low: true}, s.Disk())
	_, err = s.Commit(ctx, op())
	require.NoError(t, err, "low is a warning, not a refusal")

	free.Store(99 << 20)
	_, err = s.Commit(ctx, op())
	require.ErrorIs(t, err, ErrDiskFull)
	require.ErrorIs(t, s.ApplyDownItems(Down{}, 0, 1), ErrDiskFull)
	p, err := s.Positions()
	require.NoError(t, err)
	require.Equal(t, uint64(2), p.LastSeq, "the refused commit recorded nothing")
	require.True(t, s.Disk().Full)

	free.Store(1 << 30)
	ops, err := s.Commit(ctx, op())
	require.NoError(t, err)
	require.Equal(t, uint64(3), ops[0].Seq)
}

// TestCommitAfterCloseFails: a commit after Close returns ErrClosed instead
// of waiting for ever (its request could reach the queue after the loop's
// last drain), and records nothing.
func TestCommitAfterCloseFails(t *testing.T) {
	for i := 0; i < 20; i++ {
		dir := t.TempDir()
		s, err := Open(Options{Dir: dir})
		require.NoError(t, err)
		require.NoError(t, s.Close())
		_, err = s.Commit(context.Background(), &Commit{Device: "d", Ops: []protocol.Op{{Kind: protocol.OpReceive, Location: "L", SKU: "S", Qty: 1}}, KeepSession: true})
		require.ErrorIs(t, err, ErrClosed)
	}
}

// TestCommitsAreSynced guards the setting that makes a commit durable
// before the good beep: Badger's SyncWrites. (A crash test that drops
// unsynced pages needs a file system that can lose them — LazyFS or
// dm-flakey — which this machine lacks; this test at least fails when the
// setting is turned off.)
func TestCommitsAreSynced(t *testing.T) {
	for _, small := range []bool{false, true} {
		s, err := Open(Options{Dir: t.TempDir(), Small: small})
		require.NoError(t, err)
		require.True(t, s.db.Opts().SyncWrites, "small=%v: commits must be fsynced before they are confirmed", small)
		require.NoError(t, s.Close())
	}
}
