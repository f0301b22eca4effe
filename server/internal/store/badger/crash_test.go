package badger

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
// an empty .mem file; the store opens on it with what it had.
func TestOpenAfterCrashMidMemtableDelete(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir})
	require.NoError(t, err)
	_, err = s.ApplyBatch(ctx, "w", "g", &protocol.OpBatch{First: 1, Last: 1, Ops: []protocol.Op{
		{Seq: 1, HLC: 5, Kind: protocol.OpReceive, Location: "L", SKU: "S", Qty: 3}}})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	// Below and above the live memtables' fids: either way Badger's Open
	// failed on it.
	for _, name := range []string{"00000.mem", "99999.mem"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), nil, 0o644))
	}

	s, err = Open(Options{Dir: dir})
	require.NoError(t, err)
	defer s.Close()
	wm, err := s.Watermark(ctx, "w", "g")
	require.NoError(t, err)
	require.Equal(t, uint64(1), wm)
}
