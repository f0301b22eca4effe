package alerts

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Keys (fields joined with NUL):
//
//	al/a/{id}            Alert (CBOR); ids sort by creation time
//	al/open/{id}         present while the alert is open
//	al/id                the last id handed out (uint64, big-endian)
//	al/r/{wh}\0{sku}     reorder state (reorderState, CBOR): the side of the point the
//	                     last observed on-hand was on, and the standing alert's id
//	al/c/{conflict}      present from the conflict's "opened" notification until its "ended" one
//	al/g/{kind}\0{wh}\0{gw}  the standing gateway alert's id, while its cause lasts
//	al/k/{cause}         the alert id of a cause a caller names (RaiseFor, ClearFor: causes.go)
const (
	pfxAlert   = "al/a/"
	pfxOpen    = "al/open/"
	keyLastID  = "al/id"
	pfxReorder = "al/r/"
	pfxCfl     = "al/c/"
	pfxGW      = "al/g/"
)

// Config configures the Service; every hook may be nil.
type Config struct {
	// Records holds the alerts and their state (required).
	Records store.Records
	// Thresholds gives reorder settings (nil: no reorder alerts).
	Thresholds Thresholds
	// OnOrder returns the open purchase-order quantity of a sku (nil: 0).
	OnOrder func(wh, sku string) int64
	// Owner returns the owner of a sku's item ("" for none; nil: no
	// owners): an alert about a sku raised without an owner gets it.
	Owner func(wh, sku string) (string, error)
	// Gateways lists gateway records for the offline and backlog checks.
	Gateways func(ctx context.Context) ([]store.Gateway, error)
	// Publish receives every alert change (raised, acknowledged, cleared,
	// resolved), on the replica whose transaction made it, once, after
	// the commit: for what may be lost when the replica dies right after
	// it (the dashboard, a poke of the MQTT outbox).
	Publish func(Alert)
	// Within, when set, is called in the transaction that stores an alert
	// change (a new alert with its id, an acknowledgement, a clearing, a
	// resolution), with the alert as stored; an error aborts the
	// transaction. What it writes through tx commits with the alert or
	// not at all: the app queues the alert's webhook deliveries and its
	// MQTT message here. It may run more than once for one change (Update
	// retries), so it must write only through tx.
	Within func(tx store.Tx, a Alert) error
	// ConflictWithin, when set, is called in the transaction that records
	// a conflict's notification — event ConflictOpened when it opens
	// (again), ConflictEnded when it stops holding or is resolved — once
	// per event across replicas; the app queues the conflict's webhook
	// and MQTT message here. Same rules as Within.
	ConflictWithin func(tx store.Tx, c conflicts.Conflict, event string) error
	// ConflictNotified follows the commit of a conflict notification, on
	// the replica that made it (nil: nothing).
	ConflictNotified func(c conflicts.Conflict, event string)
	// OpenConflicts lists the open conflicts (nil: no sweep). Run
	// re-observes them every CheckEvery (SweepConflicts), so that a
	// conflict whose ObserveConflict never came — the replica that applied
	// the batch died after the commit — is notified, once.
	OpenConflicts func(ctx context.Context) ([]conflicts.Conflict, error)
	// Sweep reports whether this replica sweeps the open conflicts now
	// (nil: always, as a single server does); the app sweeps on the
	// leader only. Several replicas sweeping still raise each alert once.
	Sweep func() bool
	// OfflineAfter is how long a gateway may be offline before an alert
	// (default DefaultOfflineAfter).
	OfflineAfter time.Duration
	// BacklogOps is the backlog (ops not yet applied) that always alerts
	// (default DefaultBacklogOps); a backlog above BacklogOps/10 that grew
	// at each of the last BacklogChecks checks (default
	// DefaultBacklogChecks) alerts too. The alert clears at BacklogOps/10
	// or less.
	BacklogOps    uint64
	BacklogChecks int
	// CheckEvery is the gateway check and conflict sweep period (default
	// DefaultCheckEvery).
	CheckEvery time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Defaults of Config's settings (the server's --alert-* flags).
