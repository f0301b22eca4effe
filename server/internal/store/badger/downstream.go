package badger

import (
	"context"
	"errors"
	"sort"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Downstream log: one per warehouse, compacted to the latest entry per item
// key (a gateway offline for a week gets current values, not a week of
// history). Every gateway of the warehouse reads the same log; entries with
// a Target are for that gateway only (tasks) and are skipped for others, so
// batches may be sparse, as the protocol allows.
//
//	L/{wh}\0{seq}                 logEntry (CBOR)
//	LK/{wh}\0{kind}{itemkey}      seq of the item key's latest entry
//	LH/{wh}                       head seq
//	G/{wh}\0{gw}                  Gateway (CBOR)
const (
	pfxLog     = "L/"
	pfxLogKey  = "LK/"
	pfxLogHead = "LH/"
	pfxGateway = "G/"
)

type logEntry struct {
	Target string            `cbor:"1,keyasint,omitempty"`
	Item   protocol.DownItem `cbor:"2,keyasint"`
}

// appendDown adds an item to wh's log, deleting the item key's older entry.
func appendDown(txn *bdb.Txn, wh, target string, kind protocol.DownKind, itemKey string, body any) error {
	raw, err := protocol.Marshal(body)
	if err != nil {
		return err
	}
	head, err := getU64(txn, []byte(pfxLogHead+wh))
	if err != nil {
		return err
	}
	head++
	lk := []byte(pfxLogKey + wh + "\x00" + string([]byte{byte(kind)}) + itemKey)
	old, err := getU64(txn, lk)
	if err != nil {
		return err
	}
	if old != 0 {
		if err := txn.Delete([]byte(pfxLog + wh + "\x00" + u64(old))); err != nil {
			return err
		}
	}
	if err := putCBOR(txn, []byte(pfxLog+wh+"\x00"+u64(head)), logEntry{Target: target, Item: protocol.DownItem{Seq: head, Kind: kind, Body: raw}}); err != nil {
		return err
	}
	if err := txn.Set(lk, []byte(u64(head))); err != nil {
		return err
	}
	return txn.Set([]byte(pfxLogHead+wh), []byte(u64(head)))
}

// AppendDown adds a downstream item for every gateway of wh (target "") or
// one gateway, compacted by itemKey.
func (s *Store) AppendDown(_ context.Context, wh, target string, kind protocol.DownKind, itemKey string, body any) error {
	return update(s.disk, s.db, func(txn *bdb.Txn) error { return appendDown(txn, wh, target, kind, itemKey, body) })
}

// DownFrom reads up to max entries of wh's log after seq `after` for gw.
func (s *Store) DownFrom(_ context.Context, wh, gw string, after uint64, max int) (store.DownRead, error) {
	r := store.DownRead{First: after + 1}
	err := s.db.View(func(txn *bdb.Txn) error {
		var err error
		if r.Head, err = getU64(txn, []byte(pfxLogHead+wh)); err != nil {
			return err
		}
		if r.UpWM, err = getU64(txn, wmKey(wh, gw)); err != nil {
			return err
		}
		if after >= r.Head {
			r.Last = after
			return nil
		}
		prefix := []byte(pfxLog + wh + "\x00")
		it := txn.NewIterator(bdb.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 128})
		defer it.Close()
		r.Last = r.Head
		for it.Seek(append(prefix, u64(after+1)...)); it.Valid(); it.Next() {
			var e logEntry
			if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &e) }); err != nil {
				return err
			}
			if len(r.Items) >= max {
				r.Last = e.Item.Seq - 1
				break
			}
			if e.Target == "" || e.Target == gw {
				r.Items = append(r.Items, e.Item)
			}
		}
		return nil
	})
	if r.Last < r.Head {
		r.UpWM = 0 // only a batch that reaches the head may move the agent's rebase point
	}
	return r, err
}

// UpdateGateway reads, changes and writes a gateway's record atomically.
func (s *Store) UpdateGateway(_ context.Context, wh, gw string, f func(*store.Gateway)) error {
	key := []byte(pfxGateway + join(wh, gw))
	if err := s.disk.Err(); err != nil {
		return err
	}
	err := s.db.Update(func(txn *bdb.Txn) error {
		g := store.Gateway{Warehouse: wh, Gateway: gw}
		if _, err := (&txnLedger{txn: txn}).getCBOR(key, &g); err != nil {
			return err
		}
		f(&g)
		return putCBOR(txn, key, g)
	})
	if errors.Is(err, bdb.ErrConflict) {
		return store.ErrConflict
	}
	return err
}

// Gateways lists gateway records (of wh, or all when wh is empty), with
// their watermarks.
func (s *Store) Gateways(_ context.Context, wh string) ([]store.Gateway, error) {
	prefix := []byte(pfxGateway)
	if wh != "" {
		prefix = append(prefix, wh+"\x00"...)
	}
	var out []store.Gateway
	err := s.db.View(func(txn *bdb.Txn) error {
		it := txn.NewIterator(bdb.IteratorOptions{Prefix: prefix, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var g store.Gateway
			if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &g) }); err != nil {
				return err
			}
			wm, err := getU64(txn, wmKey(g.Warehouse, g.Gateway))
			if err != nil {
				return err
			}
			g.WM = wm
			out = append(out, g)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Warehouse != out[j].Warehouse {
			return out[i].Warehouse < out[j].Warehouse
		}
		return out[i].Gateway < out[j].Gateway
	})
	return out, err
}
