package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/agent/internal/session"
	"github.com/shelfsync/shelfsync/protocol"
)

// Tasks from the server (t/{id}) are indexed, so that a pick or pack scan
// reads the tasks of its order and the status screen the open tasks, not
// every task the gateway ever held (a pack station receives every closed
// pick task of the warehouse), and closed tasks are pruned after a
// retention (docs/DESIGN.md, "Tasks at the gateway"):
//
//	ti/o/{order}\0{id}   the task belongs to the order (written with t/{id})
//	ti/p/{id}            the server sent the task open
//	ti/c/{id}            the server sent it closed: when this gateway took
//	                     it closed (Unix ms, big-endian; 0: prune at the next
//	                     sweep, its order was shipped here and confirmed)
//	m/task-index         the index covers every task (a store of an older
//	                     agent has none: Open builds it)
const (
	tiOrder    = "ti/o/"
	tiOpen     = "ti/p/"
	tiClosed   = "ti/c/"
	kTaskIndex = "m/task-index"
)

// DefaultTaskRetention is how long a closed task is kept by default.
const DefaultTaskRetention = 7 * 24 * time.Hour

// taskIndexBatch bounds the tasks indexed per transaction when Open builds
// the index (a gateway's small memtables bound a transaction's size).
const taskIndexBatch = 1000

func openTask(t protocol.Task) bool { return t.Status == "" || t.Status == "open" }

func orderKey(order, id string) []byte { return []byte(tiOrder + order + "\x00" + id) }

// indexTask writes t (the server's version of a task) and its index
// entries, replacing those of the version it held before.
func (s *Store) indexTask(txn *badger.Txn, t protocol.Task) error {
	var old protocol.Task
	had, err := getCBOR(txn, pTask+t.ID, &old)
	if err != nil {
		return err
	}
	b, err := protocol.Marshal(t)
	if err != nil {
		return err
	}
	if err := txn.Set([]byte(pTask+t.ID), b); err != nil {
		return err
	}
	return s.indexEntries(txn, t, had, old)
}

func (s *Store) indexEntries(txn *badger.Txn, t protocol.Task, had bool, old protocol.Task) error {
	if had && old.Order != "" && old.Order != t.Order {
		if err := txn.Delete(orderKey(old.Order, t.ID)); err != nil {
			return err
		}
	}
	if t.Order != "" {
		if err := txn.Set(orderKey(t.Order, t.ID), nil); err != nil {
			return err
		}
	}
	if openTask(t) {
		if err := txn.Set([]byte(tiOpen+t.ID), nil); err != nil {
			return err
		}
		return txn.Delete([]byte(tiClosed + t.ID))
	}
	if err := txn.Delete([]byte(tiOpen + t.ID)); err != nil {
		return err
	}
	if _, err := txn.Get([]byte(tiClosed + t.ID)); err == nil {
		return nil // closed earlier: its retention runs from then
	} else if !errors.Is(err, badger.ErrKeyNotFound) {
		return err
	}
	return txn.Set([]byte(tiClosed+t.ID), be(uint64(s.now().UnixMilli())))
}

// buildTaskIndex indexes the tasks of a store written by an agent without
// the index, in batches, then records that the index is complete. Indexing
// is idempotent, so a crash midway only means the next Open starts over.
// Closed tasks found here count their retention from now.
func (s *Store) buildTaskIndex() error {
	var done bool
	if err := s.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get([]byte(kTaskIndex))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		done = err == nil
		return err
	}); err != nil || done {
		return err
	}
	start, n := []byte(pTask), 0
	for {
		var next []byte
		err := s.update(func(txn *badger.Txn) error {
			next = nil
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pTask), PrefetchValues: true})
			defer it.Close()
			i := 0
			for it.Seek(start); it.Valid(); it.Next() {
				if i == taskIndexBatch {
					next = it.Item().KeyCopy(nil)
					return nil
				}
				var t protocol.Task
				if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &t) }); err != nil {
					return err
				}
				if err := s.indexEntries(txn, t, false, protocol.Task{}); err != nil {
					return err
				}
				i++
			}
			n += i
			return nil
		})
		if err != nil {
			return err
		}
		if next == nil {
			break
		}
		n += taskIndexBatch
		start = next
	}
	if err := s.update(func(txn *badger.Txn) error { return txn.Set([]byte(kTaskIndex), be(1)) }); err != nil {
		return err
	}
	if n > 0 {
		s.log.Info("store: indexed the tasks of an older data directory", "tasks", n)
	}
	return nil
}