const (
	DefaultOfflineAfter  = 5 * time.Minute
	DefaultBacklogOps    = 1000
	DefaultBacklogChecks = 3
	DefaultCheckEvery    = 15 * time.Second
)

// Conflict notification events (Config.ConflictWithin).
const (
	ConflictOpened = "opened"
	ConflictEnded  = "ended"
)

// Service raises, stores, acknowledges, clears and resolves alerts; safe for concurrent use,
// and by several replicas over one database: the state that makes an alert
// fire once (armed, standing) is read and written in the transaction that
// stores the alert, and ids come from a counter in that transaction.
type Service struct {
	cfg    Config
	rec    store.Records
	log    *slog.Logger
	raised *prometheus.CounterVec
	// notified counts conflict notifications by kind and event.
	notified *prometheus.CounterVec

	// mu serialises this replica's raises (fewer transaction retries);
	// correctness across replicas rests on the transactions alone.
	mu      sync.Mutex
	backlog map[string][]uint64 // wh\0gw → recent backlog samples (this replica's)
	// shorts counts the standing short-pick alerts this replica knows of
	// (shortpick.go); the periodic check corrects it.
	shorts atomic.Int64
}

// New builds the service.
func New(cfg Config) *Service {
	if cfg.OfflineAfter <= 0 {
		cfg.OfflineAfter = DefaultOfflineAfter
	}
	if cfg.BacklogOps == 0 {
		cfg.BacklogOps = DefaultBacklogOps
	}
	if cfg.BacklogChecks <= 0 {
		cfg.BacklogChecks = DefaultBacklogChecks
	}
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = DefaultCheckEvery
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, rec: cfg.Records, log: cfg.Logger, backlog: map[string][]uint64{}}
	s.raised = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_alerts_total", Help: "Alerts raised, by kind."}, []string{"kind"})
	s.notified = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_conflict_notifications_total",
		Help: "Conflict notifications (webhook event conflict, the alerts topic), by conflict kind and event (opened, ended)."}, []string{"kind", "event"})
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(s.raised, s.notified)
	}
	return s
}

// Run checks gateways and sweeps the open conflicts (Config.OpenConflicts,
// Config.Sweep) every CheckEvery until ctx ends.
func (s *Service) Run(ctx context.Context) {
	if n, err := s.closeLegacyConflictAlerts(); err != nil {
		s.log.Warn("alerts of conflicts stored by an older server not cleared", "err", err)
	} else if n > 0 {
		s.log.Info("cleared alerts of conflicts stored by an older server (conflicts notify on their own)", "alerts", n)
	}
	t := time.NewTicker(s.cfg.CheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.CheckGateways(ctx); err != nil {
				s.log.Warn("gateway alert check failed", "err", err)
			}
			if _, err := s.CheckShortPicks(ctx); err != nil {
				s.log.Warn("short-pick alert check failed", "err", err)
			}
			if s.cfg.OpenConflicts != nil && (s.cfg.Sweep == nil || s.cfg.Sweep()) {
				if n, err := s.SweepConflicts(ctx); err != nil {
					s.log.Warn("conflict alert sweep failed", "err", err)
				} else if n > 0 {
					s.log.Warn("conflict sweep notified conflicts their observation missed", "conflicts", n)
				}
			}
		}
	}
}

