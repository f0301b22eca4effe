// Package store is the agent's durable state in Badger: the op sequence,
// the outbox, open scan sessions, the server's view of stock and the local
// view (server value plus this gateway's not-yet-reflected ops).
//
// Every commit — ops, outbox entries, view changes and session state — is
// one Badger transaction written with SyncWrites, so a scan confirmed to the
// operator survives kill -9 and power loss. Concurrent commits from many
// devices are grouped into one transaction and one fsync (group commit).
package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/shelfsync/shelfsync/protocol"
)

// Key layout (NUL-separated fields, big-endian numbers):
//
//	m/seq, m/acked, m/down, m/upwm, m/epoch    counters and positions
//	o/{seq}                                    outbox: op (CBOR), until acked
//	p/{loc}\0{sku}\0{lot}\0{seq}               pending effect on a key (CBOR)
//	v/{loc}\0{sku}\0{lot}                      local view on-hand (int64)
//	s/{loc}\0{sku}\0{lot}                      server value (int64)
//	x/{device}                                 open session state (opaque bytes)
//	t/{id}                                     task from the server (CBOR)
//	ti/…, m/task-index                         task indexes by order, open, closed-at (tasks.go)
//	md/…                                       master data, receipts, picks, EPCs, notices (masterdata.go)
//	q/{loc}\0{seq}                             pending own location count (covers keys seen later)
//	r/{seq}{loc}\0{sku}\0{lot}                 pending entries by seq, to prune without a full scan;
//	                                           the effect (CBOR, as p/; empty from older agents)
//	a/{loc}\0{sku}\0{lot}                      aggregate of a key's pending entries (sum, sets)
//	y/{loc}\0{sku}\0{lot}                      dirty: view to recompute (pending pruned)
//	m/pruned                                   highest seq whose pending entries are deleted
//	m/agg-pruned                               highest seq whose pending effects the aggregates leave out
const (
	kSeq   = "m/seq"
	kAcked = "m/acked"
	kDown  = "m/down"
	kUpWM  = "m/upwm"
	kEpoch = "m/epoch"
	// kDownEpoch is the server identity whose downstream log m/down
	// counts in (written with m/down; absent in stores of older agents).
	kDownEpoch = "m/down-epoch"
	kPruned    = "m/pruned"
	// kAggPruned: the aggregates (a/) leave out the pending entries up to
	// this seq; those above m/pruned are still to be deleted (view.go).
	kAggPruned = "m/agg-pruned"
	pOut       = "o/"
	pPend      = "p/"
	pView      = "v/"
	pSrv       = "s/"
	pSess      = "x/"
	pTask      = "t/"
	pLocP      = "q/"
	pPendQ     = "r/"
	pAgg       = "a/"
	pDirty     = "y/"
)

// ErrClosed is returned by Commit after Close.
var ErrClosed = errors.New("store closed")

// Options configure the store.
type Options struct {
	Dir    string
	Logger *slog.Logger
	// Small tunes Badger for a gateway: small memtables, no block cache,
	// no compression (~tens of MiB RSS instead of ~200), and Close leaves
	// the LSM tree compacted so the next start does not begin by
	// compacting (see settleLSM).
	Small bool
	// Retention bounds the acknowledged ops kept for a server restore
	// (retain.go); the zero value takes the defaults.
	Retention Retention
	// TaskRetention: a task the server sent closed (done, short or
	// cancelled) is dropped this long after the gateway took it closed,
	// unless a session may still need it (tasks.go, PruneTasks); 0 takes
	// DefaultTaskRetention, negative keeps every task.
	TaskRetention time.Duration
	// DiskReserve: while the data directory's file system has less free
	// space, commits are refused with ErrDiskFull (disk.go); 0 takes
	// DefaultDiskReserve. DiskLow: below it the store warns; 0 takes
	// DefaultDiskLow.
	DiskReserve, DiskLow uint64
	// FreeBytes, when set, replaces the file system's free-space query
	// (tests).
	FreeBytes func(dir string) uint64
}

