package webhooks

import (
	"context"
	"time"

	"github.com/shelfsync/shelfsync/server/internal/store"
)

// lease is an endpoint's delivery lease (wh/l/{id}): the replica that
// holds it is the only one that posts the endpoint's queue.
//
// Holder renews it every LeaseTTL/3 while it delivers, each renewal
// counting Gen up. Another replica takes it over when it has seen the
// same Holder and Gen for a whole LeaseTTL by its own clock — not by
// comparing Until with its clock, so that clocks that disagree between
// replicas never give a lease two holders; Until is the holder's estimate,
// for people reading the records. The holder stops posting LeaseTTL after
// the start of its last successful renewal, before anyone can have seen
// that renewal age a whole LeaseTTL. A holder that stops releases its
// leases (Holder ""), which another replica takes at once.
type lease struct {
	Holder  string `cbor:"1,keyasint"`
	Gen     uint64 `cbor:"2,keyasint"`
	UntilMS int64  `cbor:"3,keyasint,omitempty"`
}

// leaseState is what a worker knows of its endpoint's lease.
type leaseState struct {
	held    bool
	renewed time.Time // start of the last successful take or renewal
	until   time.Time // held: this replica may post until then

	// the lease of another replica as first seen at seenAt
	seenHolder string
	seenGen    uint64
	seenAt     time.Time
}

func leaseKey(id string) []byte { return []byte(pfxLease + id) }

func (m *Manager) renewEvery() time.Duration { return m.cfg.LeaseTTL / 3 }

// holdLease reports whether this replica may post id's queue now, taking
// or renewing the lease when due.
func (m *Manager) holdLease(ctx context.Context, id string, w *worker) bool {
	ls := &w.lease
	if !ls.held || time.Since(ls.renewed) >= m.renewEvery() {
		if _, err := m.acquire(id, ls); err != nil {
			m.log.Warn("webhook delivery lease", "endpoint", id, "err", err)
		}
	}
	return ls.held && time.Now().Before(ls.until)
}

// acquire takes id's lease when it is free, ours, or stale, and reports
// whether this replica holds it now. On error ls is left as it was.
func (m *Manager) acquire(id string, ls *leaseState) (bool, error) {
	start := time.Now()
	var cur lease
	var took bool
	err := m.rec.Update(func(tx store.Tx) error {
		cur, took = lease{}, false
		if _, ok, err := tx.Get([]byte(pfxEndpoint + id)); err != nil || !ok {
			return err // deleted: nothing to deliver
		}
		if _, err := getCBOR(tx, leaseKey(id), &cur); err != nil {
			return err
		}
		if cur.Holder != "" && cur.Holder != m.cfg.ReplicaID &&
			!(cur.Holder == ls.seenHolder && cur.Gen == ls.seenGen && time.Since(ls.seenAt) >= m.cfg.LeaseTTL) {
			return nil // another replica's, and alive as far as we know
		}
		took = true
		return putCBOR(tx, leaseKey(id), lease{Holder: m.cfg.ReplicaID, Gen: cur.Gen + 1, UntilMS: start.Add(m.cfg.LeaseTTL).UnixMilli()})
	})
	if err != nil {
		return ls.held, err
	}
	if took {
		if !ls.held {
			m.log.Info("webhook delivery lease taken", "endpoint", id, "replica", m.cfg.ReplicaID, "from", cur.Holder)
		}
		ls.held, ls.renewed, ls.until = true, start, start.Add(m.cfg.LeaseTTL)
		ls.seenHolder, ls.seenGen, ls.seenAt = "", 0, time.Time{}
		return true, nil
	}
	ls.held = false
	if cur.Holder != ls.seenHolder || cur.Gen != ls.seenGen || ls.seenAt.IsZero() {
		// Seen after the transaction: never earlier than the renewal
		// that wrote it.
		ls.seenHolder, ls.seenGen, ls.seenAt = cur.Holder, cur.Gen, time.Now()
	}
	return false, nil
}

// release gives id's lease up when this replica holds it.
func (m *Manager) release(id string) {
	err := m.rec.Update(func(tx store.Tx) error {
		var cur lease
		found, err := getCBOR(tx, leaseKey(id), &cur)
		if err != nil || !found || cur.Holder != m.cfg.ReplicaID {
			return err
		}
		return putCBOR(tx, leaseKey(id), lease{Gen: cur.Gen + 1})
	})
	if err != nil {
		m.log.Warn("release webhook delivery lease", "endpoint", id, "err", err)
	}
}

// keepLease renews w's lease every LeaseTTL/3 while a post runs under the
// returned context, which it cancels when the lease is lost or could not
// be renewed in time. stop ends it and reports whether the lease was lost.
func (m *Manager) keepLease(ctx context.Context, id string, w *worker) (context.Context, func() (lost bool)) {
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	lost := false
	go func() {
		defer close(done)
		tick := time.NewTicker(m.renewEvery())
		defer tick.Stop()
		expire := time.NewTimer(time.Until(w.lease.until))
		defer expire.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-expire.C:
				lost = true
				cancel()
				return
			case <-tick.C:
				held, err := m.acquire(id, &w.lease)
				if err != nil {
					m.log.Warn("renew webhook delivery lease", "endpoint", id, "err", err)
					continue // the expiry timer still runs
				}
				if !held {
					lost = true
					cancel()
					return
				}
				expire.Reset(time.Until(w.lease.until))
			}
		}
	}()
	return pctx, func() bool {
		cancel()
		<-done
		return lost
	}
}