// withLocalStatus applies a close done here and not yet confirmed.
func withLocalStatus(txn *badger.Txn, t *protocol.Task) error {
	if !openTask(*t) {
		return nil
	}
	it, err := txn.Get([]byte(mdClosed + "t/" + t.ID))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	st, err := it.ValueCopy(nil)
	if err == nil && len(st) > 0 {
		t.Status = string(st)
	}
	return err
}

// tasksByIndex reads the tasks named by the index keys under prefix (the
// task id is what follows the last NUL, or the whole rest of the key).
func tasksByIndex(txn *badger.Txn, prefix string) ([]protocol.Task, error) {
	var ids []string
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix)})
	for it.Rewind(); it.Valid(); it.Next() {
		k := it.Item().Key()[len(prefix):]
		if i := bytes.LastIndexByte(k, 0); i >= 0 {
			k = k[i+1:]
		}
		ids = append(ids, string(k))
	}
	it.Close()
	out := make([]protocol.Task, 0, len(ids))
	for _, id := range ids {
		var t protocol.Task
		ok, err := getCBOR(txn, pTask+id, &t)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if err := withLocalStatus(txn, &t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// OrderTasks returns the tasks of an order, with their status as this
// gateway knows it, reading only that order's tasks.
func (s *Store) OrderTasks(order string) ([]protocol.Task, error) {
	var out []protocol.Task
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		out, err = tasksByIndex(txn, tiOrder+order+"\x00")
		return err
	})
	return out, err
}

// OpenTasks returns the tasks the server sent open, with their status as
// this gateway knows it (one closed here and not yet confirmed says so).
func (s *Store) OpenTasks() ([]protocol.Task, error) {
	var out []protocol.Task
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		out, err = tasksByIndex(txn, tiOpen)
		return err
	})
	return out, err
}

