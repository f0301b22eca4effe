package badger

import (
	"context"
	"fmt"
	"strings"
	"testing"

	bdb "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/apply"
)

// countingBackend counts the transactions run through it.
type countingBackend struct {
	backend
	updates int
}

func (c *countingBackend) Update(ctx context.Context, s apply.Scope, f func(apply.Tx) error) error {
	c.updates++
	return c.backend.Update(ctx, s, f)
}

// newKeyGroup is gws batches of per receipts each making a new key.
func newKeyGroup(gws, per int) []store.Batch {
	var group []store.Batch
	for g := range gws {
		bt := &protocol.OpBatch{First: 1, Last: uint64(per)}
		for j := 1; j <= per; j++ {
			bt.Ops = append(bt.Ops, protocol.Op{Seq: uint64(j), HLC: protocol.MakeHLC(1_765_000_000_000+int64(j), 0), Kind: protocol.OpReceive,
				Location: fmt.Sprintf("DOCK-%02d", g), SKU: fmt.Sprintf("04006381%06d", j), Lot: fmt.Sprintf("LOT-%06d", j), Qty: 1, Device: "d1", Raw: []string{strings.Repeat("x", 30)}})
		}
		group = append(group, store.Batch{WH: "w", GW: fmt.Sprintf("gw%02d", g), B: bt})
	}
	return group
}

// TestAGroupTooBigIsSplitNotRefused: a group of batches larger than one
// Badger transaction takes (4,096 ops each making new keys, past the
// limit of the 16 MiB memtables) is applied whole, in halves — a few
// transactions, not the batch-by-batch fallback's one per 32-op chunk —
// and the too-big error reaches the apply core as store.ErrTxnTooBig.
func TestAGroupTooBigIsSplitNotRefused(t *testing.T) {
	s := openTest(t)
	cb := &countingBackend{backend: backend{db: s.db}}
	e := apply.New(cb, apply.Options{ChunkOps: ApplyChunk, MaxGroupOps: 1 << 20})
	group := newKeyGroup(16, 256)

	err := cb.backend.Update(context.Background(), apply.Scope{}, func(tx apply.Tx) error {
		for i := range 200_000 {
			if err := tx.SetWatermark("w", fmt.Sprintf("gw%06d", i), 1); err != nil {
				return err
			}
		}
		return nil
	})
	require.ErrorIs(t, err, store.ErrTxnTooBig)
	require.ErrorIs(t, err, bdb.ErrTxnTooBig)

	rs, err := e.ApplyBatches(context.Background(), group)
	require.NoError(t, err)
	require.Len(t, rs, len(group))
	for i, r := range rs {
		require.Equal(t, protocol.Apply, r.Verdict, "batch %d", i)
		require.Equal(t, 256, r.Applied, "batch %d", i)
	}
	require.Less(t, cb.updates, 32, "split in halves: batch by batch would take 16 x 8 transactions")
	rows, err := s.Stock(context.Background(), store.StockQuery{Warehouse: "w"})
	require.NoError(t, err)
	require.Len(t, rows, 16*256)
}

// TestOpensAStoreWrittenWithoutCompression: tables written without
// compression and with no block cache (options a build of the server once
// used, as the agent's store does) are read by these (Snappy, a block
// cache): each table records its own compression.
func TestOpensAStoreWrittenWithoutCompression(t *testing.T) {
	dir := t.TempDir()
	old, err := bdb.Open(bdb.DefaultOptions(dir).WithLogger(nil).WithMemTableSize(4 << 20).WithValueThreshold(64 << 10).WithBlockCacheSize(0).WithCompression(options.None))
	require.NoError(t, err)
	const n = 20_000
	wb := old.NewWriteBatch()
	for i := range n {
		require.NoError(t, wb.Set(fmt.Appendf(nil, "x/%06d", i), []byte(strings.Repeat("v", 100))))
	}
	require.NoError(t, wb.Flush())
	require.NoError(t, old.Flatten(1))
	require.NoError(t, old.Close()) // the memtable is flushed to a compressed table

	s, err := Open(Options{Dir: dir})
	require.NoError(t, err)
	defer s.Close()
	seen := 0
	require.NoError(t, s.db.View(func(txn *bdb.Txn) error {
		it := txn.NewIterator(bdb.IteratorOptions{Prefix: []byte("x/"), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			require.Equal(t, strings.Repeat("v", 100), string(v))
			seen++
		}
		return nil
	}))
	require.Equal(t, n, seen)
	var inTables bool
	for _, ti := range s.db.Tables() {
		inTables = inTables || ti.KeyCount > 0
	}
	require.True(t, inTables, "the data is in tables, not only in the value log or memtable")
}
