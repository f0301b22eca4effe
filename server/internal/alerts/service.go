package alerts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Keys (fields joined with NUL):
//
//	al/a/{id}            Alert (CBOR); ids sort by creation time
//	al/open/{id}         present while the alert is open
//	al/r/{wh}\0{sku}     reorder state: 1 armed, 0 fired (absent: armed)
//	al/c/{conflict}      1 while the conflict's alert stands (re-armed when the conflict stops holding)
//	al/g/{kind}\0{wh}\0{gw}  1 while a gateway alert stands
const (
	pfxAlert   = "al/a/"
	pfxOpen    = "al/open/"
	pfxReorder = "al/r/"
	pfxCfl     = "al/c/"
	pfxGW      = "al/g/"
)

// Config configures the Service; every hook may be nil.
type Config struct {
	DB *badger.DB
	// Thresholds gives reorder settings (nil: no reorder alerts).
	Thresholds Thresholds
	// OnOrder returns the open purchase-order quantity of a sku (nil: 0).
	OnOrder func(wh, sku string) int64
	// Gateways lists gateway records for the offline and backlog checks.
	Gateways func(ctx context.Context) ([]store.Gateway, error)
	// Publish receives every new and every acknowledged alert.
	Publish func(Alert)
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

// Service raises, stores and acknowledges alerts; safe for concurrent use.
type Service struct {
	cfg    Config
	db     *badger.DB
	log    *slog.Logger
	raised *prometheus.CounterVec

	mu      sync.Mutex
	lastN   uint64
	backlog map[string][]uint64 // wh\0gw → recent backlog samples
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
	s := &Service{cfg: cfg, db: cfg.DB, log: cfg.Logger, backlog: map[string][]uint64{}}
	s.raised = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_alerts_total", Help: "Alerts raised, by kind."}, []string{"kind"})
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(s.raised)
	}
	return s
}

// Run checks gateways periodically until ctx ends.
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
		}
	}
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
	s.mu.Lock()
	defer s.mu.Unlock()
	armed := true
	err := s.db.View(func(txn *badger.Txn) error {
		v, found, err := getBytes(txn, key)
		if found && len(v) == 1 {
			armed = v[0] == 1
		}
		return err
	})
	if err != nil {
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
		s.raiseLocked(a, func(txn *badger.Txn) error { return txn.Set(key, []byte{0}) })
	case onHand > eff.ReorderPoint && !armed:
		if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(key, []byte{1}) }); err != nil {
			s.log.Error("re-arm reorder alert", "warehouse", wh, "sku", sku, "err", err)
		}
	}
}

