package badger

import (
	"context"
	"encoding/binary"
	"testing"

	bdb "github.com/dgraph-io/badger/v4"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/apply"
)

// uncachedLedger is the transaction ledger as it was before its caches:
// every GetKey a point read, every AddDelta a read of the delta's previous
// value. It shares nothing with the cached one.
type uncachedLedger struct{ *txnLedger }

func (u uncachedLedger) GetKey(k ledger.Key) (ledger.KeyState, bool, error) {
	var s ledger.KeyState
	ok, err := u.getCBOR(stockKey(k), &s)
	return s, ok, err
}

func (u uncachedLedger) AddDelta(k ledger.Key, o ledger.Order, qty int64) error {
	key := append(deltaPrefix(k), orderBytes(o)...)
	prev, _, err := getI64(u.txn, key)
	if err != nil {
		return err
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(prev+qty))
	return u.txn.Set(key, b[:])
}

func (u uncachedLedger) SumAfter(k ledger.Key, o ledger.Order) (int64, error) {
	return u.sumAfterScan(k, o)
}

// TestTransactionCachesEqualReads: the transaction ledger's caches (key
// states read once per transaction and written once, before commit; an
// op's earlier delta on a key found in the transaction's own list, not by
// a point read) leave the store exactly
// as the plain reads do — the same stock keys and the same delta records,
// byte for byte — for random receives, picks, moves (within one location
// too: one op touching a key twice), counts of both scopes, in random
// transaction boundaries.
func TestTransactionCachesEqualReads(t *testing.T) {
	cached, err := Open(Options{InMemory: true})
	require.NoError(t, err)
	defer cached.Close()
	plain, err := Open(Options{InMemory: true})
	require.NoError(t, err)
	defer plain.Close()
	rapid.Check(t, func(t *rapid.T) {
		require.NoError(t, cached.db.DropAll())
		require.NoError(t, plain.db.DropAll())
		n := rapid.IntRange(1, 60).Draw(t, "n")
		var all []ledger.Sourced
		for i := 0; i < n; i++ {
			gw := rapid.SampledFrom([]string{"a", "b"}).Draw(t, "gw")
			op := protocol.Op{Seq: uint64(i + 1), HLC: protocol.MakeHLC(int64(rapid.IntRange(1, 20).Draw(t, "ms")), 0),
				Location: rapid.SampledFrom([]string{"L1", "L2"}).Draw(t, "loc"), SKU: rapid.SampledFrom([]string{"x", "y"}).Draw(t, "sku"),
				Qty: int64(rapid.IntRange(1, 5).Draw(t, "qty"))}
			switch rapid.IntRange(0, 5).Draw(t, "kind") {
			case 0:
				op.Kind = protocol.OpReceive
			case 1:
				op.Kind = protocol.OpPick
			case 2:
				op.Kind, op.To = protocol.OpMove, rapid.SampledFrom([]string{"L1", "L2"}).Draw(t, "to")
			case 3:
				op.Kind = protocol.OpCount
			case 4:
				op.Kind, op.Scope, op.SKU, op.Qty = protocol.OpCount, protocol.ScopeLocation, "", 0
				op.Lines = []protocol.CountLine{{SKU: "x", Qty: int64(rapid.IntRange(0, 5).Draw(t, "lq"))}}
			case 5:
				op.Kind = protocol.OpAdjust
			}
			all = append(all, ledger.Sourced{WH: "w", GW: gw, Op: op})
		}
		for i := 0; i < len(all); {
			end := min(len(all), i+rapid.IntRange(1, 8).Draw(t, "txn_ops"))
			for _, s := range []struct {
				db *bdb.DB
				ls func(*bdb.Txn) ledger.Store
			}{
				{cached.db, func(txn *bdb.Txn) ledger.Store { return &txnLedger{txn: txn, deferKeys: true} }},
				{plain.db, func(txn *bdb.Txn) ledger.Store { return uncachedLedger{&txnLedger{txn: txn}} }},
			} {
				require.NoError(t, s.db.Update(func(txn *bdb.Txn) error {
					l := s.ls(txn)
					for _, o := range all[i:end] {
						if _, err := ledger.Apply(l, o.WH, o.GW, &o.Op); err != nil {
							return err
						}
					}
					if c, ok := l.(*txnLedger); ok {
						return c.flushKeys() // as backend.Update does before commit
					}
					return nil
				}))
			}
			i = end
		}
		for _, pfx := range []string{pfxKey, pfxDelta, pfxLoc} {
			require.Equal(t, dump(t, plain.db, pfx), dump(t, cached.db, pfx), "records under %q", pfx)
		}
	})
}

func dump(t require.TestingT, db *bdb.DB, prefix string) map[string]string {
	out := map[string]string{}
	require.NoError(t, db.View(func(txn *bdb.Txn) error {
		it := txn.NewIterator(bdb.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out[string(it.Item().Key())] = string(v)
		}
		return nil
	}))
	return out
}

// TestRecordReadsSeeDeferredKeyStates: inside an apply transaction, whose
// stock key states are written once before commit, the record reads of
// stock (Stock, StockWhere, Get and Scan of stock keys) see the states
// merged so far, and the commit stores them.
func TestRecordReadsSeeDeferredKeyStates(t *testing.T) {
	s, err := Open(Options{InMemory: true})
	require.NoError(t, err)
	defer s.Close()
	k := ledger.Key{WH: "w", Location: "L1", SKU: "x"}
	// The key's state changes between the reads: Get must not answer
	// from the cache it keeps for the master-data check.
	b := backend{db: s.db}
	require.NoError(t, b.Update(context.Background(), apply.Scope{}, func(tx apply.Tx) error {
		for seq := uint64(1); seq <= 2; seq++ {
			op := protocol.Op{Seq: seq, HLC: protocol.MakeHLC(int64(seq), 0), Kind: protocol.OpReceive, Location: k.Location, SKU: k.SKU, Qty: 3}
			if _, err := ledger.Apply(tx, k.WH, "g", &op); err != nil {
				return err
			}
			want := int64(3 * seq)
			r := tx.Records()
			rows, err := r.Stock(k.WH, "")
			require.NoError(t, err)
			require.Equal(t, []store.StockRow{store.RowOf(k, want)}, rows, "Stock")
			rows, err = r.StockWhere(store.StockQuery{Warehouse: k.WH})
			require.NoError(t, err)
			require.Equal(t, []store.StockRow{store.RowOf(k, want)}, rows, "StockWhere")
			v, ok, err := r.Get(stockKey(k))
			require.NoError(t, err)
			require.True(t, ok, "Get")
			var ks ledger.KeyState
			require.NoError(t, protocol.Unmarshal(v, &ks))
			require.Equal(t, want, ks.OnHand(), "Get")
			n := 0
			require.NoError(t, r.Scan([]byte(pfxKey), store.ScanOptions{}, func(_, v []byte) error {
				n++
				require.NoError(t, protocol.Unmarshal(v, &ks))
				require.Equal(t, want, ks.OnHand(), "Scan")
				return nil
			}))
			require.Equal(t, 1, n, "Scan")
		}
		return nil
	}))
	rows, err := s.Stock(context.Background(), store.StockQuery{Warehouse: k.WH})
	require.NoError(t, err)
	require.Equal(t, []store.StockRow{store.RowOf(k, 6)}, rows)
}
