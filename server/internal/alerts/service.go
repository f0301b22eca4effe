package alerts

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"strings"
	"sync"
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
//	al/r/{wh}\0{sku}     reorder state: 1 armed, 0 fired (absent: armed)
//	al/c/{conflict}      1 while the conflict's alert stands (re-armed when the conflict stops holding)
//	al/g/{kind}\0{wh}\0{gw}  1 while a gateway alert stands
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
	// Gateways lists gateway records for the offline and backlog checks.
	Gateways func(ctx context.Context) ([]store.Gateway, error)
	// Publish receives every new and every acknowledged alert, on the
	// replica whose transaction raised or acknowledged it, once, after the
	// commit: for what may be lost when the replica dies right after it
	// (a live MQTT message, the dashboard).
	Publish func(Alert)
	// Within, when set, is called in the transaction that stores a new
	// alert (with its id) or an acknowledgement, with the alert as stored;
	// an error aborts the transaction (the alert is not raised, or not
	// acknowledged). What it writes through tx commits with the alert or
	// not at all: the app queues the alert's webhook deliveries here
	// (webhooks.Manager.EnqueueTx). It may run more than once for one
	// alert (Update retries), so it must write only through tx.
	Within func(tx store.Tx, a Alert) error
	// OpenConflicts lists the open conflicts (nil: no sweep). Run
	// re-observes them every CheckEvery (SweepConflicts), so that a
	// conflict whose ObserveConflict never came — the replica that applied
	// the batch died after the commit — gets its alert, once.
	OpenConflicts func(ctx context.Context) ([]conflicts.Conflict, error)
	// Sweep reports whether this replica sweeps the open conflicts now
	// (nil: always, as a single server does); the app sweeps on the
	// leader only. Several replicas sweeping still raise each alert once.
	Sweep func() bool
	// OfflineAfter is how long a gateway may be offline before an alert
	// (default 5m).
	OfflineAfter time.Duration
	// BacklogOps is the backlog (ops not yet applied) that always alerts
	// (default 1000); a backlog above BacklogOps/10 that grew at each of
	// the last BacklogChecks checks (default 3) alerts too.
	BacklogOps    uint64
	BacklogChecks int
	// CheckEvery is the gateway check period (default 15s).
	CheckEvery time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Service raises, stores and acknowledges alerts; safe for concurrent use,
// and by several replicas over one database: the state that makes an alert
// fire once (armed, standing) is read and written in the transaction that
// stores the alert, and ids come from a counter in that transaction.
type Service struct {
	cfg    Config
	rec    store.Records
	log    *slog.Logger
	raised *prometheus.CounterVec

	// mu serialises this replica's raises (fewer transaction retries);
	// correctness across replicas rests on the transactions alone.
	mu      sync.Mutex
	backlog map[string][]uint64 // wh\0gw → recent backlog samples (this replica's)
}

// New builds the service.
func New(cfg Config) *Service {
	if cfg.OfflineAfter <= 0 {
		cfg.OfflineAfter = 5 * time.Minute
	}
	if cfg.BacklogOps == 0 {
		cfg.BacklogOps = 1000
	}
	if cfg.BacklogChecks <= 0 {
		cfg.BacklogChecks = 3
	}
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = 15 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, rec: cfg.Records, log: cfg.Logger, backlog: map[string][]uint64{}}
	s.raised = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_alerts_total", Help: "Alerts raised, by kind."}, []string{"kind"})
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(s.raised)
	}
	return s
}

// Run checks gateways and sweeps the open conflicts (Config.OpenConflicts,
// Config.Sweep) every CheckEvery until ctx ends.
func (s *Service) Run(ctx context.Context) {
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
			if s.cfg.OpenConflicts != nil && (s.cfg.Sweep == nil || s.cfg.Sweep()) {
				if n, err := s.SweepConflicts(ctx); err != nil {
					s.log.Warn("conflict alert sweep failed", "err", err)
				} else if n > 0 {
					s.log.Warn("conflict alert sweep raised alerts the conflicts' observation missed", "alerts", n)
				}
			}
		}
	}
}