// SweepConflicts notifies every open conflict (Config.OpenConflicts) whose
// opening was not notified, as ObserveConflict would have when the
// conflict opened, and returns how many it notified. A conflict stands
// from the transaction that notifies its opening until the one that
// notifies its end, so a conflict observed already — by the apply, another
// replica or an earlier sweep — is not notified again, also when several
// replicas sweep at once.
func (s *Service) SweepConflicts(ctx context.Context) (int, error) {
	if s.cfg.OpenConflicts == nil {
		return 0, nil
	}
	// The standing flags first, in one read; the notification re-checks its own.
	standing := map[string]bool{}
	if err := s.rec.View(func(tx store.Tx) error {
		clear(standing)
		return tx.Scan([]byte(pfxCfl), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
			standing[string(k[len(pfxCfl):])] = true
			return nil
		})
	}); err != nil {
		return 0, fmt.Errorf("read conflict notification state: %w", err)
	}
	cs, err := s.cfg.OpenConflicts(ctx)
	if err != nil {
		return 0, fmt.Errorf("list open conflicts: %w", err)
	}
	n := 0
	for _, c := range cs {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		if !conflictStands(c) || standing[c.ID] {
			continue
		}
		if notified, err := s.notifyConflict(c, ConflictOpened); err != nil {
			return n, err
		} else if notified {
			n++
		}
	}
	return n, nil
}

// reorderState is a sku's reorder state: the side of the point its last
// observed on-hand was on, that point, and the id of its standing alert.
type reorderState struct {
	Above bool   `cbor:"1,keyasint,omitempty"`
	Alert string `cbor:"2,keyasint,omitempty"`
	Point int64  `cbor:"3,keyasint,omitempty"`
	// HasPoint is false in a state stored by an older server (its point is
	// taken to be the current one).
	HasPoint bool `cbor:"4,keyasint,omitempty"`
}

// same reports whether st already records on-hand on side above of point.
func (st reorderState) same(above bool, point int64) bool {
	return st.Above == above && (!st.HasPoint || st.Point == point)
}

// readReorder reads a reorder state; found is false before the first
// observation. A state stored by an older server is one byte: 1 armed
// (above), 0 fired (at or below, its alert unknown).
func readReorder(tx store.KV, key []byte) (st reorderState, found bool, err error) {
	v, found, err := tx.Get(key)
	if err != nil || !found {
		return st, found, err
	}
	if len(v) == 1 && (v[0] == 0 || v[0] == 1) {
		return reorderState{Above: v[0] == 1}, true, nil
	}
	if err := protocol.Unmarshal(v, &st); err != nil {
		return st, true, fmt.Errorf("reorder state %q: %w", key, err)
	}
	return st, true, nil
}

func writeReorder(tx store.Tx, key []byte, st reorderState) error {
	return putCBOR(tx, key, st)
}

// ObserveStock evaluates the reorder point of sku in wh for its on-hand
// (docs/DESIGN.md, "Reorder"): an alert when a decrement takes on-hand from
// above the point to at or below it; the standing alert cleared when
// on-hand is above the point again. Anything else — the first observation,
// a receipt that leaves on-hand at or below the point, a point that moved
// (a seasonal override, an edit) — only records the side.
func (s *Service) ObserveStock(wh, sku string, onHand int64) {
	if s.cfg.Thresholds == nil {
		return
	}
	th, ok := s.cfg.Thresholds.Threshold(wh, sku)
	if !ok {
		return
	}
	eff, seasonal := th.On(s.cfg.Now())
	key := []byte(pfxReorder + wh + "\x00" + sku)
	above := onHand > eff.ReorderPoint
	// A read first: most observations change nothing.
	var st reorderState
	var found bool
	if err := s.rec.View(func(tx store.Tx) error {
		var err error
		st, found, err = readReorder(tx, key)
		return err
	}); err != nil {
		s.log.Error("read reorder state", "warehouse", wh, "sku", sku, "err", err)
		return
	}
	switch {
	case found && st.same(above, eff.ReorderPoint):
		return
	case found && st.Above && !above && (!st.HasPoint || st.Point == eff.ReorderPoint): // a decrement crossed the point
		var onOrder int64
		if s.cfg.OnOrder != nil {
			onOrder = s.cfg.OnOrder(wh, sku)
		}
		a := Alert{Kind: KindReorder, Warehouse: wh, SKU: sku, OnHand: onHand, ReorderPoint: eff.ReorderPoint, ReorderQty: eff.ReorderQty,
			Max: eff.Max, OnOrder: onOrder, SuggestedQty: eff.Suggested(onHand, onOrder), Seasonal: seasonal}
		a.Message = fmt.Sprintf("%s in %s fell to %d, at or below its reorder point %d: order %d", sku, wh, onHand, eff.ReorderPoint, a.SuggestedQty)
		if seasonal {
			a.Message += " (seasonal threshold)"
		}
		// Re-checked in the raising transaction: another replica may have
		// fired it meanwhile.
		_, _, _ = s.raiseIf(a, func(tx store.Tx) (bool, error) {
			st, found, err := readReorder(tx, key)
			return err == nil && found && st.Above && (!st.HasPoint || st.Point == eff.ReorderPoint), err
		}, func(tx store.Tx, id string) error {
			return writeReorder(tx, key, reorderState{Alert: id, Point: eff.ReorderPoint, HasPoint: true})
		})
	default: // the first observation, a move of the point, or back above it
		s.change(func(tx store.Tx) (Alert, bool, error) {
			st, found, err := readReorder(tx, key)
			if err != nil || (found && st.same(above, eff.ReorderPoint)) {
				return Alert{}, false, err
			}
			next := reorderState{Above: above, Point: eff.ReorderPoint, HasPoint: true}
			if !above {
				next.Alert = st.Alert // still below: the alert stands
			}
			if err := writeReorder(tx, key, next); err != nil {
				return Alert{}, false, err
			}
			if !above || st.Alert == "" {
				return Alert{}, false, nil
			}
			return s.closeIn(tx, st.Alert, StatusCleared, "", "")
		}, "record reorder state", "warehouse", wh, "sku", sku)
	}
}

