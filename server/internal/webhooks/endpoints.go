package webhooks

import (
	"context"
	"fmt"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Endpoints: created, changed, deleted and read with their deliveries and failures.

// Create adds an endpoint; a secret is generated when none is given. The
// returned endpoint carries the secret in clear, once.
func (m *Manager) Create(_ context.Context, e Endpoint) (Endpoint, error) {
	if err := e.Validate(); err != nil {
		return Endpoint{}, err
	}
	e.ID = randomHex(8)
	if e.Secret == "" {
		e.Secret = "whsec_" + randomHex(24)
	}
	e.CreatedMS = m.cfg.Now().UnixMilli()
	m.epMu.Lock()
	if err := m.rec.Update(func(tx store.Tx) error { return putCBOR(tx, []byte(pfxEndpoint+e.ID), e) }); err != nil {
		m.epMu.Unlock()
		return Endpoint{}, err
	}
	m.mu.Lock()
	m.eps[e.ID] = e
	m.startWorker(e.ID)
	m.mu.Unlock()
	m.epMu.Unlock()
	return e, nil
}

// Update replaces an endpoint's definition, keeping its id, secret (unless
// a new one is given), queue and stats.
func (m *Manager) Update(_ context.Context, id string, e Endpoint) (Endpoint, error) {
	if err := e.Validate(); err != nil {
		return Endpoint{}, err
	}
	m.epMu.Lock()
	defer m.epMu.Unlock()
	in := e
	err := m.rec.Update(func(tx store.Tx) error {
		old, err := endpointIn(tx, id)
		if err != nil {
			return err
		}
		e = in
		e.ID, e.CreatedMS = id, old.CreatedMS
		if e.Secret == "" {
			e.Secret = old.Secret
		}
		return putCBOR(tx, []byte(pfxEndpoint+id), e)
	})
	if err != nil {
		return Endpoint{}, err
	}
	m.mu.Lock()
	m.eps[id] = e
	m.startWorker(id)
	m.mu.Unlock()
	m.poke(id)
	return e, nil
}

// Delete removes an endpoint with its queue, failures and stats.
func (m *Manager) Delete(_ context.Context, id string) error {
	m.epMu.Lock()
	m.mu.Lock()
	m.dropLocked(id)
	m.mu.Unlock()
	// The endpoint first: what runs after this transaction (a worker of
	// another replica, an Enqueue) finds it gone and writes nothing.
	err := m.rec.Update(func(tx store.Tx) error {
		if _, err := endpointIn(tx, id); err != nil {
			return err
		}
		for _, k := range []string{pfxEndpoint + id, pfxStats + id, pfxSeq + id, pfxFailN + id, pfxLease + id} {
			if err := tx.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
	m.epMu.Unlock()
	if err != nil {
		return err
	}
	for _, p := range []string{pfxQueue + id + "\x00", pfxKey + id + "\x00", pfxDead + id + "\x00", pfxFail + id + "\x00"} {
		if err := deletePrefix(m.rec, p); err != nil {
			return err
		}
	}
	return nil
}

// List returns every endpoint with its stats, secrets masked.
func (m *Manager) List(_ context.Context) ([]View, error) {
	var out []View
	err := m.rec.View(func(tx store.Tx) error {
		out = []View{}
		return tx.Scan([]byte(pfxEndpoint), store.ScanOptions{}, func(_, v []byte) error {
			var e Endpoint
			if err := protocol.Unmarshal(v, &e); err != nil {
				return err
			}
			view, err := viewIn(tx, e)
			out = append(out, view)
			return err
		})
	})
	return out, err
}

// Get returns one endpoint with its stats, secret masked.
func (m *Manager) Get(_ context.Context, id string) (View, error) {
	var v View
	err := m.rec.View(func(tx store.Tx) error {
		e, err := endpointIn(tx, id)
		if err != nil {
			return err
		}
		v, err = viewIn(tx, e)
		return err
	})
	return v, err
}

// viewIn reads e's stats and queue.
func viewIn(tx store.KV, e Endpoint) (View, error) {
	v := View{Endpoint: e}
	v.Secret = mask(e.Secret)
	if _, err := getCBOR(tx, []byte(pfxStats+e.ID), &v.Stats); err != nil {
		return v, err
	}
	err := tx.Scan([]byte(pfxQueue+e.ID+"\x00"), store.ScanOptions{}, func(_, b []byte) error {
		if v.Stats.Pending == 0 {
			var d Delivery
			if err := protocol.Unmarshal(b, &d); err != nil {
				return err
			}
			v.Stats.NextAttemptMS = d.NextMS
		}
		v.Stats.Pending++
		return nil
	})
	return v, err
}

// Deliveries returns up to limit pending (or, with dead, given-up)
// deliveries of an endpoint, oldest first.
func (m *Manager) Deliveries(_ context.Context, id string, dead bool, limit int) ([]Delivery, error) {
	pfx := pfxQueue
	if dead {
		pfx = pfxDead
	}
	var out []Delivery
	err := m.rec.View(func(tx store.Tx) error {
		out = nil
		if _, err := endpointIn(tx, id); err != nil {
			return err
		}
		return tx.Scan([]byte(pfx+id+"\x00"), store.ScanOptions{}, func(_, v []byte) error {
			var d Delivery
			if err := protocol.Unmarshal(v, &d); err != nil {
				return err
			}
			out = append(out, d)
			if limit > 0 && len(out) >= limit {
				return store.ErrStopScan
			}
			return nil
		})
	})
	return out, err
}

// Failures returns the endpoint's most recent failed attempts, newest first.
func (m *Manager) Failures(_ context.Context, id string, limit int) ([]Failure, error) {
	var out []Failure
	err := m.rec.View(func(tx store.Tx) error {
		out = nil
		if _, err := endpointIn(tx, id); err != nil {
			return err
		}
		return tx.Scan([]byte(pfxFail+id+"\x00"), store.ScanOptions{Reverse: true}, func(_, v []byte) error {
			var f Failure
			if err := protocol.Unmarshal(v, &f); err != nil {
				return err
			}
			out = append(out, f)
			if limit > 0 && len(out) >= limit {
				return store.ErrStopScan
			}
			return nil
		})
	})
	return out, err
}

// endpointIn reads endpoint id, or ErrNotFound.
func endpointIn(tx store.KV, id string) (Endpoint, error) {
	var e Endpoint
	found, err := getCBOR(tx, []byte(pfxEndpoint+id), &e)
	if err == nil && !found {
		err = fmt.Errorf("endpoint %s: %w", id, ErrNotFound)
	}
	return e, err
}
