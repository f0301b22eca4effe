package webhooks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Queueing events: into each endpoint's queue that wants them, in a transaction of the caller's or of its own, and waking its worker.

// EnqueueTo queues ev for one endpoint when it wants it.
func (m *Manager) EnqueueTo(id string, ev Event) error {
	var queued bool
	var superseded int
	err := m.rec.Update(func(tx store.Tx) error {
		queued, superseded = false, 0
		e, err := endpointIn(tx, id)
		if err != nil || !e.Wants(ev) {
			return err
		}
		_, n, err := m.put(tx, id, ev)
		queued, superseded = err == nil, n
		return err
	})
	if err != nil {
		return err
	}
	m.delivered.WithLabelValues("superseded").Add(float64(superseded))
	if queued {
		m.poke(id)
	}
	return nil
}

// Enqueue queues ev for every endpoint that wants it, durably, before it
// returns. A shared manager reads the endpoints in the transaction that
// queues: an endpoint another replica created just before is served.
func (m *Manager) Enqueue(ev Event) error {
	if m.cfg.Shared {
		return m.enqueueShared(ev)
	}
	m.mu.Lock()
	var ids []string
	for id, e := range m.eps {
		if e.Wants(ev) {
			ids = append(ids, id)
		}
	}
	m.mu.Unlock()
	var errs []error
	for _, id := range ids {
		var queued bool
		var superseded int
		err := m.rec.Update(func(tx store.Tx) error {
			queued, superseded = false, 0
			if _, err := endpointIn(tx, id); errors.Is(err, ErrNotFound) {
				return nil // deleted meanwhile
			} else if err != nil {
				return err
			}
			_, n, err := m.put(tx, id, ev)
			queued, superseded = err == nil, n
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("endpoint %s: %w", id, err))
			continue
		}
		m.delivered.WithLabelValues("superseded").Add(float64(superseded))
		if queued {
			m.poke(id)
		}
	}
	return errors.Join(errs...)
}

// EnqueueTx queues ev, in the caller's transaction tx, for every endpoint
// that wants it — the endpoints as recorded, read in tx — so that the event
// is queued exactly when what tx records (an alert, an order) commits: a
// replica that dies right after the commit leaves the delivery queued for
// whichever replica delivers the endpoint's queue. It writes only through
// tx, so it is safe to run again when Update retries f, and it leaves
// nothing behind when tx does not commit.
//
// The workers of those endpoints are poked at once; as this manager cannot
// see tx commit, each looks at its queue again, backing off up to 100 ms,
// for a few seconds until the delivery shows (a shared manager's poll picks
// it up within PollEvery anyway). The "superseded" counter does not count
// deliveries a coalescing key replaced here (the endpoint's Stats do).
func (m *Manager) EnqueueTx(tx store.Tx, ev Event) error {
	var ids []string
	if err := tx.Scan([]byte(pfxEndpoint), store.ScanOptions{}, func(_, v []byte) error {
		var e Endpoint
		if err := protocol.Unmarshal(v, &e); err != nil {
			return err
		}
		if e.Wants(ev) {
			ids = append(ids, e.ID)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, id := range ids {
		if _, _, err := m.put(tx, id, ev); err != nil {
			return fmt.Errorf("endpoint %s: %w", id, err)
		}
	}
	m.expect(ids)
	return nil
}

// expect has the workers of ids look for deliveries about to commit.
func (m *Manager) expect(ids []string) {
	until := time.Now().Add(expectCommit).UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		w := m.workers[id]
		if w == nil {
			continue // another replica's endpoint not seen yet: the poll starts its worker
		}
		for {
			cur := w.expect.Load()
			if cur >= until || w.expect.CompareAndSwap(cur, until) {
				break
			}
		}
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

func (m *Manager) enqueueShared(ev Event) error {
	var ids []string
	var superseded int
	err := m.rec.Update(func(tx store.Tx) error {
		var eps []Endpoint
		ids, superseded = nil, 0
		if err := tx.Scan([]byte(pfxEndpoint), store.ScanOptions{}, func(_, v []byte) error {
			var e Endpoint
			if err := protocol.Unmarshal(v, &e); err != nil {
				return err
			}
			if e.Wants(ev) {
				eps = append(eps, e)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, e := range eps {
			_, n, err := m.put(tx, e.ID, ev)
			if err != nil {
				return fmt.Errorf("endpoint %s: %w", e.ID, err)
			}
			ids, superseded = append(ids, e.ID), superseded+n
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.delivered.WithLabelValues("superseded").Add(float64(superseded))
	for _, id := range ids {
		m.poke(id)
	}
	return nil
}

// Ping queues a "ping" event for one endpoint.
func (m *Manager) Ping(_ context.Context, id string) (uint64, error) {
	body := []byte(`{"event":"ping","at":"` + m.cfg.Now().UTC().Format(time.RFC3339Nano) + `"}`)
	var seq uint64
	err := m.rec.Update(func(tx store.Tx) error {
		seq = 0
		if _, err := endpointIn(tx, id); err != nil {
			return err
		}
		var err error
		seq, _, err = m.put(tx, id, Event{Type: EventPing, Body: body})
		return err
	})
	if err == nil {
		m.poke(id)
	}
	return seq, err
}

// put queues ev for endpoint id (which exists) and returns the delivery's
// seq and how many undelivered events it superseded.
func (m *Manager) put(tx store.Tx, id string, ev Event) (uint64, int, error) {
	seq, err := getU64(tx, []byte(pfxSeq+id))
	if err != nil {
		return 0, 0, err
	}
	seq++
	superseded := 0
	if ev.Key != "" {
		kk := []byte(pfxKey + id + "\x00" + ev.Key)
		old, err := getU64(tx, kk)
		if err != nil {
			return 0, 0, err
		}
		if old != 0 {
			if _, found, err := tx.Get(queueKey(id, old)); err != nil {
				return 0, 0, err
			} else if found {
				if err := tx.Delete(queueKey(id, old)); err != nil {
					return 0, 0, err
				}
				superseded++
				if err := bumpStats(tx, id, func(s *Stats) { s.Superseded++ }); err != nil {
					return 0, 0, err
				}
			}
		}
		if err := tx.Set(kk, u64(seq)); err != nil {
			return 0, 0, err
		}
	}
	now := m.cfg.Now().UnixMilli()
	d := Delivery{Seq: seq, Event: ev.Type, Key: ev.Key, Body: ev.Body, CreatedMS: now, NextMS: now}
	if err := putCBOR(tx, queueKey(id, seq), d); err != nil {
		return 0, 0, err
	}
	return seq, superseded, tx.Set([]byte(pfxSeq+id), u64(seq))
}

func (m *Manager) poke(id string) {
	m.mu.Lock()
	w := m.workers[id]
	m.mu.Unlock()
	if w == nil {
		return
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (m *Manager) pendingTotal() int {
	n := 0
	_ = m.rec.View(func(tx store.Tx) error {
		n = 0
		return tx.Scan([]byte(pfxQueue), store.ScanOptions{KeysOnly: true}, func(_, _ []byte) error { n++; return nil })
	})
	return n
}