// conflictStands reports whether a conflict is an exception someone must
// still act on: it holds and nobody resolved it.
func conflictStands(c conflicts.Conflict) bool {
	return c.Holds && c.Status != conflicts.StatusResolved && c.Status != conflicts.StatusCleared
}

// ObserveConflict notifies a conflict's opening (again) and its end, once
// each: a conflict is its own exception, not an alert item.
func (s *Service) ObserveConflict(c conflicts.Conflict) {
	key := []byte(pfxCfl + c.ID)
	var standing bool
	if err := s.rec.View(func(tx store.Tx) error {
		var err error
		_, standing, err = tx.Get(key)
		return err
	}); err != nil {
		s.log.Error("read conflict notification state", "conflict", c.ID, "err", err)
		return
	}
	switch stands := conflictStands(c); {
	case stands && !standing:
		_, _ = s.notifyConflict(c, ConflictOpened)
	case !stands && standing:
		_, _ = s.notifyConflict(c, ConflictEnded)
	}
}

// notifyConflict records event for c in one transaction — its standing
// flag set (opened) or deleted (ended), and Config.ConflictWithin — when
// the flag says it was not done yet, and reports whether it was.
func (s *Service) notifyConflict(c conflicts.Conflict, event string) (bool, error) {
	key := []byte(pfxCfl + c.ID)
	var done bool
	err := s.rec.Update(func(tx store.Tx) error {
		done = false
		_, standing, err := tx.Get(key)
		if err != nil || standing == (event == ConflictOpened) {
			return err
		}
		if event == ConflictOpened {
			err = tx.Set(key, nil)
		} else {
			err = tx.Delete(key)
		}
		if err != nil {
			return err
		}
		if s.cfg.ConflictWithin != nil {
			if err := s.cfg.ConflictWithin(tx, c, event); err != nil {
				return err
			}
		}
		done = true
		return nil
	})
	if err != nil {
		s.log.Error("conflict notification not stored", "conflict", c.ID, "event", event, "err", err)
		return false, err
	}
	if done {
		s.notified.WithLabelValues(string(c.Kind), event).Inc()
		s.log.Info("conflict", "id", c.ID, "kind", c.Kind, "event", event, "status", c.Status, "warehouse", c.Warehouse)
		if s.cfg.ConflictNotified != nil {
			s.cfg.ConflictNotified(c, event)
		}
	}
	return done, nil
}

