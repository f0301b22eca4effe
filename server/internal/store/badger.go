package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
)

// Badger is the embedded Store.
type Badger struct {
	db    *badger.DB
	epoch string
	log   *slog.Logger
	check func(Tx, string, *protocol.Op) error
}

// SetOpCheck installs a master-data check run on every op in the apply
// transaction; an op it rejects is quarantined with its error as reason.
func (s *Badger) SetOpCheck(f func(tx Tx, wh string, op *protocol.Op) error) { s.check = f }

// validate runs the op's own validation and the master-data check.
func (s *Badger) validate(txn *badger.Txn, wh string, op *protocol.Op) error {
	if err := op.Validate(); err != nil {
		return err
	}
	if s.check != nil {
		return s.check(badgerTx{txn}, wh, op)
	}
	return nil
}

var _ Store = (*Badger)(nil)

// Options tune the Badger store.
type Options struct {
	Dir    string
	Logger *slog.Logger
	// InMemory runs without disk, for unit tests only.
	InMemory bool
}

// Open opens (or creates) the store in opts.Dir with synchronous writes: a
// batch is acknowledged only after it is on disk.
func Open(opts Options) (*Badger, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bo := badger.DefaultOptions(opts.Dir).
		WithSyncWrites(true).
		WithLogger(nil).
		WithInMemory(opts.InMemory).
		WithNumVersionsToKeep(1)
	if opts.InMemory {
		bo = bo.WithSyncWrites(false)
	}
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("open badger store in %q: %w (is another shelfsync-server using this --data directory?)", opts.Dir, err)
	}
	s := &Badger{db: db, log: log}
	if err := s.loadEpoch(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Badger) loadEpoch() error {
	return s.db.Update(func(txn *badger.Txn) error {
		it, err := txn.Get([]byte(pfxEpoch))
		if err == nil {
			v, err := it.ValueCopy(nil)
			s.epoch = string(v)
			return err
		}
		if !errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("read epoch: %w", err)
		}
		var b [6]byte
		_, _ = rand.Read(b[:])
		s.epoch = fmt.Sprintf("%x-%s", time.Now().Unix(), hex.EncodeToString(b[:]))
		return txn.Set([]byte(pfxEpoch), []byte(s.epoch))
	})
}

// Epoch implements Store.
func (s *Badger) Epoch() string { return s.epoch }

// DB exposes the database for packages of this module that keep their own
// keys beside the ledger.
func (s *Badger) DB() *badger.DB { return s.db }

// Close implements Store.
func (s *Badger) Close() error { return s.db.Close() }

func getU64(txn *badger.Txn, key []byte) (uint64, error) {
	it, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
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

// Watermark implements Store.
func (s *Badger) Watermark(_ context.Context, wh, gw string) (uint64, error) {
	var wm uint64
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		wm, err = getU64(txn, wmKey(wh, gw))
		return err
	})
	return wm, err
}

// ApplyChunk bounds the ops merged per Badger transaction. Badger sorts a
// read-write transaction's pending writes every time an iterator is opened
// in it (the merge rule and conflict detection open several per op), so a
// whole 256-op batch in one transaction costs time quadratic in its size.
// Each chunk moves the watermark to its last op in the same transaction as
// its ops, so exactly-once holds at every chunk boundary: a crash between
// chunks leaves a watermark the redelivered batch overlaps (apply the rest).
const ApplyChunk = 32

// ApplyBatch implements Store.
func (s *Badger) ApplyBatch(_ context.Context, wh, gw string, b *protocol.OpBatch) (Result, error) {
	var total Result
	for start := 0; ; {
		end := min(start+ApplyChunk, len(b.Ops))
		var res Result
		var err error
		for attempt := 0; attempt < 20; attempt++ {
			res, err = s.applyChunk(wh, gw, b, b.Ops[start:end], start == 0)
			if !errors.Is(err, badger.ErrConflict) {
				break
			}
		}
		if errors.Is(err, badger.ErrConflict) {
			return total, ErrConflict
		}
		if err != nil {
			return total, fmt.Errorf("apply %s/%s %d..%d: %w", wh, gw, b.First, b.Last, err)
		}
		if start == 0 {
			total.Verdict = res.Verdict
		}
		total.WM = res.WM
		total.Applied += res.Applied
		total.Quarantined += res.Quarantined
		total.Changes = append(total.Changes, res.Changes...)
		total.Conflicts = append(total.Conflicts, res.Conflicts...)
		if total.Verdict != protocol.Apply || end >= len(b.Ops) {
			return total, nil
		}
		start = end
	}
}