// Store is the agent's Badger store.
type Store struct {
	db      *badger.DB
	log     *slog.Logger
	gc      *groupCommitter
	notices signal // masterdata.go
	settle  bool   // settle the LSM tree before closing (Small)

	dir           string
	disk          diskGuard // disk.go
	retention     Retention
	retainMu      sync.Mutex
	retainChecked time.Time
	taskRetention time.Duration
	// now is the clock of task closes (tasks.go); time.Now but in tests.
	now func() time.Time
	// rebuildMu holds commits back while Regress rebuilds the view.
	rebuildMu sync.Mutex
}

// Open opens or creates the store.
func Open(opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bo := badger.DefaultOptions(opts.Dir).WithSyncWrites(true).WithLogger(nil).WithNumVersionsToKeep(1)
	if opts.Small {
		// Level 0 is kept small (4 MiB memtables, compaction at 4 tables,
		// writes wait at 8): a start after a crash replays the memtables
		// and merges level 0 into the levels below, and the keys of new
		// work spread over the whole pending range, so that merge rewrites
		// what it overlaps through the process's memory map. With 8 MiB
		// memtables and up to 16 level-0 tables a start on a 1,000,000-op
		// outbox left by kill -9 peaked at 110-180 MiB of RSS; bounded
		// like this, ~40 MiB (agent bench, agent_rss_mib_1m_outbox_after_kill).
		// The price: a burst of writes waits for the compactors sooner
		// (1,000,000 ops committed back to back take ~2.5 min instead of
		// ~1.5), far above what scanners produce.
		bo = bo.WithMemTableSize(4 << 20).
			WithNumMemtables(2).
			WithNumLevelZeroTables(4).
			WithNumLevelZeroTablesStall(8).
			WithBlockCacheSize(0).
			WithIndexCacheSize(4 << 20).
			WithCompression(options.None).
			WithValueLogFileSize(32 << 20).
			WithValueThreshold(64 << 10).
			WithBaseTableSize(2 << 20).
			WithNumCompactors(2)
	}
	if err := removeEmptyMemtables(opts.Dir); err != nil {
		return nil, fmt.Errorf("open agent store in %q: %w", opts.Dir, err)
	}
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("open agent store in %q: %w (is another agent using this --data directory?)", opts.Dir, err)
	}
	opts.Retention.defaults()
	s := &Store{db: db, log: log, settle: opts.Small, dir: opts.Dir, retention: opts.Retention, taskRetention: opts.TaskRetention, now: time.Now}
	if s.taskRetention == 0 {
		s.taskRetention = DefaultTaskRetention
	}
	s.disk = diskGuard{dir: opts.Dir, reserve: opts.DiskReserve, low: opts.DiskLow, free: opts.FreeBytes, onChange: s.logDisk}
	if s.disk.reserve == 0 {
		s.disk.reserve = DefaultDiskReserve
	}
	if s.disk.low == 0 {
		s.disk.low = DefaultDiskLow
	}
	if s.disk.free == nil {
		s.disk.free = freeBytes
	}
	if err := s.initRetention(); err != nil {
		db.Close()
		return nil, fmt.Errorf("apply the outbox retention: %w", err)
	}
	if err := s.buildTaskIndex(); err != nil {
		db.Close()
		return nil, fmt.Errorf("index the tasks: %w", err)
	}
	s.gc = newGroupCommitter(s)
	return s, nil
}

// removeEmptyMemtables deletes the zero-length memtable files (*.mem) in
// dir. Badger deletes a flushed memtable's file by truncating it to zero
// and then removing it; a process killed between the two (kill -9 or power
// loss while a flush ends) leaves an empty file that Badger's Open refuses
// ("Create a new file"), so the agent could not start again. An empty
// memtable file holds nothing: a live one starts with its header, and its
// data was flushed to a table before the truncation.
func removeEmptyMemtables(dir string) error {
	names, err := filepath.Glob(filepath.Join(dir, "*.mem"))
	if err != nil {
		return err
	}
	for _, name := range names {
		fi, err := os.Stat(name)
		if err != nil || fi.Size() != 0 || !fi.Mode().IsRegular() {
			continue
		}
		if err := os.Remove(name); err != nil {
			return fmt.Errorf("remove the empty memtable file a crash left: %w", err)
		}
	}
	return nil
}

// Close stops the committer and closes Badger.
func (s *Store) Close() error {
	s.gc.close()
	if s.settle {
		s.settleLSM()
	}
	return s.db.Close()
}