// SweepConflicts observes every open conflict (Config.OpenConflicts) whose
// alert is not standing, as ObserveConflict would have when the conflict
// opened, and returns how many alerts it raised. An alert stands from the
// transaction that raises it until the conflict stops holding, so a
// conflict observed already — by the apply, another replica or an earlier
// sweep — is not alerted again, also when several replicas sweep at once.
func (s *Service) SweepConflicts(ctx context.Context) (int, error) {
	if s.cfg.OpenConflicts == nil {
		return 0, nil
	}
	// The standing flags first, in one read; the raise re-checks its own.
	standing := map[string]bool{}
	if err := s.rec.View(func(tx store.Tx) error {
		clear(standing)
		return tx.Scan([]byte(pfxCfl), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
			standing[string(k[len(pfxCfl):])] = true
			return nil
		})
	}); err != nil {
		return 0, fmt.Errorf("read conflict alert state: %w", err)
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
		if c.Status != conflicts.StatusOpen || !c.Holds || standing[c.ID] {
			continue
		}
		if _, raised, err := s.raiseIf(conflictAlert(c), setIfAbsent([]byte(pfxCfl+c.ID))); err != nil {
			return n, err
		} else if raised {
			n++
		}
	}
	return n, nil
}

// ObserveStock evaluates the reorder point of sku in wh for its on-hand.
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
	armedIn := func(tx store.KV) (bool, error) {
		v, found, err := tx.Get(key)
		return !found || len(v) != 1 || v[0] == 1, err
	}
	// A read first: most observations change nothing.
	var armed bool
	if err := s.rec.View(func(tx store.Tx) error {
		var err error
		armed, err = armedIn(tx)
		return err
	}); err != nil {
		s.log.Error("read reorder state", "warehouse", wh, "sku", sku, "err", err)
		return
	}
	switch {
	case onHand <= eff.ReorderPoint && armed:
		var onOrder int64
		if s.cfg.OnOrder != nil {
			onOrder = s.cfg.OnOrder(wh, sku)
		}
		a := Alert{Kind: KindReorder, Warehouse: wh, SKU: sku, OnHand: onHand, ReorderPoint: eff.ReorderPoint, ReorderQty: eff.ReorderQty,
			Max: eff.Max, OnOrder: onOrder, SuggestedQty: eff.Suggested(onHand, onOrder), Seasonal: seasonal}
		a.Message = fmt.Sprintf("%s in %s is at %d, at or below its reorder point %d: order %d", sku, wh, onHand, eff.ReorderPoint, a.SuggestedQty)
		if seasonal {
			a.Message += " (seasonal threshold)"
		}
		// Re-checked in the raising transaction: another replica may have
		// fired it meanwhile.
		_, _, _ = s.raiseIf(a, func(tx store.Tx) (bool, error) {
			if armed, err := armedIn(tx); err != nil || !armed {
				return false, err
			}
			return true, tx.Set(key, []byte{0})
		})
	case onHand > eff.ReorderPoint && !armed:
		if err := s.rec.Update(func(tx store.Tx) error { return tx.Set(key, []byte{1}) }); err != nil {
			s.log.Error("re-arm reorder alert", "warehouse", wh, "sku", sku, "err", err)
		}
	}
}

