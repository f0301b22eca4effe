package badger

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// TestBackupIsConsistentWhileApplyingAndRestoreRollsTheEpoch: a backup
// taken while a gateway's batches keep being applied holds a state the
// server really had — its watermark and its stock agree (every op up to
// the watermark counted, none after) — and a restore of it gets a new
// epoch, the backup's watermark and the backup's stock.
func TestBackupIsConsistentWhileApplyingAndRestoreRollsTheEpoch(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := uint64(1); seq <= 2000; seq++ {
			_, err := s.ApplyBatch(ctx, "w", "g", batch("w", "g", recv(seq, int64(seq), "L", "s", 1)))
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	waitApplied := func(n uint64) {
		for {
			if wm, _ := s.Watermark(ctx, "w", "g"); wm >= n {
				return
			}
		}
	}
	waitApplied(100)
	var buf bytes.Buffer
	require.NoError(t, s.Backup(ctx, &buf))
	wg.Wait()

	file := func(b []byte) *os.File {
		p := filepath.Join(t.TempDir(), "backup")
		require.NoError(t, os.WriteFile(p, b, 0o600))
		f, err := os.Open(p)
		require.NoError(t, err)
		t.Cleanup(func() { f.Close() })
		return f
	}
	dir := filepath.Join(t.TempDir(), "restored")
	for _, bad := range [][]byte{[]byte("not a backup"), buf.Bytes()[:buf.Len()/2], append(append([]byte(nil), buf.Bytes()[:buf.Len()-1]...), 'x')} {
		_, err := Restore(dir, file(bad))
		require.ErrorIs(t, err, ErrNotBackup)
	}
	epoch, err := Restore(dir, file(buf.Bytes()))
	require.NoError(t, err)
	require.NotEqual(t, s.Epoch(), epoch, "a restored state has a new identity")
	r, err := Open(Options{Dir: dir})
	require.NoError(t, err)
	defer r.Close()
	require.Equal(t, epoch, r.Epoch())
	wm, err := r.Watermark(ctx, "w", "g")
	require.NoError(t, err)
	require.GreaterOrEqual(t, wm, uint64(100))
	require.Less(t, wm, uint64(2000), "the backup was taken while applying")
	rows, err := r.Stock(ctx, store.StockQuery{Warehouse: "w"})
	require.NoError(t, err)
	require.Equal(t, []store.StockRow{{Warehouse: "w", Location: "L", SKU: "s", OnHand: int64(wm)}}, rows, "stock and watermark from one instant")

	// The restored state applies the rest by the sequence rule: the
	// gateway resends wm+1.. and nothing is counted twice.
	for seq := uint64(1); seq <= 2000; seq += 100 {
		ops := make([]protocol.Op, 0, 100)
		for i := seq; i < seq+100; i++ {
			ops = append(ops, recv(i, int64(i), "L", "s", 1))
		}
		_, err := r.ApplyBatch(ctx, "w", "g", batch("w", "g", ops...))
		require.NoError(t, err)
	}
	rows, err = r.Stock(ctx, store.StockQuery{Warehouse: "w"})
	require.NoError(t, err)
	require.Equal(t, int64(2000), rows[0].OnHand)

	_, err = Restore(dir, file(buf.Bytes()))
	require.ErrorContains(t, err, "not empty", "never restores over a store")
}
