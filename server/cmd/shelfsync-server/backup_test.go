package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
)

// TestBackupRestoreCommands: backup --data of a stopped server's store,
// then restore --data over it: the old data is moved aside (never
// deleted), the restored store has the backup's state and a new epoch; a
// restore over a store in use, or of a damaged file, is refused and
// leaves the data in place.
func TestBackupRestoreCommands(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	data := filepath.Join(root, "data")
	s, err := badger.Open(badger.Options{Dir: data})
	require.NoError(t, err)
	op := protocol.Op{Seq: 1, HLC: protocol.MakeHLC(1, 0), Kind: protocol.OpReceive, Location: "L", SKU: "s", Qty: 3}
	_, err = s.ApplyBatch(ctx, "w", "g", &protocol.OpBatch{Header: protocol.Header{WH: "w", GW: "g"}, First: 1, Last: 1, Ops: []protocol.Op{op}})
	require.NoError(t, err)
	epoch := s.Epoch()

	var out, errb bytes.Buffer
	file := filepath.Join(root, "b.bak")
	require.Equal(t, 1, run([]string{"restore", "--data", data, "--from", file}, &out, &errb), "no such file")
	require.Equal(t, 1, run([]string{"backup", "--out", file, "--data", data}, &out, &errb), "a running server holds the store: %s", errb.String())
	require.NoError(t, s.Close())
	errb.Reset()
	require.Equal(t, 0, run([]string{"backup", "--out", file, "--data", data}, &out, &errb), errb.String())
	require.NoFileExists(t, file+".partial")

	// More work after the backup: the restore goes back before it.
	s, err = badger.Open(badger.Options{Dir: data})
	require.NoError(t, err)
	op.Seq = 2
	_, err = s.ApplyBatch(ctx, "w", "g", &protocol.OpBatch{Header: protocol.Header{WH: "w", GW: "g"}, First: 2, Last: 2, Ops: []protocol.Op{op}})
	require.NoError(t, err)
	errb.Reset()
	require.Equal(t, 1, run([]string{"restore", "--data", data, "--from", file}, &out, &errb))
	require.Contains(t, errb.String(), "in use")
	require.NoError(t, s.Close())

	damaged := filepath.Join(root, "damaged.bak")
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(damaged, b[:len(b)-10], 0o600))
	errb.Reset()
	require.Equal(t, 1, run([]string{"restore", "--data", data, "--from", damaged}, &out, &errb))
	require.Contains(t, errb.String(), "not a complete shelfsync backup")
	require.Contains(t, errb.String(), "previous data is back in place")

	out.Reset()
	require.Equal(t, 0, run([]string{"restore", "--data", data, "--from", file}, &out, &errb), errb.String())
	require.Contains(t, out.String(), "new identity")
	aside, err := filepath.Glob(data + ".before-restore-*")
	require.NoError(t, err)
	require.Len(t, aside, 1, "the replaced data is kept: %s", out.String())
	require.True(t, strings.Contains(out.String(), aside[0]))

	r, err := badger.Open(badger.Options{Dir: data})
	require.NoError(t, err)
	defer r.Close()
	require.NotEqual(t, epoch, r.Epoch())
	wm, err := r.Watermark(ctx, "w", "g")
	require.NoError(t, err)
	require.Equal(t, uint64(1), wm, "the state of the backup")
}