// Settling before Close (settleLSM).
const (
	// settleMax bounds the wait for the compactors (within the 30 s that
	// systemd and compose give the agent to stop).
	settleMax = 10 * time.Second
	// settleCalm is how long no level may be over its target size before
	// the compactors are taken as done (one compaction may be under way
	// without showing in the scores).
	settleCalm = 500 * time.Millisecond
)

// settleMinLSM: smaller stores are closed as they are, their compactions
// being small (a variable for tests).
var settleMinLSM int64 = 8 << 20

// closeSentinel is the key settleLSM writes and drops to flush the
// memtable; it sorts after every key of the store.
const closeSentinel = "~close/"

// settleLSM leaves the LSM tree in shape for the next start. Badger's
// Close flushes the memtable to a level-0 table, and compactions still
// owed (a burst of writes outruns the compactors) are left for the next
// Open: on a store holding a large outbox that start began by rewriting
// tens of MiB of tables, each written through, and kept in, the process's
// memory map (with 1,000,000 ops queued the agent's RSS rose from 15 MiB
// to over 100 MiB in its first second). So here the memtable is flushed and
// level 0 compacted (DropPrefix of a sentinel key does both; Badger has no
// other public flush), then the compactors run until no level is over its
// target size (at most settleMax), and Close finds an empty memtable.
// Nothing is lost if this is cut short: it only moves data between levels.
func (s *Store) settleLSM() {
	var size int64
	for _, l := range s.db.Levels() {
		size += l.Size
	}
	if size < settleMinLSM {
		return
	}
	start := time.Now()
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(closeSentinel), nil) }); err != nil {
		s.log.Warn("store: flush before close", "err", err)
		return
	}
	if err := s.db.DropPrefix([]byte(closeSentinel)); err != nil {
		s.log.Warn("store: flush before close", "err", err)
		return
	}
	const tick = 50 * time.Millisecond
	for calm := time.Duration(0); calm < settleCalm && time.Since(start) < settleMax; calm += tick {
		for _, l := range s.db.Levels() {
			if l.Score >= 1 {
				calm = -tick
				break
			}
		}
		time.Sleep(tick)
	}
	s.log.Debug("store: LSM tree settled before close", "took", time.Since(start).Round(time.Millisecond), "lsm_bytes", size)
}

func join(parts ...string) string { return strings.Join(parts, "\x00") }

func be(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func readU64(txn *badger.Txn, key string) (uint64, error) {
	it, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var v uint64
	err = it.Value(func(b []byte) error {
		if len(b) != 8 {
			return fmt.Errorf("corrupt counter %s", key)
		}
		v = binary.BigEndian.Uint64(b)
		return nil
	})
	return v, err
}

func readI64(txn *badger.Txn, key []byte) (int64, bool, error) {
	it, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	var v int64
	err = it.Value(func(b []byte) error {
		v = int64(binary.BigEndian.Uint64(b))
		return nil
	})
	return v, true, err
}

// Positions are the agent's replication counters.
type Positions struct {
	LastSeq uint64 // highest seq committed
	Acked   uint64 // upstream watermark acknowledged by the server
	Down    uint64 // downstream watermark applied
	UpWM    uint64 // server's upstream watermark the server view reflects
	Epoch   string // server epoch last seen
	// First is the oldest seq held (retained after its ack, or not yet
	// acknowledged); LastSeq+1 when none is held.
	First uint64
}

// Positions reads the counters.
func (s *Store) Positions() (Positions, error) {
	var p Positions
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		if p.LastSeq, err = readU64(txn, kSeq); err != nil {
			return err
		}
		if p.Acked, err = readU64(txn, kAcked); err != nil {
			return err
		}
		if p.Down, err = readU64(txn, kDown); err != nil {
			return err
		}
		if p.UpWM, err = readU64(txn, kUpWM); err != nil {
			return err
		}
		if p.First, err = firstHeld(txn); err != nil {
			return err
		}
		it, err := txn.Get([]byte(kEpoch))
		if err == nil {
			v, err := it.ValueCopy(nil)
			p.Epoch = string(v)
			return err
		}
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		return err
	})
	return p, err
}

