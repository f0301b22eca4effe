package store

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
)

// Commit is one unit of durable work from a device: zero or more ops
// (stamped with seq and HLC by the store) and the device's new session
// state, written together.
type Commit struct {
	Device string
	Ops    []protocol.Op
	// Session is the device's open session after this commit; with
	// EndSession the saved session is deleted instead.
	Session    []byte
	EndSession bool
	// KeepSession leaves the saved session untouched.
	KeepSession bool
	// Notices are records for the server written with the ops (closes of
	// receipts and tasks); each is stamped with the commit's last seq.
	Notices []protocol.Notice

	noticed bool // a notice was written (set by writeCommits)
}

type commitReq struct {
	c    *Commit
	done chan error
}

// groupCommitter merges concurrent commits into one transaction and one
// fsync: with SyncWrites each Badger commit costs an fsync (~0.2 ms), so
// grouping is what lets many devices commit tens of thousands of ops/s.
type groupCommitter struct {
	s     *Store
	reqs  chan commitReq
	wg    sync.WaitGroup
	clock *protocol.Clock
	once  sync.Once
	quit  chan struct{}
	// notify is signalled (non-blocking) after every durable commit of ops.
	notify chan struct{}
}

// MaxGroup bounds the commits merged into one transaction.
const MaxGroup = 512

func newGroupCommitter(s *Store) *groupCommitter {
	g := &groupCommitter{s: s, reqs: make(chan commitReq, MaxGroup), clock: protocol.NewClock(nil), quit: make(chan struct{}), notify: make(chan struct{}, 1)}
	g.wg.Add(1)
	go g.loop()
	return g
}

func (g *groupCommitter) close() {
	g.once.Do(func() { close(g.quit) })
	g.wg.Wait()
}

// SetClock makes the store stamp ops from clock (shared with the uplink so
// server HLCs pull it forward).
func (s *Store) SetClock(c *protocol.Clock) { s.gc.clock = c }

// Notify returns a channel signalled after ops are committed.
func (s *Store) Notify() <-chan struct{} { return s.gc.notify }

// Commit durably writes c and returns the ops as stamped. It returns only
// after the data is synced to disk, so its success may be confirmed to the
// operator.
func (s *Store) Commit(ctx context.Context, c *Commit) ([]protocol.Op, error) {
	if err := s.checkDisk(); err != nil {
		return nil, err
	}
	r := commitReq{c: c, done: make(chan error, 1)}
	select {
	case <-s.gc.quit:
		return nil, ErrClosed
	default:
	}
	select {
	case s.gc.reqs <- r:
	case <-s.gc.quit:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case err := <-r.done:
		if err == nil && c.noticed {
			s.notices.poke()
		}
		return c.Ops, err
	case <-s.gc.quit:
		// The loop answers what it took and fails what was queued before it
		// exited; a request queued after that (the channel is buffered, so
		// a send can still succeed once the store is closing) is answered
		// by nobody: once the loop is gone, it was not committed.
		s.gc.wg.Wait()
		select {
		case err := <-r.done:
			return c.Ops, err
		default:
			return nil, ErrClosed
		}
	}
}

