package badger

import (
	"encoding/binary"
	"testing"

	bdb "github.com/dgraph-io/badger/v4"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
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
// states read once per transaction; an op's earlier delta on a key found in
// the transaction's own list, not by a point read) leave the store exactly
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
				{cached.db, func(txn *bdb.Txn) ledger.Store { return &txnLedger{txn: txn} }},
				{plain.db, func(txn *bdb.Txn) ledger.Store { return uncachedLedger{&txnLedger{txn: txn}} }},
			} {
				require.NoError(t, s.db.Update(func(txn *bdb.Txn) error {
					l := s.ls(txn)
					for _, o := range all[i:end] {
						if _, err := ledger.Apply(l, o.WH, o.GW, &o.Op); err != nil {
							return err
						}
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
