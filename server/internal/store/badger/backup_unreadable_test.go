package badger

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	bdb "github.com/dgraph-io/badger/v4"
	"github.com/stretchr/testify/require"
)

// TestBackupFailsOnAKeyItCannotRead: a key whose value Badger cannot read
// back (here its value-log file is gone; Badger then logs and returns an
// empty value, and its stream would skip a key whose read fails) fails the
// backup with the key named, instead of a backup that silently lacks it or
// holds it empty. The same store with its value log whole backs up, and
// the backup restores every key.
func TestBackupFailsOnAKeyItCannotRead(t *testing.T) {
	write := func(dir string) bdb.Options {
		// Values above 64 bytes go to the value log, in 1 MiB files: the
		// first keys' file is not the one Badger checks at open.
		opts := bdb.DefaultOptions(dir).WithLogger(nil).WithValueThreshold(64).WithValueLogFileSize(1 << 20)
		db, err := bdb.Open(opts)
		require.NoError(t, err)
		for i := range 600 {
			require.NoError(t, db.Update(func(txn *bdb.Txn) error {
				return txn.Set([]byte{'k', byte(i >> 8), byte(i)}, bytes.Repeat([]byte{byte(i)}, 4096))
			}))
		}
		require.NoError(t, db.Close())
		return opts
	}
	backup := func(opts bdb.Options) ([]byte, error) {
		db, err := bdb.Open(opts)
		require.NoError(t, err)
		defer db.Close()
		var out bytes.Buffer
		err = (&Store{db: db}).Backup(context.Background(), &out)
		return out.Bytes(), err
	}

	whole := write(t.TempDir())
	b, err := backup(whole)
	require.NoError(t, err)
	f := filepath.Join(t.TempDir(), "backup")
	require.NoError(t, os.WriteFile(f, b, 0o644))
	bf, err := os.Open(f)
	require.NoError(t, err)
	defer bf.Close()
	restored := filepath.Join(t.TempDir(), "restored")
	_, err = Restore(restored, bf)
	require.NoError(t, err)
	db, err := bdb.Open(bdb.DefaultOptions(restored).WithLogger(nil))
	require.NoError(t, err)
	n := 0
	require.NoError(t, db.View(func(txn *bdb.Txn) error {
		it := txn.NewIterator(bdb.IteratorOptions{Prefix: []byte{'k'}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			k := it.Item().Key()
			require.Equal(t, bytes.Repeat([]byte{k[2]}, 4096), v)
			n++
		}
		return nil
	}))
	require.NoError(t, db.Close())
	require.Equal(t, 600, n, "the whole store's backup restores every key")

	dir := t.TempDir()
	damaged := write(dir)
	require.NoError(t, os.Remove(filepath.Join(dir, "000001.vlog")))
	_, err = backup(damaged)
	require.Error(t, err, "a backup that lacks a key is not a backup")
	require.Contains(t, err.Error(), "cannot read key")
}