// applyChunk merges ops (a slice of b) in one transaction; the first chunk
// also judges the whole batch with the sequence rule.
func (s *Badger) applyChunk(wh, gw string, b *protocol.OpBatch, ops []protocol.Op, first bool) (Result, error) {
	var res Result
	err := s.db.Update(func(txn *badger.Txn) error {
		res = Result{Verdict: protocol.Apply}
		wm, err := getU64(txn, wmKey(wh, gw))
		if err != nil {
			return err
		}
		res.WM = wm
		if first {
			if res.Verdict = protocol.Judge(wm, b.First, b.Last); res.Verdict != protocol.Apply {
				return nil
			}
		}
		ls := &txnLedger{txn: txn}
		det := &conflicts.Detector{}
		for i := range ops {
			op := &ops[i]
			if op.Seq <= wm {
				continue
			}
			if err := s.validate(txn, wh, op); err != nil {
				if err := putCBOR(txn, opKey(pfxQuar, wh, gw, op.Seq), Quarantined{Warehouse: wh, Gateway: gw, Seq: op.Seq, Reason: err.Error(), Op: *op}); err != nil {
					return err
				}
				c, written, err := conflicts.Raise(ls, conflicts.Quarantined(wh, gw, op.Seq, err.Error()))
				if err != nil {
					return err
				}
				if written {
					res.Conflicts = append(res.Conflicts, c)
				}
				res.Quarantined++
				continue
			}
			if err := putCBOR(txn, opKey(pfxOp, wh, gw, op.Seq), op); err != nil {
				return err
			}
			ch, err := ledger.Apply(ls, wh, gw, op)
			if err != nil {
				return fmt.Errorf("merge op %d: %w", op.Seq, err)
			}
			res.Changes = append(res.Changes, ch...)
			cs, err := det.Observe(ls, ls, wh, gw, op, ch)
			if err != nil {
				return fmt.Errorf("conflicts of op %d: %w", op.Seq, err)
			}
			res.Conflicts = append(res.Conflicts, cs...)
			res.Applied++
		}
		last := ops[len(ops)-1].Seq
		if last <= wm {
			return nil
		}
		res.WM = last
		if err := appendStock(txn, ls, res.Changes); err != nil {
			return fmt.Errorf("downstream log: %w", err)
		}
		return txn.Set(wmKey(wh, gw), []byte(u64(last)))
	})
	return res, err
}

// Stock implements Store.
func (s *Badger) Stock(_ context.Context, q StockQuery) ([]StockRow, error) {
	var out []StockRow
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		out, err = stockIn(txn, q)
		return err
	})
	return out, err
}

// stockIn reads the stock matching q in txn.
func stockIn(txn *badger.Txn, q StockQuery) ([]StockRow, error) {
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
	var out []StockRow
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 100})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		k, ok := parseStockKey(it.Item().Key())
		if !ok || (q.Location != "" && k.Location != q.Location) || (q.SKU != "" && k.SKU != q.SKU) || (q.Lot != "" && k.Lot != q.Lot) {
			continue
		}
		var ks ledger.KeyState
		if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &ks) }); err != nil {
			return nil, err
		}
		out = append(out, StockRow{Warehouse: k.WH, Location: k.Location, SKU: k.SKU, Lot: k.Lot, OnHand: ks.OnHand()})
		if q.Limit > 0 && len(out) >= q.Limit {
			break
		}
	}
	return out, nil
}

// Quarantined implements Store.
func (s *Badger) Quarantined(_ context.Context, wh string) ([]Quarantined, error) {
	prefix := []byte(pfxQuar)
	if wh != "" {
		prefix = append(prefix, wh+"\x00"...)
	}
	var out []Quarantined
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var q Quarantined
			if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &q) }); err != nil {
				return err
			}
			out = append(out, q)
		}
		return nil
	})
	return out, err
}

func putCBOR(txn *badger.Txn, key []byte, v any) error {
	b, err := protocol.Marshal(v)
	if err != nil {
		return err
	}
	return txn.Set(key, b)
}
