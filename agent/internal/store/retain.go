package store

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/protocol"
)

// Retention of acknowledged ops (protocol SPEC.md §6.1).
//
// An op stays in the outbox (o/{seq}) after the server acknowledged it,
// for a bounded retention, so that a server whose state went back in time
// (restored from a backup, or replaced by an empty one) can be sent the
// ops it lost. m/retain is the oldest seq still held: every seq from there
// to m/seq is in o/. It moves forward before the entries below it are
// deleted, so a crash between the two leaves entries the next Open
// deletes, never a claim to hold ops that are gone.
const kRetain = "m/retain"

// Retention defaults: at least 7 days or 5,000,000 ops, whichever is
// less, and never more than the disk allows.
const (
	DefaultRetainAge   = 7 * 24 * time.Hour
	DefaultRetainOps   = 5_000_000
	DefaultMinFreeDisk = 256 << 20
)

// Retention bounds how many acknowledged ops the store keeps.
type Retention struct {
	// MaxAge: an acknowledged op older than this (by its HLC) is dropped.
	// 0: DefaultRetainAge; negative: acknowledged ops are not kept.
	MaxAge time.Duration
	// MaxOps: at most this many acknowledged ops are kept (the newest).
	// 0: DefaultRetainOps; negative: acknowledged ops are not kept.
	MaxOps int64
	// MinFreeBytes: while the store's file system has less free space than
	// this — at least the disk's low-space warning and twice its reserve —
	// acknowledged ops are dropped as acks arrive (unacknowledged ops are
	// never dropped). 0: DefaultMinFreeDisk; negative: no check.
	MinFreeBytes int64
}

func (r *Retention) defaults() {
	if r.MaxAge == 0 {
		r.MaxAge = DefaultRetainAge
	}
	if r.MaxOps == 0 {
		r.MaxOps = DefaultRetainOps
	}
	if r.MinFreeBytes == 0 {
		r.MinFreeBytes = DefaultMinFreeDisk
	}
}

func (r Retention) none() bool { return r.MaxAge < 0 || r.MaxOps < 0 }

// retainCheckEvery bounds how often the age and disk checks run (each
// reads an op or asks the file system); the count check runs on every ack.
const retainCheckEvery = 10 * time.Second

// firstHeld reads m/retain: the oldest seq the outbox holds. A store
// written before retention existed pruned everything acknowledged, so
// its first held seq is acked + 1 (Open writes that down).
func firstHeld(txn *badger.Txn) (uint64, error) {
	v, err := readU64(txn, kRetain)
	if err != nil || v != 0 {
		return v, err
	}
	acked, err := readU64(txn, kAcked)
	return acked + 1, err
}

// initRetention writes m/retain for a store that has none, then deletes
// what lies below it and applies the retention.
func (s *Store) initRetention() error {
	var first uint64
	if err := s.update(func(txn *badger.Txn) error {
		v, err := readU64(txn, kRetain)
		if err != nil {
			return err
		}
		if first = v; first == 0 {
			if first, err = firstHeld(txn); err != nil {
				return err
			}
			return txn.Set([]byte(kRetain), be(first))
		}
		return nil
	}); err != nil {
		return err
	}
	// An interrupted trim may have left entries below m/retain.
	if err := s.pruneOutbox(0, first-1); err != nil {
		return err
	}
	return s.trimRetention(true)
}

// trimRetention drops acknowledged ops beyond the retention: first moves
// m/retain, then deletes the entries below it.
func (s *Store) trimRetention(force bool) error {
	r := s.retention
	var first, acked uint64
	if err := s.db.View(func(txn *badger.Txn) error {
		var err error
		if first, err = firstHeld(txn); err != nil {
			return err
		}
		acked, err = readU64(txn, kAcked)
		return err
	}); err != nil {
		return err
	}
	if acked < first {
		return nil // nothing acknowledged is held
	}
	cut := first - 1 // highest seq to drop
	switch {
	case r.none():
		cut = acked
	case uint64(r.MaxOps) < acked-first+1:
		cut = acked - uint64(r.MaxOps)
	}
	s.retainMu.Lock()
	check := force || time.Since(s.retainChecked) >= retainCheckEvery
	if check {
		s.retainChecked = time.Now()
	}
	s.retainMu.Unlock()
	if check && cut < acked {
		if floor := s.retainFloor(); floor > 0 && s.disk.free(s.dir) < floor {
			s.log.Warn("store: disk almost full; acknowledged ops are no longer kept for a server restore", "dir", s.dir, "min_free_bytes", floor)
			cut = acked
		} else if c, err := s.oldBefore(cut+1, acked, time.Now().Add(-r.MaxAge)); err != nil {
			return err
		} else if c > cut {
			cut = c
		}
	}
	if cut < first {
		return nil
	}
	if err := s.update(func(txn *badger.Txn) error { return txn.Set([]byte(kRetain), be(cut+1)) }); err != nil {
		return err
	}
	return s.pruneOutbox(first-1, cut)
}

