package badger

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// TestBackupOfALargeStoreIsOneSnapshot: Badger's backup stream splits the
// key space into ranges (every 10,000 memtable entries, and by table) and
// reads them on several goroutines; unless they share one read timestamp,
// a watermark can come from a later instant than the stock it covers.
// Restored, such a state says an op is applied that it does not hold: the
// gateway resends only after the watermark, and the op is lost for good.
// Each backup here is restored and its watermark must equal its stock.
func TestBackupOfALargeStoreIsOneSnapshot(t *testing.T) {
	ctx := context.Background()
	s, err := Open(Options{InMemory: true}) // no fsync: many commits race each backup
	require.NoError(t, err)
	defer s.Close()
	// Many entries, so that the stream has many ranges.
	for seq := uint64(1); seq <= 3000; seq += 200 {
		ops := make([]protocol.Op, 0, 200)
		for i := seq; i < seq+200; i++ {
			ops = append(ops, recv(i, int64(i), fmt.Sprintf("F-%04d", i%3000), "s", 1))
		}
		_, err := s.ApplyBatch(ctx, "w", "fill", batch("w", "fill", ops...))
		require.NoError(t, err)
	}
	// The gateways' batches apply while a backup runs (up to 50 each), and
	// wait between backups, so the store stays small.
	var (
		mu      sync.Mutex
		cond    = sync.NewCond(&mu)
		backing bool
		stop    bool
		rounds  int // backups started
		wg      sync.WaitGroup
	)
	setBacking := func(b, end bool) {
		mu.Lock()
		if b {
			rounds++
		}
		backing, stop = b, end
		mu.Unlock()
		cond.Broadcast()
	}
	gws := []string{"g1", "g2", "g3", "g4"}
	for _, gw := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			round := -1
			for seq, n := uint64(1), 0; ; seq, n = seq+1, n+1 {
				mu.Lock()
				for !stop && (!backing || round == rounds && n >= 50) { // at most 50 ops a backup
					cond.Wait()
				}
				if round != rounds {
					round, n = rounds, 0
				}
				end := stop
				mu.Unlock()
				if end {
					return
				}
				if _, err := s.ApplyBatch(ctx, "w", gw, batch("w", gw, recv(seq, int64(seq), "L-"+gw, "s", 1))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	defer func() { setBacking(false, true); wg.Wait() }()
	for i := 0; i < 20; i++ {
		var buf bytes.Buffer
		setBacking(true, false)
		require.NoError(t, s.Backup(ctx, &buf))
		setBacking(false, false)
		body, err := checkBackup(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		require.NoError(t, err)
		r, err := Open(Options{InMemory: true}) // what Restore loads, without the disk
		require.NoError(t, err)
		require.NoError(t, r.db.Load(body, 256))
		for _, gw := range gws {
			wm, err := r.Watermark(ctx, "w", gw)
			require.NoError(t, err)
			rows, err := r.Stock(ctx, store.StockQuery{Warehouse: "w", Location: "L-" + gw})
			require.NoError(t, err)
			var onHand int64
			if len(rows) > 0 {
				onHand = rows[0].OnHand
			}
			require.Equal(t, int64(wm), onHand, "backup %d, %s: the watermark and the stock it covers come from one instant", i, gw)
		}
		r.Close()
	}
}
