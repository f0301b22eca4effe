package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Delivering: each endpoint's worker posts its queue's head, retries with backoff, and buries what keeps failing.

// run delivers id's queue in order until ctx ends.
func (m *Manager) run(ctx context.Context, id string, w *worker) {
	if m.cfg.Shared {
		defer func() {
			if w.lease.held && !m.noRelease {
				m.release(id)
			}
		}()
	}
	idle := time.Millisecond // the next look at an empty queue while expecting a commit
	for ctx.Err() == nil {
		e, d, ok, err := m.head(id)
		if err != nil {
			m.log.Error("read webhook queue", "endpoint", id, "err", err)
			if !sleep(ctx, time.Second, nil) {
				return
			}
			continue
		}
		if !ok {
			if time.Now().UnixNano() < w.expect.Load() {
				// EnqueueTx queued in a transaction that may not have
				// committed yet: look again soon.
				if !sleep(ctx, idle, w.wake) {
					return
				}
				idle = min(2*idle, expectPoll)
				continue
			}
			idle = time.Millisecond
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
			}
			continue
		}
		idle = time.Millisecond
		if e.Disabled {
			// a disabled endpoint keeps its queue; it resumes when enabled
			if !sleep(ctx, time.Minute, w.wake) {
				return
			}
			continue
		}
		if m.cfg.Shared && !m.holdLease(ctx, id, w) {
			// another replica delivers; look again at the next poll
			if !sleep(ctx, m.cfg.PollEvery, w.wake) {
				return
			}
			continue
		}
		now := m.cfg.Now()
		if wait := time.UnixMilli(d.NextMS).Sub(now); wait > 0 {
			if m.cfg.Shared {
				wait = min(wait, m.renewEvery()) // keep the lease while backing off
			}
			if !sleep(ctx, wait, w.wake) {
				return
			}
			continue
		}
		if now.Sub(time.UnixMilli(d.CreatedMS)) > m.cfg.MaxAge {
			m.bury(id, d)
			continue
		}
		m.attempt(ctx, id, e, d, w)
	}
}

// sleep waits d, or until wake fires or ctx ends; it reports false when ctx ended.
func sleep(ctx context.Context, d time.Duration, wake chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}