// ObserveConflict raises an alert when a conflict opens (again).
func (s *Service) ObserveConflict(c conflicts.Conflict) {
	key := []byte(pfxCfl + c.ID)
	var standing bool
	if err := s.rec.View(func(tx store.Tx) error {
		var err error
		_, standing, err = tx.Get(key)
		return err
	}); err != nil {
		s.log.Error("read conflict alert state", "conflict", c.ID, "err", err)
		return
	}
	opened := c.Status == conflicts.StatusOpen && c.Holds
	switch {
	case opened && !standing:
		_, _, _ = s.raiseIf(conflictAlert(c), setIfAbsent(key))
	case !c.Holds && standing:
		if err := s.rec.Update(func(tx store.Tx) error { return tx.Delete(key) }); err != nil {
			s.log.Error("re-arm conflict alert", "conflict", c.ID, "err", err)
		}
	}
}

// conflictAlert is the alert of an open conflict.
func conflictAlert(c conflicts.Conflict) Alert {
	a := Alert{Kind: KindConflict, Warehouse: c.Warehouse, SKU: c.SKU, Location: c.Location, Conflict: c.ID, ConflictKind: string(c.Kind)}
	switch c.Kind {
	case conflicts.KindReceiptDiscrepancy:
		a.Kind = KindReceiptDiscrepancy
	case conflicts.KindOversell:
		a.Kind = KindOversell
	}
	a.Message = string(c.Kind) + ": " + c.Detail
	if c.SuggestedAction != "" {
		a.Message += " — " + c.SuggestedAction
	}
	return a
}

// setIfAbsent is a raiseIf condition: raise when key is absent, and set it.
func setIfAbsent(key []byte) func(tx store.Tx) (bool, error) {
	return func(tx store.Tx) (bool, error) {
		if _, standing, err := tx.Get(key); err != nil || standing {
			return false, err
		}
		return true, tx.Set(key, nil)
	}
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

// gatewayState raises the alert `build` makes when bad turns true and
// re-arms when it turns false.
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
		_, _, _ = s.raiseIf(build(), setIfAbsent(key))
	case !bad && standing:
		if err := s.rec.Update(func(tx store.Tx) error { return tx.Delete(key) }); err != nil {
			s.log.Error("re-arm gateway alert", "err", err)
		}
	}
}

// Raise stores a new alert (built by the caller) and publishes it.
func (s *Service) Raise(a Alert) (Alert, error) {
	a, _, err := s.raiseIf(a, nil)
	return a, err
}

// raiseIf stores a when cond (nil: always), run in the same transaction,
// says so — cond also writes the state that keeps the alert from firing
// again — and then publishes it. It reports whether a was raised: false
// when cond found it raised already (by this or another replica).
func (s *Service) raiseIf(a Alert, cond func(tx store.Tx) (bool, error)) (Alert, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	a.Status, a.CreatedMS = StatusOpen, now.UnixMilli()
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
	SKU       string
	Limit     int // default 100
	Offset    int
}

func (q Query) match(a *Alert) bool {
	return (q.Warehouse == "" || a.Warehouse == q.Warehouse) && (q.Kind == "" || a.Kind == q.Kind) &&
		(q.Status == "" || a.Status == q.Status) && (q.SKU == "" || a.SKU == q.SKU)
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

// Ack records that a person (by) saw the alert. Of two replicas
// acknowledging one alert at once, one succeeds and publishes; the other
// gets ErrAcknowledged.
func (s *Service) Ack(_ context.Context, id, by, note string) (Alert, error) {
	if strings.TrimSpace(by) == "" {
		return Alert{}, fmt.Errorf("%w: by: name the person who acknowledges", ErrInvalid)
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
		if a.Status == StatusAcknowledged {
			return fmt.Errorf("alert %s: %w by %s", id, ErrAcknowledged, a.AckBy)
		}
		a.Status, a.AckBy, a.AckNote, a.AckMS = StatusAcknowledged, by, note, s.cfg.Now().UnixMilli()
		if err := putCBOR(tx, []byte(pfxAlert+id), a); err != nil {
			return err
		}
		if err := tx.Delete([]byte(pfxOpen + id)); err != nil {
			return err
		}
		if s.cfg.Within != nil {
			return s.cfg.Within(tx, a)
		}
		return nil
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