// closeLegacyConflictAlerts clears the open alerts of conflicts an older
// server raised (conflicts notify on their own now) and returns how many.
func (s *Service) closeLegacyConflictAlerts() (int, error) {
	var ids []string
	if err := s.rec.View(func(tx store.Tx) error {
		ids = ids[:0]
		return tx.Scan([]byte(pfxOpen), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
			id := string(k[len(pfxOpen):])
			var a Alert
			if found, err := getCBOR(tx, []byte(pfxAlert+id), &a); err != nil || !found {
				return err
			}
			if a.Kind == KindConflict || a.Kind == KindOversell || a.Kind == KindReceiptDiscrepancy {
				ids = append(ids, id)
			}
			return nil
		})
	}); err != nil {
		return 0, err
	}
	for _, id := range ids {
		s.change(func(tx store.Tx) (Alert, bool, error) {
			return s.closeIn(tx, id, StatusCleared, "", "")
		}, "clear an older server's conflict alert", "alert", id)
	}
	return len(ids), nil
}

// CheckGateways raises offline and backlog alerts.
func (s *Service) CheckGateways(ctx context.Context) error {
	if s.cfg.Gateways == nil {
		return nil
	}
	gs, err := s.cfg.Gateways(ctx)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	for _, g := range gs {
		id := g.Warehouse + "\x00" + g.Gateway
		offKey := []byte(pfxGW + string(KindGatewayOffline) + "\x00" + id)
		offline := !g.Online && g.LastSeen > 0 && now.Sub(time.UnixMilli(g.LastSeen)) > s.cfg.OfflineAfter
		s.gatewayState(offKey, offline, func() Alert {
			return Alert{Kind: KindGatewayOffline, Warehouse: g.Warehouse, Gateway: g.Gateway, Backlog: g.OutboxDepth,
				Message: fmt.Sprintf("gateway %s/%s offline for %s (last seen %s)", g.Warehouse, g.Gateway,
					now.Sub(time.UnixMilli(g.LastSeen)).Round(time.Second), time.UnixMilli(g.LastSeen).UTC().Format(time.RFC3339))}
		})
		var lag uint64
		if g.ReportedSeq > g.WM {
			lag = g.ReportedSeq - g.WM
		}
		backlog := max(lag, g.OutboxDepth)
		s.mu.Lock()
		samples := append(s.backlog[id], backlog)
		if len(samples) > s.cfg.BacklogChecks+1 {
			samples = samples[len(samples)-s.cfg.BacklogChecks-1:]
		}
		s.backlog[id] = samples
		growing := len(samples) == s.cfg.BacklogChecks+1 && backlog > s.cfg.BacklogOps/10
		for i := 1; growing && i < len(samples); i++ {
			growing = samples[i] > samples[i-1]
		}
		s.mu.Unlock()
		bad := backlog >= s.cfg.BacklogOps || growing
		clear := backlog <= s.cfg.BacklogOps/10
		blKey := []byte(pfxGW + string(KindGatewayBacklog) + "\x00" + id)
		if bad || clear {
			s.gatewayState(blKey, bad, func() Alert {
				how := "at or above the limit"
				if growing {
					how = fmt.Sprintf("growing over the last %d checks", s.cfg.BacklogChecks)
				}
				return Alert{Kind: KindGatewayBacklog, Warehouse: g.Warehouse, Gateway: g.Gateway, Backlog: backlog,
					Message: fmt.Sprintf("gateway %s/%s has %d ops not yet applied, %s", g.Warehouse, g.Gateway, backlog, how)}
			})
		}
	}
	return nil
}

// GatewayClock raises a gateway-clock alert when a gateway's clock starts
// being refused (err, from the ingest) and re-arms it when the clock is
// accepted again (nil).
func (s *Service) GatewayClock(wh, gw string, err error) {
	key := []byte(pfxGW + string(KindGatewayClock) + "\x00" + wh + "\x00" + gw)
	s.gatewayState(key, err != nil, func() Alert {
		return Alert{Kind: KindGatewayClock, Warehouse: wh, Gateway: gw,
			Message: fmt.Sprintf("gateway %s/%s is refused: %v", wh, gw, err)}
	})
}