// PruneTasks drops the tasks the server sent closed (done, short or
// cancelled) more than the task retention before now, with what was
// picked here against them. Open tasks are never dropped. A task of an
// order stays while anything may still need it:
//
//   - a task of the order is open, or closed here and not yet confirmed;
//   - a task of the order closed less than the retention ago (the order's
//     tasks go together, the retention counting from the last close);
//   - a ship of the order by this gateway awaits the server's confirmation;
//   - a device's saved session names the order (a pack in progress).
//
// An order this gateway shipped and the server confirmed needs none of
// them: its tasks go at the next sweep, whatever their age. It returns how
// many tasks it dropped.
func (s *Store) PruneTasks(now time.Time) (int, error) {
	if s.taskRetention < 0 {
		return 0, nil
	}
	cut := uint64(now.Add(-s.taskRetention).UnixMilli())
	// Candidates: closed long enough ago (read only, keys and 8-byte values).
	var ids []string
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(tiClosed), PrefetchValues: false})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var at uint64
			if err := it.Item().Value(func(b []byte) error {
				if len(b) == 8 {
					at = binary.BigEndian.Uint64(b)
				}
				return nil
			}); err != nil {
				return err
			}
			if at <= cut {
				ids = append(ids, string(it.Item().Key()[len(tiClosed):]))
			}
		}
		return nil
	})
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	dropped := 0
	for len(ids) > 0 {
		batch := ids[:min(len(ids), taskIndexBatch)]
		ids = ids[len(batch):]
		n := 0
		err := s.update(func(txn *badger.Txn) error {
			n = 0
			// The sessions are read in the transaction that drops, so a
			// session saved meanwhile makes it conflict and start over.
			busy, err := s.sessionOrders(txn)
			if err != nil {
				return err
			}
			orderOK := map[string]bool{}
			for _, id := range batch {
				var t protocol.Task
				ok, err := getCBOR(txn, pTask+id, &t)
				if err != nil {
					return err
				}
				if !ok {
					if err := txn.Delete([]byte(tiClosed + id)); err != nil {
						return err
					}
					continue
				}
				if openTask(t) {
					continue // reopened meanwhile
				}
				if pending, err := has(txn, mdClosed+"t/"+id); err != nil {
					return err
				} else if pending {
					continue
				}
				if t.Order != "" {
					ok, seen := orderOK[t.Order]
					if !seen {
						ok, err = orderSettled(txn, t.Order, cut, busy)
						if err != nil {
							return err
						}
						orderOK[t.Order] = ok
					}
					if !ok {
						continue
					}
				}
				for _, k := range []string{pTask + id, tiClosed + id, tiOpen + id, mdPicked + id} {
					if err := txn.Delete([]byte(k)); err != nil {
						return err
					}
				}
				if t.Order != "" {
					if err := txn.Delete(orderKey(t.Order, id)); err != nil {
						return err
					}
				}
				n++
			}
			return nil
		})
		if err != nil {
			return dropped, err
		}
		dropped += n
	}
	if dropped > 0 {
		s.log.Info("store: pruned closed tasks", "tasks", dropped, "retention", s.taskRetention)
	}
	return dropped, nil
}

// orderSettled reports whether the tasks of order may be dropped (see
// PruneTasks).
func orderSettled(txn *badger.Txn, order string, cut uint64, busy map[string]bool) (bool, error) {
	if busy[order] {
		return false, nil
	}
	if shipping, err := has(txn, mdClosed+"o/"+order); err != nil || shipping {
		return false, err
	}
	prefix := tiOrder + order + "\x00"
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix)})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		id := string(it.Item().Key()[len(prefix):])
		if open, err := has(txn, tiOpen+id); err != nil || open {
			return false, err
		}
		if pending, err := has(txn, mdClosed+"t/"+id); err != nil || pending {
			return false, err
		}
		c, err := txn.Get([]byte(tiClosed + id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		var at uint64
		if err := c.Value(func(b []byte) error {
			if len(b) == 8 {
				at = binary.BigEndian.Uint64(b)
			}
			return nil
		}); err != nil {
			return false, err
		}
		if at > cut {
			return false, nil
		}
	}
	return true, nil
}

// settleShippedOrder marks the closed tasks of an order this gateway
// shipped, now that the server confirmed it, for the next prune.
func settleShippedOrder(txn *badger.Txn, order string) error {
	prefix := tiOrder + order + "\x00"
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix)})
	var ids []string
	for it.Rewind(); it.Valid(); it.Next() {
		ids = append(ids, string(it.Item().Key()[len(prefix):]))
	}
	it.Close()
	for _, id := range ids {
		if closed, err := has(txn, tiClosed+id); err != nil {
			return err
		} else if closed {
			if err := txn.Set([]byte(tiClosed+id), be(0)); err != nil {
				return err
			}
		}
	}
	return nil
}

// sessionOrders returns the orders named by the devices' saved sessions.
func (s *Store) sessionOrders(txn *badger.Txn) (map[string]bool, error) {
	out := map[string]bool{}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pSess), PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var st session.Station
		if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &st) }); err != nil {
			// An unreadable session protects nothing it names; say so.
			s.log.Warn("store: saved session unreadable", "device", strings.TrimPrefix(string(it.Item().Key()), pSess), "err", err)
			continue
		}
		if st.Session != nil && st.Session.Order != "" {
			out[st.Session.Order] = true
		}
	}
	return out, nil
}

func has(txn *badger.Txn, key string) (bool, error) {
	_, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}
