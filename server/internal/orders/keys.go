package orders

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/protocol"
)

// Keys of the order model, beside the store's (fields joined with NUL,
// which validation keeps out of every field):
//
//	or/o/{wh}\0{id}             Order (CBOR)
//	or/open/{wh}\0{id}          present while the order is open
//	or/x/{channel}\0{external}  "{wh}\0{id}" — idempotency of channel orders
//	or/c/{channel}              Channel (CBOR)
//	or/seq                      reservation sequence lease (uint64)
const (
	pfxOrder   = "or/o/"
	pfxOpen    = "or/open/"
	pfxIdem    = "or/x/"
	pfxChannel = "or/c/"
	keySeq     = "or/seq"
)

func orderKey(wh, id string) []byte { return []byte(pfxOrder + wh + "\x00" + id) }
func openKey(wh, id string) []byte  { return []byte(pfxOpen + wh + "\x00" + id) }
func idemKey(ch, ext string) []byte { return []byte(pfxIdem + ch + "\x00" + ext) }
func channelKey(name string) []byte { return []byte(pfxChannel + name) }

func split2(b []byte) (string, string, bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", "", false
	}
	return string(b[:i]), string(b[i+1:]), true
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func getU64(txn *badger.Txn, key []byte) (uint64, error) {
	v, ok, err := getBytes(txn, key)
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("corrupt value at %q", key)
	}
	return binary.BigEndian.Uint64(v), nil
}

func getBytes(txn *badger.Txn, key []byte) ([]byte, bool, error) {
	it, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v, err := it.ValueCopy(nil)
	return v, true, err
}

func txnHas(txn *badger.Txn, key []byte) (bool, error) {
	_, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

func getCBOR(txn *badger.Txn, key []byte, v any) (bool, error) {
	b, ok, err := getBytes(txn, key)
	if err != nil || !ok {
		return ok, err
	}
	return true, protocol.Unmarshal(b, v)
}

func putCBOR(txn *badger.Txn, key []byte, v any) error {
	b, err := protocol.Marshal(v)
	if err != nil {
		return err
	}
	return txn.Set(key, b)
}

// forEach calls fn with every key (without prefix) and value under prefix.
func forEach(txn *badger.Txn, prefix string, fn func(k, v []byte) error) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true, PrefetchSize: 100})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			return err
		}
		if err := fn(it.Item().Key()[len(prefix):], v); err != nil {
			return err
		}
	}
	return nil
}
