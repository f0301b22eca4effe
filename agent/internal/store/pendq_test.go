package store

import (
	"context"
	"encoding/binary"
	"os"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
)

// TestPruneReadsEffectsFromTheSeqIndex: pruning takes each reflected
// effect from the seq index (r/), and a store of an older agent, whose
// index entries are empty, is pruned from the entries themselves (p/):
// either way the view after the server reflects a prefix of the ops is
// the server value plus the ops after it — with chunks of any size, and
// after a prune cut short between its steps (a crash: the server sends
// the batch again).
func TestPruneReadsEffectsFromTheSeqIndex(t *testing.T) {
	keys, deletes := pruneKeys, pruneDeletes
	defer func() { pruneKeys, pruneDeletes = keys, deletes }()
	rapid.Check(t, func(t *rapid.T) {
		pruneKeys = rapid.IntRange(1, 5).Draw(t, "pruneKeys")
		pruneDeletes = rapid.IntRange(1, 5).Draw(t, "pruneDeletes")
		dir, err := os.MkdirTemp("", "agent-pendq")
		require.NoError(t, err)
		defer os.RemoveAll(dir)
		s, err := Open(Options{Dir: dir, Small: true})
		require.NoError(t, err)
		defer s.Close()
		n := rapid.IntRange(1, 30).Draw(t, "ops")
		var own []protocol.Op
		for range n {
			ops, err := s.Commit(context.Background(), &Commit{Device: "d", Ops: []protocol.Op{genOp(t)}, KeepSession: true})
			require.NoError(t, err)
			own = append(own, ops...)
		}
		var indexed int
		require.NoError(t, s.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pPendQ), PrefetchValues: true})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				if it.Item().ValueSize() > 0 {
					indexed++
				}
			}
			return nil
		}))
		require.Positive(t, indexed, "the index holds the effects")
		if rapid.Bool().Draw(t, "older agent's store") {
			require.NoError(t, s.db.Update(func(txn *badger.Txn) error {
				it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pPendQ)})
				var keys [][]byte
				for it.Rewind(); it.Valid(); it.Next() {
					keys = append(keys, it.Item().KeyCopy(nil))
				}
				it.Close()
				for _, k := range keys {
					if err := txn.Set(k, nil); err != nil {
						return err
					}
				}
				return nil
			}))
		}
		var down uint64
		server := map[ledger.Key]int64{}
		for upWM := 0; upWM < n; {
			upWM = rapid.IntRange(upWM+1, n).Draw(t, "upWM")
			var all []ledger.Sourced
			for _, op := range own[:upWM] {
				all = append(all, ledger.Sourced{GW: "me", Op: op})
			}
			server = ledger.Fold(all)
			var vals []protocol.StockValue
			for k, v := range server {
				vals = append(vals, protocol.StockValue{Location: k.Location, SKU: k.SKU, Lot: k.Lot, Owner: k.Owner, Status: k.Status, OnHand: v})
			}
			down++
			if rapid.Bool().Draw(t, "cut short") {
				_, err := s.pruneAggs(uint64(upWM)) // one chunk's aggregates, no deletes
				require.NoError(t, err)
			}
			require.NoError(t, s.ApplyDownItems(Down{Stock: vals}, uint64(upWM), down))
			want := foldOwn(server, own[upWM:])
			rows, err := s.Stock("", "")
			require.NoError(t, err)
			got := map[ledger.Key]int64{}
			for _, r := range rows {
				if r.OnHand != 0 {
					got[ledger.Key{Location: r.Location, SKU: r.SKU, Lot: r.Lot, Owner: r.Owner, Status: r.Status}] = r.OnHand
				}
			}
			for k, v := range want {
				if v == 0 {
					delete(want, k)
				}
			}
			require.Equal(t, want, got, "upWM %d", upWM)
			require.NoError(t, s.db.View(func(txn *badger.Txn) error {
				it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pPendQ)})
				defer it.Close()
				it.Rewind()
				if it.Valid() {
					require.Greater(t, binary.BigEndian.Uint64(it.Item().Key()[len(pPendQ):]), uint64(upWM), "reflected entries are deleted")
				}
				return nil
			}))
		}
	})
}