func (g *groupCommitter) loop() {
	defer g.wg.Done()
	for {
		var batch []commitReq
		select {
		case r := <-g.reqs:
			batch = append(batch, r)
		case <-g.quit:
			g.failPending()
			return
		}
	more:
		for len(batch) < MaxGroup {
			select {
			case r := <-g.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		err := g.update(batch)
		if err != nil && len(batch) > 1 {
			// One bad request (e.g. too big) must not fail the others: retry one by one.
			for _, r := range batch {
				r.done <- g.update([]commitReq{r})
			}
		} else {
			for _, r := range batch {
				r.done <- err
			}
		}
		select {
		case g.notify <- struct{}{}:
		default:
		}
	}
}

// update writes a group in one transaction, retrying when it lost a race
// with a downstream or ack transaction (they touch the view and counters).
func (g *groupCommitter) update(batch []commitReq) error {
	g.s.rebuildMu.Lock() // not while Regress rebuilds the view
	defer g.s.rebuildMu.Unlock()
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		err = g.s.db.Update(func(txn *badger.Txn) error { return g.s.writeCommits(txn, g.clock, batch) })
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
	return err
}

func (g *groupCommitter) failPending() {
	for {
		select {
		case r := <-g.reqs:
			r.done <- ErrClosed
		default:
			return
		}
	}
}

// pending is one not-yet-reflected effect of an own op on a key.
type pending struct {
	Set bool  `cbor:"1,keyasint,omitempty"`
	Qty int64 `cbor:"2,keyasint"`
}

// viewKey is {pfx}{loc}\0{sku}\0{stored lot} (ledger.StoredLot: the
// layout from before owners and statuses for owner "" and available).
func viewKey(pfx string, k ledger.Key) []byte {
	return []byte(pfx + join(k.Location, k.SKU, ledger.StoredLot(k)))
}

func (s *Store) writeCommits(txn *badger.Txn, clock *protocol.Clock, batch []commitReq) error {
	seq, err := readU64(txn, kSeq)
	if err != nil {
		return err
	}
	for _, r := range batch {
		c := r.c
		for i := range c.Ops {
			seq++
			op := &c.Ops[i]
			op.Seq, op.HLC = seq, clock.Now()
			b, err := protocol.Marshal(op)
			if err != nil {
				return fmt.Errorf("encode op: %w", err)
			}
			if err := txn.Set(append([]byte(pOut), be(seq)...), b); err != nil {
				return err
			}
			if err := s.applyView(txn, op); err != nil {
				return err
			}
			if err := s.trackOp(txn, op, c); err != nil {
				return err
			}
		}
		if err := writeNotices(txn, c, seq); err != nil {
			return err
		}
		switch {
		case c.KeepSession:
		case c.EndSession:
			if err := txn.Delete([]byte(pSess + c.Device)); err != nil {
				return err
			}
		default:
			if err := txn.Set([]byte(pSess+c.Device), c.Session); err != nil {
				return err
			}
		}
	}
	return txn.Set([]byte(kSeq), be(seq))
}

// applyView records the op's pending effects and updates the local view:
// the op has the highest seq so far, so a delta adds and a count sets.
func (s *Store) applyView(txn *badger.Txn, op *protocol.Op) error {
	type eff struct {
		k ledger.Key
		p pending
	}
	var effs []eff
	if op.Kind.IsCount() {
		listed := map[ledger.Key]bool{}
		for _, l := range ledger.CountLines("", op) {
			listed[l.Key] = true
			effs = append(effs, eff{l.Key, pending{Set: true, Qty: l.Qty}})
		}
		if op.Scope == protocol.ScopeLocation {
			if err := txn.Set(append([]byte(pLocP+op.Location+"\x00"), be(op.Seq)...), nil); err != nil {
				return err
			}
			keys, err := s.viewKeysAt(txn, op.Location)
			if err != nil {
				return err
			}
			for _, k := range keys {
				if !listed[k] && k.CoveredByLocCount() {
					effs = append(effs, eff{k, pending{Set: true}})
				}
			}
		}
	} else {
		for _, e := range ledger.Deltas("", op) {
			effs = append(effs, eff{e.Key, pending{Qty: e.Qty}})
		}
	}
	for _, e := range effs {
		b, err := protocol.Marshal(e.p)
		if err != nil {
			return err
		}
		if err := txn.Set(append(viewKey(pPend, e.k), append([]byte{0}, be(op.Seq)...)...), b); err != nil {
			return err
		}
		// The seq index holds the effect too: pruning reads it there
		// instead of a point read of the entry per op.
		if err := txn.Set(append(append([]byte(pPendQ), be(op.Seq)...), viewKey("", e.k)...), b); err != nil {
			return err
		}
		if err := s.addAgg(txn, e.k, e.p, 1); err != nil {
			return err
		}
		v, _, err := readI64(txn, viewKey(pView, e.k))
		if err != nil {
			return err
		}
		if e.p.Set {
			v = e.p.Qty
		} else {
			v += e.p.Qty
		}
		if err := txn.Set(viewKey(pView, e.k), be(uint64(v))); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) viewKeysAt(txn *badger.Txn, loc string) ([]ledger.Key, error) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pView + loc + "\x00")})
	defer it.Close()
	var out []ledger.Key
	for it.Rewind(); it.Valid(); it.Next() {
		if k, ok := parseViewKey(it.Item().Key(), pView); ok {
			out = append(out, k)
		}
	}
	return out, nil
}
