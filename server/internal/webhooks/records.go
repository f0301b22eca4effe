package webhooks

import (
	"encoding/binary"

	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Records beside the queue: keys and bulk deletes.

func queueKey(id string, seq uint64) []byte { return []byte(pfxQueue + id + "\x00" + string(u64(seq))) }

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

// deletePrefix deletes every key under prefix, in transactions of at most
// deleteBatch keys.
func deletePrefix(rec store.Records, prefix string) error {
	for {
		n := 0
		err := rec.Update(func(tx store.Tx) error {
			var keys [][]byte
			if err := tx.Scan([]byte(prefix), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
				keys = append(keys, k)
				if len(keys) == deleteBatch {
					return store.ErrStopScan
				}
				return nil
			}); err != nil {
				return err
			}
			for _, k := range keys {
				if err := tx.Delete(k); err != nil {
					return err
				}
			}
			n = len(keys)
			return nil
		})
		if err != nil || n == 0 {
			return err
		}
	}
}

const deleteBatch = 1000