// ObserveConflict raises an alert when a conflict opens (again).
func (s *Service) ObserveConflict(c conflicts.Conflict) {
	key := []byte(pfxCfl + c.ID)
	s.mu.Lock()
	defer s.mu.Unlock()
	var standing bool
	if err := s.db.View(func(txn *badger.Txn) error {
		var err error
		standing, err = has(txn, key)
		return err
	}); err != nil {
		s.log.Error("read conflict alert state", "conflict", c.ID, "err", err)
		return
	}
	opened := c.Status == conflicts.StatusOpen && c.Holds
	switch {
	case opened && !standing:
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
		s.raiseLocked(a, func(txn *badger.Txn) error { return txn.Set(key, nil) })
	case !c.Holds && standing:
		if err := s.db.Update(func(txn *badger.Txn) error { return txn.Delete(key) }); err != nil {
			s.log.Error("re-arm conflict alert", "conflict", c.ID, "err", err)
		}
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
	s.mu.Lock()
	defer s.mu.Unlock()
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
		samples := append(s.backlog[id], backlog)
		if len(samples) > s.cfg.BacklogChecks+1 {
			samples = samples[len(samples)-s.cfg.BacklogChecks-1:]
		}
		s.backlog[id] = samples
		growing := len(samples) == s.cfg.BacklogChecks+1 && backlog > s.cfg.BacklogOps/10
		for i := 1; growing && i < len(samples); i++ {
			growing = samples[i] > samples[i-1]
		}
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

// gatewayState raises the alert `build` makes when bad turns true and
// re-arms when it turns false; s.mu is held.
func (s *Service) gatewayState(key []byte, bad bool, build func() Alert) {
	var standing bool
	if err := s.db.View(func(txn *badger.Txn) error {
		var err error
		standing, err = has(txn, key)
		return err
	}); err != nil {
		s.log.Error("read gateway alert state", "err", err)
		return
	}
	switch {
	case bad && !standing:
		s.raiseLocked(build(), func(txn *badger.Txn) error { return txn.Set(key, nil) })
	case !bad && standing:
		if err := s.db.Update(func(txn *badger.Txn) error { return txn.Delete(key) }); err != nil {
			s.log.Error("re-arm gateway alert", "err", err)
		}
	}
}

// Raise stores a new alert (built by the caller) and publishes it.
func (s *Service) Raise(a Alert) (Alert, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.raiseLocked(a, nil)
}

// raiseLocked stores a with state written by `also` in the same
// transaction, then publishes it; s.mu is held.
func (s *Service) raiseLocked(a Alert, also func(txn *badger.Txn) error) (Alert, error) {
	now := s.cfg.Now()
	a.ID = s.nextID(now)
	a.Status, a.CreatedMS = StatusOpen, now.UnixMilli()
	err := s.db.Update(func(txn *badger.Txn) error {
		if also != nil {
			if err := also(txn); err != nil {
				return err
			}
		}
		if err := putCBOR(txn, []byte(pfxAlert+a.ID), a); err != nil {
			return err
		}
		return txn.Set([]byte(pfxOpen+a.ID), nil)
	})
	if err != nil {
		s.log.Error("alert not stored", "kind", a.Kind, "warehouse", a.Warehouse, "err", err)
		return Alert{}, err
	}
	s.raised.WithLabelValues(string(a.Kind)).Inc()
	s.log.Info("alert", "id", a.ID, "kind", a.Kind, "warehouse", a.Warehouse, "message", a.Message)
	if s.cfg.Publish != nil {
		s.cfg.Publish(a)
	}
	return a, nil
}

// nextID returns a time-ordered id; s.mu is held.
func (s *Service) nextID(now time.Time) string {
	n := uint64(now.UnixNano())
	if n <= s.lastN {
		n = s.lastN + 1
	}
	s.lastN = n
	return fmt.Sprintf("%016x", n)
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
	more := false
	skip := q.Offset
	err := s.db.View(func(txn *badger.Txn) error {
		pfx := pfxAlert
		if q.Status == StatusOpen {
			pfx = pfxOpen
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pfx), Reverse: true, PrefetchValues: pfx == pfxAlert})
		defer it.Close()
		for it.Seek([]byte(pfx + "\xff")); it.Valid(); it.Next() {
			var a Alert
			if pfx == pfxOpen {
				if _, err := getCBOR(txn, []byte(pfxAlert+strings.TrimPrefix(string(it.Item().Key()), pfxOpen)), &a); err != nil {
					return err
				}
			} else if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &a) }); err != nil {
				return err
			}
			if !q.match(&a) {
				continue
			}
			if skip > 0 {
				skip--
				continue
			}
			if len(out) == q.Limit {
				more = true
				return nil
			}
			out = append(out, a)
		}
		return nil
	})
	return out, more, err
}

// Get returns one alert.
func (s *Service) Get(_ context.Context, id string) (Alert, error) {
	var a Alert
	var found bool
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		found, err = getCBOR(txn, []byte(pfxAlert+id), &a)
		return err
	})
	if err == nil && !found {
		err = fmt.Errorf("alert %s: %w", id, ErrNotFound)
	}
	return a, err
}

// Ack records that a person (by) saw the alert.
func (s *Service) Ack(_ context.Context, id, by, note string) (Alert, error) {
	if strings.TrimSpace(by) == "" {
		return Alert{}, fmt.Errorf("%w: by: name the person who acknowledges", ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var a Alert
	err := s.db.Update(func(txn *badger.Txn) error {
		found, err := getCBOR(txn, []byte(pfxAlert+id), &a)
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
		if err := putCBOR(txn, []byte(pfxAlert+id), a); err != nil {
			return err
		}
		return txn.Delete([]byte(pfxOpen + id))
	})
	if err != nil {
		return a, err
	}
	if s.cfg.Publish != nil {
		s.cfg.Publish(a)
	}
	return a, nil
}

func getBytes(txn *badger.Txn, key []byte) ([]byte, bool, error) {
	it, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v, err := it.ValueCopy(nil)
	return v, true, err
}

func has(txn *badger.Txn, key []byte) (bool, error) {
	_, found, err := getBytes(txn, key)
	return found, err
}

func getCBOR(txn *badger.Txn, key []byte, v any) (bool, error) {
	b, found, err := getBytes(txn, key)
	if err != nil || !found {
		return found, err
	}
	return true, protocol.Unmarshal(b, v)
}

func putCBOR(txn *badger.Txn, key []byte, v any) error {
	b, err := protocol.Marshal(v)
	if err != nil {
		return err
	}
	return txn.Set(key, b)
}
