// Package badger is the embedded backend of store.Store: the server's
// state in a Badger database on local disk. It keeps the data; what a
// batch or an action does is store/apply's, which Store embeds.
package badger

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	bdb "github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/diskspace"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/apply"
)

// Store is the embedded store.Store.
type Store struct {
	*apply.Engine
	db    *bdb.DB
	epoch string
	log   *slog.Logger
	disk  *diskspace.Guard // nil: no guard
}

var _ store.Store = (*Store)(nil)

// Options tune the Badger store.
type Options struct {
	Dir    string
	Logger *slog.Logger
	// InMemory runs without disk, for unit tests only.
	InMemory bool
	// Disk, when set, refuses every write transaction (diskspace.ErrFull)
	// while the data disk is below its reserve.
	Disk *diskspace.Guard
}

// ApplyChunk bounds the ops merged per Badger transaction. Badger sorts a
// read-write transaction's pending writes every time an iterator is opened
// in it (the merge rule and conflict detection open several per op), so a
// whole 256-op batch in one transaction costs time quadratic in its size.
const ApplyChunk = 32

// MaxGroupOps bounds the ops of one group-commit transaction
// (ApplyBatches). Receives and picks on keys with state need no iterator
// (the fast paths of conflicts.observeDelta and txnLedger.SumAfter), so a
// group costs time linear in its size; counts still scan. Badger refuses a
// transaction past ~15% of MemTableSize (ErrTxnTooBig): 4,096 ops on keys
// with state fit, 4,096 ops each making new keys may not, and a group too
// big is applied in halves (store.ErrTxnTooBig, apply.Engine.ApplyBatches).
const MaxGroupOps = 4096

// Badger's memory. Its Go heap holds the memtables (arenas of
// MemTableSize: NumMemtables of them, the one being flushed included), the
// block cache, and the buffers of the table builders: a level-0 flush's
// starts at twice BaseTableSize and doubles until the memtable fits, each
// compaction runs builders for tables of its level's file size, and a pool
// keeps up to eight grown builders for reuse. Badger's defaults (64 MiB
// memtables x 5, a 256 MiB block cache) took the server 288 MiB over idle
// through a 200 MB stock import; these still peak at 126–165 MiB of heap
// for a stream of new keys through this store alone (two memtable arenas
// of ~21 MiB and builders' buffers).
//
// Options as small as the agent's were tried and measured (memtables of
// 4 MiB x 2, 2 MiB tables at every level, no compression and then no block
// cache, 1,024-op groups): the heap of that stream fell to 93–111 MiB, but
// a stock import's peak RSS did not (uncompressed tables are twice as
// large, and their mapped pages grew ~500 B per imported row), and they
// cost the replication figures: the 100-gateway ingest's peak RSS rose
// from ~250 to ~290 MiB (over its 256 MiB bound), its CPU per op by ~10%,
// and the server's CPU in a 1,000,000-op catch-up from 48 to 72 s (more
// compactions, three times the transactions). So the server keeps these.
const (
	MemTableSize   = 16 << 20
	NumMemtables   = 3
	BlockCacheSize = 16 << 20
	ValueThreshold = 64 << 10
)

// Open opens (or creates) the store in opts.Dir with synchronous writes: a
// batch is acknowledged only after it is on disk.
func Open(opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bo := bdb.DefaultOptions(opts.Dir).
		WithSyncWrites(true).
		WithLogger(nil).
		WithInMemory(opts.InMemory).
		WithNumVersionsToKeep(1).
		WithMemTableSize(MemTableSize).
		WithNumMemtables(NumMemtables).
		WithValueThreshold(ValueThreshold).
		WithBlockCacheSize(BlockCacheSize)
	if opts.InMemory {
		bo = bo.WithSyncWrites(false)
	} else if err := removeEmptyMemtables(opts.Dir); err != nil { // crash.go
		return nil, fmt.Errorf("open badger store in %q: %w", opts.Dir, err)
	}
	db, err := bdb.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("open badger store in %q: %w (is another shelfsync-server using this --data directory?)", opts.Dir, err)
	}
	s := &Store{db: db, log: log, disk: opts.Disk}
	s.Engine = apply.New(backend{db, opts.Disk}, apply.Options{ChunkOps: ApplyChunk, MaxGroupOps: MaxGroupOps})
	if err := s.loadEpoch(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.buildTaskIndex(); err != nil {
		db.Close()
		return nil, fmt.Errorf("index count tasks: %w", err)
	}
	return s, nil
}