// oldBefore returns the highest seq in from..upTo (acknowledged ops) whose
// op is older than cutoff, or from-1 when the op at from is not.
func (s *Store) oldBefore(from, upTo uint64, cutoff time.Time) (uint64, error) {
	limit := protocol.MakeHLC(cutoff.UnixMilli(), 0)
	last := from - 1
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pOut), PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Seek(append([]byte(pOut), be(from)...)); it.Valid(); it.Next() {
			var op protocol.Op
			if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &op) }); err != nil {
				return err
			}
			if op.Seq > upTo || op.HLC >= limit {
				return nil
			}
			last = op.Seq
		}
		return nil
	})
	return last, err
}

// retainFloor is the free space below which acknowledged ops are not
// kept: MinFreeBytes, raised to the disk guard's low-space warning and to
// twice its reserve, so that retention gives way before the disk warns or
// refuses scans (0: no check).
func (s *Store) retainFloor() uint64 {
	if s.retention.MinFreeBytes < 0 {
		return 0
	}
	return max(uint64(s.retention.MinFreeBytes), s.disk.low, 2*s.disk.reserve)
}

// freeBytes is the free space available to this process on dir's file
// system (max uint64 when it cannot be read: no check).
func freeBytes(dir string) uint64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return ^uint64(0)
	}
	return st.Bavail * uint64(st.Bsize)
}

// Regression is what Regress changed.
type Regression struct {
	AckedBefore uint64 // highest seq acknowledged under the previous identity
	EpochBefore string
	WM          uint64 // the server's watermark now
	Epoch       string
	// First is the oldest seq the store still holds: the server will be
	// sent first.. again; WM+1..First-1 (when First > WM+1) are beyond the
	// retention and the server records them as lost (SPEC.md §6.1).
	First uint64
	// Replayed counts the held ops above WM that are pending again.
	Replayed int
}

// Lost reports the seq range the retention no longer holds (ok false: none).
func (r Regression) Lost() (from, to uint64, ok bool) {
	if r.First > r.WM+1 {
		return r.WM + 1, r.First - 1, true
	}
	return 0, 0, false
}

// Regress records that the server's state went back in time: it answered
// with another identity (epoch), or with the same one and a watermark wm
// below what it had acknowledged. The store takes wm as its
// acknowledged position (the held ops above it will be sent again), drops
// its downstream position and every server value, and rebuilds the local
// view from the ops the new server has not applied: the view shows them
// until the new server's downstream reflects them. Commits wait while the
// view is rebuilt.
func (s *Store) Regress(wm uint64, epoch string) (Regression, error) {
	s.rebuildMu.Lock()
	defer s.rebuildMu.Unlock()
	var r Regression
	if err := s.update(func(txn *badger.Txn) error {
		var err error
		if r.AckedBefore, err = readU64(txn, kAcked); err != nil {
			return err
		}
		if r.First, err = firstHeld(txn); err != nil {
			return err
		}
		if it, err := txn.Get([]byte(kEpoch)); err == nil {
			v, err := it.ValueCopy(nil)
			if err != nil {
				return err
			}
			r.EpochBefore = string(v)
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		r.WM, r.Epoch = wm, epoch
		// m/retain is written out so that it no longer follows m/acked.
		if err := txn.Set([]byte(kRetain), be(r.First)); err != nil {
			return err
		}
		if err := txn.Set([]byte(kAcked), be(wm)); err != nil {
			return err
		}
		return txn.Set([]byte(kEpoch), []byte(epoch))
	}); err != nil {
		return r, err
	}
	for _, pfx := range []string{pSrv, pView, pPend, pPendQ, pAgg, pDirty, pLocP} {
		if err := s.db.DropPrefix([]byte(pfx)); err != nil {
			return r, fmt.Errorf("drop the server view (%s): %w", pfx, err)
		}
	}
	if err := s.update(func(txn *badger.Txn) error {
		for _, k := range []string{kDown, kUpWM} {
			if err := txn.Set([]byte(k), be(0)); err != nil {
				return err
			}
		}
		if err := txn.Delete([]byte(kDownEpoch)); err != nil {
			return err
		}
		if err := txn.Set([]byte(kAggPruned), be(wm)); err != nil {
			return err
		}
		return txn.Set([]byte(kPruned), be(wm))
	}); err != nil {
		return r, err
	}
	// Replay the held ops above wm, in seq order, in bounded transactions.
	from := max(wm+1, r.First)
	for {
		ops, err := s.Outbox(from, replayBatch, 1<<30)
		if err != nil {
			return r, err
		}
		if len(ops) == 0 {
			return r, nil
		}
		if err := s.update(func(txn *badger.Txn) error {
			for i := range ops {
				if err := s.applyView(txn, &ops[i]); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return r, fmt.Errorf("rebuild the local view: %w", err)
		}
		r.Replayed += len(ops)
		from = ops[len(ops)-1].Seq + 1
	}
}

// replayBatch bounds the ops replayed into the view per transaction.
const replayBatch = 500

// FirstHeld is the oldest seq the store holds (retained or not yet
// acknowledged): what a hello states as first_seq. LastSeq+1 when it
// holds none.
func (s *Store) FirstHeld() (uint64, error) {
	var v uint64
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		v, err = firstHeld(txn)
		return err
	})
	return v, err
}

// TrimRetention applies the retention now (age and disk checks included).
func (s *Store) TrimRetention(context.Context) error { return s.trimRetention(true) }
