package badger

import (
	"errors"

	bdb "github.com/dgraph-io/badger/v4"
	"github.com/stretchr/testify/require"
)

// OpLogValue returns the op log's value for wh/gw/seq as stored (nil when
// there is none), for the contract's checks that an op is kept as
// received.
func OpLogValue(t require.TestingT, s *Store, wh, gw string, seq uint64) []byte {
	var v []byte
	err := s.db.View(func(txn *bdb.Txn) error {
		it, err := txn.Get(opKey(pfxOp, wh, gw, seq))
		if errors.Is(err, bdb.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		v, err = it.ValueCopy(nil)
		return err
	})
	require.NoError(t, err)
	return v
}