// head returns endpoint id and the first delivery of its queue; ok is
// false when the queue is empty or the endpoint gone.
func (m *Manager) head(id string) (Endpoint, Delivery, bool, error) {
	var e Endpoint
	var d Delivery
	var found bool
	err := m.rec.View(func(tx store.Tx) error {
		found = false
		var err error
		if e, err = endpointIn(tx, id); errors.Is(err, ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		return tx.Scan([]byte(pfxQueue+id+"\x00"), store.ScanOptions{}, func(_, v []byte) error {
			found = true
			if err := protocol.Unmarshal(v, &d); err != nil {
				return err
			}
			return store.ErrStopScan
		})
	})
	return e, d, found, err
}

func (m *Manager) attempt(ctx context.Context, id string, e Endpoint, d Delivery, w *worker) {
	d.Attempts++
	pctx, stop := ctx, func() bool { return false }
	if m.cfg.Shared {
		// an attempt begun under the lease that ends after it lapsed is
		// late: counted, because another replica may repeat it
		leased := w.lease.held && time.Now().Before(w.lease.until)
		pctx, stop = m.keepLease(ctx, id, w)
		defer func() {
			if leased && time.Now().After(w.lease.until) {
				m.late.Inc()
			}
		}()
	}
	status, err := m.post(pctx, e, d)
	lost := stop()
	if ctx.Err() != nil || (err != nil && lost) {
		return // shutting down, or the lease is gone: the attempt does not count
	}
	now := m.cfg.Now()
	if err == nil {
		m.delivered.WithLabelValues("success").Inc()
		uerr := m.rec.Update(func(tx store.Tx) error {
			if ok, err := queued(tx, id, d.Seq); err != nil || !ok {
				return err // superseded or deleted meanwhile
			}
			if err := tx.Delete(queueKey(id, d.Seq)); err != nil {
				return err
			}
			return bumpStats(tx, id, func(s *Stats) {
				s.Delivered++
				s.ConsecutiveFailures = 0
				s.LastStatus, s.LastAttemptMS, s.LastSuccessMS = status, now.UnixMilli(), now.UnixMilli()
			})
		})
		if uerr != nil {
			m.log.Error("record webhook delivery", "endpoint", id, "err", uerr)
		}
		return
	}
	m.delivered.WithLabelValues("failure").Inc()
	d.LastError, d.LastStatus = err.Error(), status
	d.NextMS = now.Add(m.backoff(d.Attempts)).UnixMilli()
	m.log.Warn("webhook delivery failed; will retry", "endpoint", id, "url", e.URL, "delivery", d.Seq, "attempt", d.Attempts,
		"retry_in", time.UnixMilli(d.NextMS).Sub(now).Round(time.Millisecond), "err", err)
	uerr := m.rec.Update(func(tx store.Tx) error {
		if ok, err := queued(tx, id, d.Seq); err != nil || !ok {
			return err
		}
		if err := putCBOR(tx, queueKey(id, d.Seq), d); err != nil {
			return err
		}
		if err := m.addFailure(tx, id, Failure{Delivery: d.Seq, Event: d.Event, Attempt: d.Attempts, AtMS: now.UnixMilli(), Status: status, Error: err.Error()}); err != nil {
			return err
		}
		return bumpStats(tx, id, func(s *Stats) {
			s.Failures++
			s.ConsecutiveFailures++
			s.LastError, s.LastStatus, s.LastAttemptMS = err.Error(), status, now.UnixMilli()
		})
	})
	if uerr != nil {
		m.log.Error("record webhook failure", "endpoint", id, "err", uerr)
	}
}

// queued reports whether delivery seq of endpoint id is still pending and
// the endpoint still there (another replica may have deleted it).
func queued(tx store.KV, id string, seq uint64) (bool, error) {
	if _, ok, err := tx.Get([]byte(pfxEndpoint + id)); err != nil || !ok {
		return false, err
	}
	_, ok, err := tx.Get(queueKey(id, seq))
	return ok, err
}

func (m *Manager) post(ctx context.Context, e Endpoint, d Delivery) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(d.Body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "shelfsync-webhooks/1")
	req.Header.Set(HeaderEvent, d.Event)
	req.Header.Set(HeaderDelivery, e.ID+"-"+strconv.FormatUint(d.Seq, 10))
	req.Header.Set(HeaderAttempt, strconv.Itoa(d.Attempts))
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(m.cfg.Now().Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(e.Secret, d.Body))
	resp, err := m.cfg.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("receiver answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

// backoff returns the wait after the n-th failed attempt.
func (m *Manager) backoff(n int) time.Duration {
	d := m.cfg.InitialBackoff
	for i := 1; i < n && d < m.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, m.cfg.MaxBackoff)
	jitter := 0.9 + 0.2*rand.Float64()
	return time.Duration(float64(d) * jitter)
}

// bury moves a delivery that is too old to the dead list.
func (m *Manager) bury(id string, d Delivery) {
	d.Dead = true
	var buried bool
	err := m.rec.Update(func(tx store.Tx) error {
		buried = false
		if ok, err := queued(tx, id, d.Seq); err != nil || !ok {
			return err
		}
		if err := tx.Delete(queueKey(id, d.Seq)); err != nil {
			return err
		}
		if err := putCBOR(tx, []byte(pfxDead+id+"\x00"+string(u64(d.Seq))), d); err != nil {
			return err
		}
		buried = true
		return bumpStats(tx, id, func(s *Stats) { s.Dead++ })
	})
	if err != nil {
		m.log.Error("bury webhook delivery", "endpoint", id, "err", err)
		return
	}
	if buried {
		m.delivered.WithLabelValues("dead").Inc()
		m.log.Warn("webhook delivery given up", "endpoint", id, "delivery", d.Seq, "attempts", d.Attempts, "last_error", d.LastError)
	}
}

func (m *Manager) addFailure(tx store.Tx, id string, f Failure) error {
	n, err := getU64(tx, []byte(pfxFailN+id))
	if err != nil {
		return err
	}
	n++
	if err := putCBOR(tx, []byte(pfxFail+id+"\x00"+string(u64(n))), f); err != nil {
		return err
	}
	if n > uint64(m.cfg.MaxFailures) {
		if err := tx.Delete([]byte(pfxFail + id + "\x00" + string(u64(n-uint64(m.cfg.MaxFailures))))); err != nil {
			return err
		}
	}
	return tx.Set([]byte(pfxFailN+id), u64(n))
}

func bumpStats(tx store.KV, id string, f func(*Stats)) error {
	var s Stats
	if _, err := getCBOR(tx, []byte(pfxStats+id), &s); err != nil {
		return err
	}
	f(&s)
	return putCBOR(tx, []byte(pfxStats+id), s)
}