// gatewayState raises the alert `build` makes when bad turns true, and
// clears it when bad turns false (the cause is gone).
func (s *Service) gatewayState(key []byte, bad bool, build func() Alert) {
	var standing bool
	if err := s.rec.View(func(tx store.Tx) error {
		var err error
		_, standing, err = tx.Get(key)
		return err
	}); err != nil {
		s.log.Error("read gateway alert state", "err", err)
		return
	}
	switch {
	case bad && !standing:
		_, _, _ = s.raiseIf(build(), func(tx store.Tx) (bool, error) {
			_, standing, err := tx.Get(key)
			return err == nil && !standing, err
		}, func(tx store.Tx, id string) error { return tx.Set(key, []byte(id)) })
	case !bad && standing:
		s.change(func(tx store.Tx) (Alert, bool, error) {
			id, standing, err := tx.Get(key)
			if err != nil || !standing {
				return Alert{}, false, err
			}
			if err := tx.Delete(key); err != nil {
				return Alert{}, false, err
			}
			if len(id) == 0 { // stored by an older server: the alert is not named
				return Alert{}, false, nil
			}
			return s.closeIn(tx, string(id), StatusCleared, "", "")
		}, "clear gateway alert")
	}
}

// Raise stores a new alert (built by the caller) and publishes it.
func (s *Service) Raise(a Alert) (Alert, error) {
	a, _, err := s.raiseIf(a, nil, nil)
	return a, err
}

// raiseIf stores a when cond (nil: always), run in the same transaction,
// says so, then mark (nil: nothing) writes the state that names the
// cause's standing alert, and then publishes it. It reports whether a was
// raised: false when cond found it raised already (by this or another
// replica).
func (s *Service) raiseIf(a Alert, cond func(tx store.Tx) (bool, error), mark func(tx store.Tx, id string) error) (Alert, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	a.Status, a.CreatedMS = StatusOpen, now.UnixMilli()
	if a.Owner == "" && a.SKU != "" && s.cfg.Owner != nil {
		o, err := s.cfg.Owner(a.Warehouse, a.SKU)
		if err != nil { // raised all the same: only the owner's token misses it
			s.log.Warn("alert raised without an owner: its item was not read", "kind", a.Kind, "warehouse", a.Warehouse, "sku", a.SKU, "err", err)
		}
		a.Owner = o
	}
	var raised bool
	err := s.rec.Update(func(tx store.Tx) error {
		raised, a.ID = false, "" // f may run again
		if cond != nil {
			ok, err := cond(tx)
			if err != nil || !ok {
				return err
			}
		}
		id, err := nextID(tx, now)
		if err != nil {
			return err
		}
		a.ID = id
		if mark != nil {
			if err := mark(tx, id); err != nil {
				return err
			}
		}
		if err := putCBOR(tx, []byte(pfxAlert+a.ID), a); err != nil {
			return err
		}
		if err := tx.Set([]byte(pfxOpen+a.ID), nil); err != nil {
			return err
		}
		if s.cfg.Within != nil {
			if err := s.cfg.Within(tx, a); err != nil {
				return err
			}
		}
		raised = true
		return nil
	})
	if err != nil {
		s.log.Error("alert not stored", "kind", a.Kind, "warehouse", a.Warehouse, "err", err)
		return Alert{}, false, err
	}
	if !raised {
		return Alert{}, false, nil
	}
	s.raised.WithLabelValues(string(a.Kind)).Inc()
	s.log.Info("alert", "id", a.ID, "kind", a.Kind, "warehouse", a.Warehouse, "message", a.Message)
	if s.cfg.Publish != nil {
		s.cfg.Publish(a)
	}
	return a, true, nil
}