func (s *Store) loadEpoch() error {
	return s.db.Update(func(txn *bdb.Txn) error {
		it, err := txn.Get([]byte(pfxEpoch))
		if err == nil {
			v, err := it.ValueCopy(nil)
			s.epoch = string(v)
			return err
		}
		if !errors.Is(err, bdb.ErrKeyNotFound) {
			return fmt.Errorf("read epoch: %w", err)
		}
		var b [6]byte
		_, _ = rand.Read(b[:])
		s.epoch = fmt.Sprintf("%x-%s", time.Now().Unix(), hex.EncodeToString(b[:]))
		return txn.Set([]byte(pfxEpoch), []byte(s.epoch))
	})
}

// Epoch implements store.Store.
func (s *Store) Epoch() string { return s.epoch }

// DB exposes the database for packages of this module that keep their own
// keys beside the ledger.
func (s *Store) DB() *bdb.DB { return s.db }

// Close implements store.Store.
func (s *Store) Close() error { return s.db.Close() }

func getU64(txn *bdb.Txn, key []byte) (uint64, error) {
	it, err := txn.Get(key)
	if errors.Is(err, bdb.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var v uint64
	err = it.Value(func(b []byte) error {
		if len(b) != 8 {
			return fmt.Errorf("corrupt value at %q", key)
		}
		v = binary.BigEndian.Uint64(b)
		return nil
	})
	return v, err
}

// Watermark implements store.Store.
func (s *Store) Watermark(_ context.Context, wh, gw string) (uint64, error) {
	var wm uint64
	err := s.db.View(func(txn *bdb.Txn) error {
		var err error
		wm, err = getU64(txn, wmKey(wh, gw))
		return err
	})
	return wm, err
}

// Stock implements store.Store.
func (s *Store) Stock(_ context.Context, q store.StockQuery) ([]store.StockRow, error) {
	var out []store.StockRow
	err := s.db.View(func(txn *bdb.Txn) error {
		var err error
		out, err = stockIn(txn, q)
		return err
	})
	return out, err
}

// StockEach implements store.Store.
func (s *Store) StockEach(_ context.Context, q store.StockQuery, fn func(store.StockRow) error) error {
	return s.db.View(func(txn *bdb.Txn) error { return stockEach(txn, q, fn) })
}

// stockIn reads the stock matching q in txn.
func stockIn(txn *bdb.Txn, q store.StockQuery) ([]store.StockRow, error) {
	var out []store.StockRow
	err := stockEach(txn, q, func(r store.StockRow) error { out = append(out, r); return nil })
	return out, err
}

// stockEach calls fn with the stock matching q in txn.
func stockEach(txn *bdb.Txn, q store.StockQuery, fn func(store.StockRow) error) error {
	prefix := []byte(pfxKey)
	if q.Warehouse != "" {
		prefix = append(prefix, q.Warehouse+"\x00"...)
		if q.Location != "" {
			prefix = append(prefix, q.Location+"\x00"...)
			if q.SKU != "" {
				prefix = append(prefix, q.SKU+"\x00"...)
			}
		}
	}
	it := txn.NewIterator(bdb.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 100})
	defer it.Close()
	n := 0
	for it.Rewind(); it.Valid(); it.Next() {
		k, ok := parseStockKey(it.Item().Key())
		if !ok || !q.Matches(k) {
			continue
		}
		var ks ledger.KeyState
		if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &ks) }); err != nil {
			return err
		}
		if q.NonZero && ks.OnHand() == 0 {
			continue
		}
		if err := fn(store.RowOf(k, ks.OnHand())); err != nil {
			return err
		}
		if n++; q.Limit > 0 && n >= q.Limit {
			break
		}
	}
	return nil
}

// Quarantined implements store.Store.
func (s *Store) Quarantined(_ context.Context, wh string) ([]store.Quarantined, error) {
	prefix := []byte(pfxQuar)
	if wh != "" {
		prefix = append(prefix, wh+"\x00"...)
	}
	var out []store.Quarantined
	err := s.db.View(func(txn *bdb.Txn) error {
		it := txn.NewIterator(bdb.IteratorOptions{Prefix: prefix, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var q store.Quarantined
			if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &q) }); err != nil {
				return err
			}
			out = append(out, q)
		}
		return nil
	})
	return out, err
}

func putCBOR(txn *bdb.Txn, key []byte, v any) error {
	b, err := protocol.Marshal(v)
	if err != nil {
		return err
	}
	return txn.Set(key, b)
}
