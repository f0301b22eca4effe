package badger

import (
	"errors"
	"slices"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/protocol"
)

// Open count tasks by location: a count op closes the open count tasks of
// its location (apply.closeCountTasks), and listing every task of the
// warehouse for each count op — an iterator inside the apply transaction,
// which sorts all the transaction's writes first — cost more than the op.
//
//	tc/{wh}\0{loc}     CBOR []string: IDs of the open count tasks at loc, sorted
//	m/taskidx          set once the index covers every task (built at Open)
const (
	pfxCountTasks   = "tc/"
	keyTaskIdxBuilt = "m/taskidx"
)

func countTasksKey(wh, loc string) []byte { return []byte(pfxCountTasks + join(wh, loc)) }

// openCount reports whether t is an open count task (the ones a count
// closes).
func openCount(t protocol.Task) bool {
	return t.Kind == "count" && (t.Status == "" || t.Status == "open")
}

func (l *txnLedger) countTaskIDs(wh, loc string) ([]string, error) {
	var ids []string
	_, err := l.getCBOR(countTasksKey(wh, loc), &ids)
	return ids, err
}

func (l *txnLedger) setCountTaskIDs(wh, loc string, ids []string) error {
	if len(ids) == 0 {
		return l.txn.Delete(countTasksKey(wh, loc))
	}
	return putCBOR(l.txn, countTasksKey(wh, loc), ids)
}

// indexTask keeps the index true for a task written over old (absent:
// ok false).
func (l *txnLedger) indexTask(wh string, old protocol.Task, ok bool, t protocol.Task) error {
	if ok && openCount(old) && (!openCount(t) || old.Location != t.Location) {
		ids, err := l.countTaskIDs(wh, old.Location)
		if err != nil {
			return err
		}
		if i, found := slices.BinarySearch(ids, old.ID); found {
			if err := l.setCountTaskIDs(wh, old.Location, slices.Delete(ids, i, i+1)); err != nil {
				return err
			}
		}
	}
	if openCount(t) {
		ids, err := l.countTaskIDs(wh, t.Location)
		if err != nil {
			return err
		}
		if i, found := slices.BinarySearch(ids, t.ID); !found {
			if err := l.setCountTaskIDs(wh, t.Location, slices.Insert(ids, i, t.ID)); err != nil {
				return err
			}
		}
	}
	return nil
}

// OpenCountTasks implements apply.Tx: point reads only.
func (t *tx) OpenCountTasks(wh, loc string) ([]protocol.Task, error) {
	ids, err := t.countTaskIDs(wh, loc)
	if err != nil {
		return nil, err
	}
	out := make([]protocol.Task, 0, len(ids))
	for _, id := range ids {
		var task protocol.Task
		ok, err := t.getCBOR([]byte(pfxTask+join(wh, id)), &task)
		if err != nil {
			return nil, err
		}
		if ok && openCount(task) && task.Location == loc { // else a stale entry: the task says
			out = append(out, task)
		}
	}
	return out, nil
}

// buildTaskIndex builds the index from every task, once per data
// directory (a directory written before the index has none).
func (s *Store) buildTaskIndex() error {
	if err := s.db.View(func(txn *bdb.Txn) error {
		_, err := txn.Get([]byte(keyTaskIdxBuilt))
		return err
	}); err == nil {
		return nil
	} else if !errors.Is(err, bdb.ErrKeyNotFound) {
		return err
	}
	if err := s.db.DropPrefix([]byte(pfxCountTasks)); err != nil {
		return err
	}
	idx := map[[2]string][]string{}
	if err := s.db.View(func(txn *bdb.Txn) error {
		it := txn.NewIterator(bdb.IteratorOptions{Prefix: []byte(pfxTask), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			key := string(it.Item().Key()[len(pfxTask):])
			wh, _, found := cutNUL(key)
			if !found {
				continue
			}
			var task protocol.Task
			if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &task) }); err != nil {
				return err
			}
			if openCount(task) {
				k := [2]string{wh, task.Location}
				idx[k] = append(idx[k], task.ID)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	wb := s.db.NewWriteBatch()
	for k, ids := range idx {
		slices.Sort(ids)
		b, err := protocol.Marshal(slices.Compact(ids))
		if err != nil {
			wb.Cancel()
			return err
		}
		if err := wb.Set(countTasksKey(k[0], k[1]), b); err != nil {
			wb.Cancel()
			return err
		}
	}
	if err := wb.Set([]byte(keyTaskIdxBuilt), []byte{1}); err != nil {
		wb.Cancel()
		return err
	}
	return wb.Flush()
}

func cutNUL(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