// change runs f in a transaction and publishes the alert it reports
// changed, after the commit; it logs a failure with what and attrs.
func (s *Service) change(f func(tx store.Tx) (Alert, bool, error), what string, attrs ...any) {
	var a Alert
	var changed bool
	err := s.rec.Update(func(tx store.Tx) error {
		var err error
		a, changed, err = f(tx)
		return err
	})
	if err != nil {
		s.log.Error(what, append(attrs, "err", err)...)
		return
	}
	if changed {
		s.log.Info("alert "+string(a.Status), "id", a.ID, "kind", a.Kind, "warehouse", a.Warehouse)
		if s.cfg.Publish != nil {
			s.cfg.Publish(a)
		}
	}
}

// closeIn closes alert id in tx — cleared (its cause is gone) or resolved
// (by a person, with a note) — when it still stands, and reports whether
// it did. Config.Within runs with the closed alert.
func (s *Service) closeIn(tx store.Tx, id string, to Status, by, note string) (Alert, bool, error) {
	var a Alert
	found, err := getCBOR(tx, []byte(pfxAlert+id), &a)
	if err != nil || !found || !a.Status.Standing() {
		return a, false, err
	}
	a.Status, a.ClosedMS = to, s.cfg.Now().UnixMilli()
	if to == StatusResolved {
		a.ResolvedBy, a.ResolveNote = by, note
	}
	if err := putCBOR(tx, []byte(pfxAlert+id), a); err != nil {
		return a, false, err
	}
	if err := tx.Delete([]byte(pfxOpen + id)); err != nil {
		return a, false, err
	}
	if s.cfg.Within != nil {
		if err := s.cfg.Within(tx, a); err != nil {
			return a, false, err
		}
	}
	return a, true, nil
}

// nextID returns a time-ordered id unique in the database: the creation
// time in nanoseconds, or one more than the last id handed out when that
// is not smaller (a burst, or a replica whose clock lags). The last id is
// read and written in tx, so two replicas raising at once conflict and one
// retries with the other's id in view.
func nextID(tx store.KV, now time.Time) (string, error) {
	v, found, err := tx.Get([]byte(keyLastID))
	if err != nil {
		return "", err
	}
	var last uint64
	switch {
	case found && len(v) == 8:
		last = binary.BigEndian.Uint64(v)
	case !found:
		// Before the counter: continue after the newest stored alert.
		if err := tx.Scan([]byte(pfxAlert), store.ScanOptions{Reverse: true, KeysOnly: true}, func(k, _ []byte) error {
			var n uint64
			if _, err := fmt.Sscanf(string(k[len(pfxAlert):]), "%x", &n); err == nil {
				last = n
			}
			return store.ErrStopScan
		}); err != nil {
			return "", err
		}
	}
	n := max(uint64(now.UnixNano()), last+1)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	if err := tx.Set([]byte(keyLastID), b[:]); err != nil {
		return "", err
	}
	return fmt.Sprintf("%016x", n), nil
}

// Query filters List; empty fields match everything.
type Query struct {
	Warehouse string
	Kind      Kind
	Status    Status
	// Standing matches open and acknowledged alerts only.
	Standing bool
	SKU      string
	// Owner, when set, matches the alerts of that owner only.
	Owner  string
	Limit  int // default 100
	Offset int
}

func (q Query) match(a *Alert) bool {
	return (q.Warehouse == "" || a.Warehouse == q.Warehouse) && (q.Kind == "" || a.Kind == q.Kind) &&
		(q.Status == "" || a.Status == q.Status) && (!q.Standing || a.Status.Standing()) && (q.SKU == "" || a.SKU == q.SKU) &&
		(q.Owner == "" || a.Owner == q.Owner)
}

