package orders

import (
	"bytes"
	"encoding/binary"
	"slices"

	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Keys of the order model, beside the store's (fields joined with NUL,
// which validation keeps out of every field):
//
//	or/o/{wh}\0{id}             Order (CBOR)
//	or/open/{wh}\0{id}          present while the order is open
//	or/x/{channel}\0{external}  "{wh}\0{id}" — idempotency of channel orders
//	or/hx/{channel}\0{checkout} "{wh}\0{id}" — idempotency of checkout holds
//	or/c/{channel}              Channel (CBOR)
//	or/seq                      reservation sequence (uint64): the last one handed out
//	or/l/{seq}                  "{wh}\0{id}" — the order written with that
//	                            sequence (seq big-endian; only an order's latest write)
//
// or/seq is shared by every replica over one database: each write of an
// order, and each change of reservations the active replica publishes,
// takes the next value in a read-modify-write of one transaction. Before a
// replica claims a sequence it reads the orders of or/l/ written since the
// last one it read, so that a snapshot with Seq s accounts for every order
// written with a sequence ≤ s, whichever replica wrote it.
const (
	pfxOrder    = "or/o/"
	pfxOpen     = "or/open/"
	pfxIdem     = "or/x/"
	pfxHoldIdem = "or/hx/"
	pfxChannel  = "or/c/"
	pfxLog      = "or/l/"
	keySeq      = "or/seq"
)

func orderKey(wh, id string) []byte { return []byte(pfxOrder + wh + "\x00" + id) }
func openKey(wh, id string) []byte  { return []byte(pfxOpen + wh + "\x00" + id) }
func idemKey(ch, ext string) []byte { return []byte(pfxIdem + ch + "\x00" + ext) }
func holdIdemKey(ch, checkout string) []byte {
	return []byte(pfxHoldIdem + ch + "\x00" + checkout)
}
func channelKey(name string) []byte { return []byte(pfxChannel + name) }
func logKey(seq uint64) []byte      { return append([]byte(pfxLog), u64(seq)...) }
func orderRef(wh, id string) []byte { return []byte(wh + "\x00" + id) }

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

// readLog returns the current record of every order written with a
// sequence above after, oldest write first.
func readLog(kv store.KV, after uint64) ([]Order, error) {
	var refs []okey
	seen := map[okey]bool{}
	err := kv.Scan([]byte(pfxLog), store.ScanOptions{Reverse: true}, func(k, v []byte) error {
		if len(k) != len(pfxLog)+8 {
			return nil
		}
		if binary.BigEndian.Uint64(k[len(pfxLog):]) <= after {
			return store.ErrStopScan
		}
		if wh, id, ok := split2(v); ok && !seen[okey{wh, id}] {
			seen[okey{wh, id}] = true
			refs = append(refs, okey{wh, id})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Reverse(refs)
	out := make([]Order, 0, len(refs))
	for _, r := range refs {
		var o Order
		if found, err := getCBOR(kv, orderKey(r.wh, r.id), &o); err != nil {
			return nil, err
		} else if found {
			out = append(out, o)
		}
	}
	return out, nil
}

// nextSeq takes the next reservation sequence in tx (a read-modify-write,
// so no two transactions get the same one) and returns it with the orders
// written since after that the caller must read into its model before it
// claims the sequence.
func nextSeq(tx store.Tx, after uint64) ([]Order, uint64, error) {
	last, err := getU64(tx, []byte(keySeq))
	if err != nil {
		return nil, 0, err
	}
	recs, err := readLog(tx, after)
	if err != nil {
		return nil, 0, err
	}
	next := last + 1
	if err := tx.Set([]byte(keySeq), u64(next)); err != nil {
		return nil, 0, err
	}
	return recs, next, nil
}

// logOrder records that order wh/id was written with sequence seq, and
// drops the entry of its previous write (prev; readers only need its
// latest).
func logOrder(tx store.Tx, wh, id string, seq, prev uint64) error {
	if prev != 0 && prev != seq {
		v, ok, err := tx.Get(logKey(prev))
		if err != nil {
			return err
		}
		if ok && bytes.Equal(v, orderRef(wh, id)) {
			if err := tx.Delete(logKey(prev)); err != nil {
				return err
			}
		}
	}
	return tx.Set(logKey(seq), orderRef(wh, id))
}

// Record helpers shared by the packages beside the ledger (store/tx.go).
var (
	getU64  = store.GetU64
	getCBOR = store.GetCBOR
	putCBOR = store.PutCBOR
)