// Outbox returns up to maxOps ops with seq ≥ from, stopping before maxBytes
// of encoded ops (at least one op is returned when any exists): OutboxRaw,
// decoded.
func (s *Store) Outbox(from uint64, maxOps, maxBytes int) ([]protocol.Op, error) {
	_, raw, err := s.OutboxRaw(from, maxOps, maxBytes)
	if err != nil {
		return nil, err
	}
	out := make([]protocol.Op, len(raw))
	for i, b := range raw {
		if err := protocol.Unmarshal(b, &out[i]); err != nil {
			return nil, fmt.Errorf("outbox: op %d of %d: %w", i+1, len(raw), err)
		}
	}
	return out, nil
}

// OutboxRaw is Outbox without decoding: up to maxOps ops with seq ≥ from,
// stopping before maxBytes (at least one), each as the bytes its commit
// wrote (protocol.Marshal of the op), with the seq of the first (0 when
// none). Their seqs are consecutive: the outbox holds every seq from the
// oldest retained to the last.
func (s *Store) OutboxRaw(from uint64, maxOps, maxBytes int) (uint64, []protocol.RawOp, error) {
	var out []protocol.RawOp
	var first, prev uint64
	size := 0
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pOut), PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Seek(append([]byte(pOut), be(from)...)); it.Valid() && len(out) < maxOps; it.Next() {
			item := it.Item()
			if len(out) > 0 && size+int(item.ValueSize()) > maxBytes {
				break
			}
			seq := binary.BigEndian.Uint64(item.Key()[len(pOut):])
			if len(out) > 0 && seq != prev+1 {
				return fmt.Errorf("outbox: seq %d follows %d", seq, prev)
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if len(out) == 0 {
				first = seq
			}
			prev = seq
			size += len(v)
			out = append(out, v)
		}
		return nil
	})
	return first, out, err
}

// OutboxDepth counts the ops not yet acknowledged.
func (s *Store) OutboxDepth() (uint64, error) {
	p, err := s.Positions()
	if err != nil {
		return 0, err
	}
	return p.LastSeq - p.Acked, nil
}

// Ack records the server's watermark and epoch; acknowledged ops stay in
// the outbox for the retention (retain.go), and those beyond it are
// deleted. A wm lower than the one already recorded is ignored (returns
// false) — acks never move backwards here; a server that went back in
// time is handled by Regress.
func (s *Store) Ack(wm uint64, epoch string) (bool, error) {
	moved := false
	err := s.update(func(txn *badger.Txn) error {
		moved = false
		acked, err := readU64(txn, kAcked)
		if err != nil {
			return err
		}
		if err := txn.Set([]byte(kEpoch), []byte(epoch)); err != nil {
			return err
		}
		if wm <= acked {
			return nil
		}
		moved = true
		return txn.Set([]byte(kAcked), be(wm))
	})
	if err != nil || !moved {
		return moved, err
	}
	return true, s.trimRetention(false)
}

// pruneOutbox deletes o/ entries after from up to wm in bounded batches.
// It seeks past what earlier acks pruned: walking the deleted keys from
// the start each time would make a long catch-up quadratic.
func (s *Store) pruneOutbox(from, wm uint64) error {
	for {
		var keys [][]byte
		err := s.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pOut)})
			defer it.Close()
			for it.Seek(append([]byte(pOut), be(from+1)...)); it.Valid() && len(keys) < 10000; it.Next() {
				k := it.Item().KeyCopy(nil)
				if binary.BigEndian.Uint64(k[len(pOut):]) > wm {
					break
				}
				keys = append(keys, k)
			}
			return nil
		})
		if err != nil || len(keys) == 0 {
			return err
		}
		wb := s.db.NewWriteBatch()
		for _, k := range keys {
			if err := wb.Delete(k); err != nil {
				wb.Cancel()
				return err
			}
		}
		if err := wb.Flush(); err != nil {
			return err
		}
		from = binary.BigEndian.Uint64(keys[len(keys)-1][len(pOut):])
	}
}

// Session returns the saved state of a device's open session (nil if none).
func (s *Store) Session(device string) ([]byte, error) {
	var v []byte
	err := s.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get([]byte(pSess + device))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		v, err = it.ValueCopy(nil)
		return err
	})
	return v, err
}

// update runs f in a read-write transaction, retrying when it lost a race
// with another writer (group commits, acks and downstream touch common
// keys); f must be safe to run again.
func (s *Store) update(f func(txn *badger.Txn) error) error {
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if err = s.db.Update(f); !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
	return err
}