// List returns alerts matching q, newest first, and whether more follow.
func (s *Service) List(_ context.Context, q Query) ([]Alert, bool, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	var out []Alert
	var more bool
	err := s.rec.View(func(tx store.Tx) error {
		out, more = nil, false
		skip := q.Offset
		pfx := pfxAlert
		if q.Status == StatusOpen {
			pfx = pfxOpen
		}
		return tx.Scan([]byte(pfx), store.ScanOptions{Reverse: true, KeysOnly: pfx == pfxOpen}, func(k, v []byte) error {
			var a Alert
			if pfx == pfxOpen {
				found, err := getCBOR(tx, []byte(pfxAlert+strings.TrimPrefix(string(k), pfxOpen)), &a)
				if err != nil || !found {
					return err
				}
			} else if err := protocol.Unmarshal(v, &a); err != nil {
				return err
			}
			if !q.match(&a) {
				return nil
			}
			if skip > 0 {
				skip--
				return nil
			}
			if len(out) == q.Limit {
				more = true
				return store.ErrStopScan
			}
			out = append(out, a)
			return nil
		})
	})
	return out, more, err
}

// Get returns one alert.
func (s *Service) Get(_ context.Context, id string) (Alert, error) {
	var a Alert
	var found bool
	err := s.rec.View(func(tx store.Tx) error {
		var err error
		found, err = getCBOR(tx, []byte(pfxAlert+id), &a)
		return err
	})
	if err == nil && !found {
		err = fmt.Errorf("alert %s: %w", id, ErrNotFound)
	}
	return a, err
}

// Ack records that a person (by) saw the alert; it stands until its cause
// is gone or someone resolves it. Of two replicas acknowledging one alert
// at once, one succeeds and publishes; the other gets ErrAcknowledged.
func (s *Service) Ack(_ context.Context, id, by, note string) (Alert, error) {
	return s.byPerson(id, by, func(tx store.Tx, a Alert) (Alert, error) {
		switch a.Status {
		case StatusAcknowledged:
			return a, fmt.Errorf("alert %s: %w by %s", id, ErrAcknowledged, a.AckBy)
		case StatusCleared, StatusResolved:
			return a, fmt.Errorf("alert %s: %w (%s)", id, ErrClosed, a.Status)
		}
		a.Status, a.AckBy, a.AckNote, a.AckMS = StatusAcknowledged, by, note, s.cfg.Now().UnixMilli()
		if err := putCBOR(tx, []byte(pfxAlert+id), a); err != nil {
			return a, err
		}
		if err := tx.Delete([]byte(pfxOpen + id)); err != nil {
			return a, err
		}
		if s.cfg.Within != nil {
			return a, s.cfg.Within(tx, a)
		}
		return a, nil
	})
}

// Resolve closes a standing (open or acknowledged) alert on behalf of a
// person (by), with a note. Its cause may still be there: the alert is not
// raised again until the cause has gone and come back.
func (s *Service) Resolve(_ context.Context, id, by, note string) (Alert, error) {
	return s.byPerson(id, by, func(tx store.Tx, a Alert) (Alert, error) {
		got, closed, err := s.closeIn(tx, id, StatusResolved, by, note)
		if err == nil && !closed {
			err = fmt.Errorf("alert %s: %w (%s)", id, ErrClosed, a.Status)
		}
		return got, err
	})
}

// byPerson runs f on alert id in a transaction, for a person's action, and
// publishes the result after the commit.
func (s *Service) byPerson(id, by string, f func(tx store.Tx, a Alert) (Alert, error)) (Alert, error) {
	if strings.TrimSpace(by) == "" {
		return Alert{}, fmt.Errorf("%w: by: name the person who acts", ErrInvalid)
	}
	var a Alert
	err := s.rec.Update(func(tx store.Tx) error {
		a = Alert{}
		found, err := getCBOR(tx, []byte(pfxAlert+id), &a)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("alert %s: %w", id, ErrNotFound)
		}
		a, err = f(tx, a)
		return err
	})
	if err != nil {
		return a, err
	}
	if s.cfg.Publish != nil {
		s.cfg.Publish(a)
	}
	return a, nil
}

// Record helpers shared by the packages beside the ledger (store/tx.go).
var (
	getCBOR = store.GetCBOR
	putCBOR = store.PutCBOR
)
