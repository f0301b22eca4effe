package store

import (
	"sort"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/protocol"
)

// Notices: records for the server (receipt and task closes, local reorder
// alerts) committed with the ops that caused them and kept until the
// server acknowledges them.

// signal is a level-triggered wake-up; its zero value is ready to use.
type signal struct {
	once sync.Once
	c    chan struct{}
}

func (g *signal) ch() chan struct{} {
	g.once.Do(func() { g.c = make(chan struct{}, 1) })
	return g.c
}

func (g *signal) poke() {
	select {
	case g.ch() <- struct{}{}:
	default:
	}
}

// NoticeNotify returns a channel signalled after notices are committed,
// so the uplink can publish them without waiting for its status period.
func (s *Store) NoticeNotify() <-chan struct{} { return s.notices.ch() }

// writeNotices stores the commit's notices, stamped with the last seq
// committed, and applies their local effect (a closed PO or task).
func writeNotices(txn *badger.Txn, c *Commit, seq uint64) error {
	for _, n := range c.Notices {
		n.Seq = seq
		switch n.Kind {
		case protocol.NoticePOClose:
			if err := txn.Set([]byte(mdClosed+"p/"+n.Ref), []byte("closed")); err != nil {
				return err
			}
		case protocol.NoticeTaskClose:
			st := "done"
			var t protocol.Task
			if ok, err := getCBOR(txn, pTask+n.Ref, &t); err != nil {
				return err
			} else if ok && t.Kind == "pick" && n.Qty < t.Qty {
				st = "short"
			}
			if err := txn.Set([]byte(mdClosed+"t/"+n.Ref), []byte(st)); err != nil {
				return err
			}
		case protocol.NoticeShip:
			// Until the server confirms, a second pack of the order here
			// is refused (session.Lookup.Shipped).
			if err := txn.Set([]byte(mdClosed+"o/"+n.Ref), []byte("shipped")); err != nil {
				return err
			}
		}
		if err := putOrDelete(txn, mdNotice+n.ID, false, n); err != nil {
			return err
		}
		c.noticed = true
	}
	return nil
}

// Notices returns up to max pending notices, oldest first by seq.
func (s *Store) Notices(max int) ([]protocol.Notice, error) {
	var out []protocol.Notice
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(mdNotice), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var n protocol.Notice
			if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &n) }); err != nil {
				return err
			}
			out = append(out, n)
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return out, err
}
