package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
)

// TestOpenAfterCrashMidMemtableDelete: a process killed while Badger
// deleted a flushed memtable (truncated to zero, not yet removed) leaves
// an empty .mem file; the store opens on it, with every committed op.
func TestOpenAfterCrashMidMemtableDelete(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Small: true})
	require.NoError(t, err)
	_, err = s.Commit(context.Background(), &Commit{Device: "d", Ops: []protocol.Op{{Kind: protocol.OpReceive, Location: "L", SKU: "S", Qty: 1}}, KeepSession: true})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	mems, err := filepath.Glob(filepath.Join(dir, "*.mem"))
	require.NoError(t, err)
	// Below and above the live memtables' fids: either way Badger's Open
	// failed on it.
	for _, name := range []string{"00000.mem", "99999.mem"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), nil, 0o644))
	}

	s, err = Open(Options{Dir: dir, Small: true})
	require.NoError(t, err, "memtables before: %v", mems)
	defer s.Close()
	p, err := s.Positions()
	require.NoError(t, err)
	require.Equal(t, uint64(1), p.LastSeq)
	ops, err := s.Outbox(1, 10, 1<<20)
	require.NoError(t, err)
	require.Len(t, ops, 1)
}
