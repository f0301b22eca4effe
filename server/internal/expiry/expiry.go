// Package expiry turns lots that reach their expiry date into expired
// stock by themselves, and lists and alerts the lots that will expire soon
// (docs/DESIGN.md, "Inventory behaviour the server owns").
//
// A lot's expiry is the earliest expiry any receipt of it carried (as pick
// routing reads it). Each Sweep, at a day given by an injected clock:
//
//   - every available or held key of a lot whose expiry is before today
//     moves to status expired by one server-origin status op (reason
//     EXPIRED): it replicates to the gateways like any op and shows in the
//     key's history;
//   - every lot with available or held units that expires within the
//     warehouse's near-expiry horizon (settings, default 30 days) raises
//     one near-expiry alert, once per lot, before it expires;
//   - a near-expiry alert whose lot is no longer near its expiry — it
//     expired, or nothing of it is left available or held — is cleared
//     (alerts go open → acknowledged → cleared).
//
// The date is judged by Config.Today, which a test may shift (the
// server's --expiry-clock-offset); the ops the sweep issues are stamped
// by Config.HLC, the server's real clock, so a shifted date never stamps
// an op in the future.
package expiry

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/alerts"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Store is what the sweep reads and issues through.
type Store interface {
	store.Records
	Stock(ctx context.Context, q store.StockQuery) ([]store.StockRow, error)
	IssueOp(ctx context.Context, wh string, op protocol.Op) (protocol.Op, store.Result, error)
}

// Alerts raises and clears the near-expiry alerts, one per cause (a lot
// and its expiry); *alerts.Service implements it.
type Alerts interface {
	RaiseFor(cause string, a alerts.Alert) (alerts.Alert, bool, error)
	ClearFor(cause string) (alerts.Alert, bool, error)
	Causes(prefix string) ([]string, error)
}

// Config wires a Sweeper.
type Config struct {
	Store Store
	// Today is the clock the dates are judged by (time.Now when nil).
	Today func() time.Time
	// HLC stamps the status ops the sweep issues (the real clock when nil).
	HLC func() protocol.HLC
	// NearDays returns a warehouse's near-expiry horizon in days (nil: 30).
	NearDays func(wh string) int
	// Alerts raises and clears the near-expiry alerts (nil: none).
	Alerts Alerts
	// Issued is told of each status op the sweep applied (to publish it).
	Issued func(wh string, res store.Result)
	// NewDay is told when a sweep finds the date changed since the last
	// one (not at the first): what depends on the remaining shelf life of
	// lots, a channel's availability, is recomputed.
	NewDay func()
	// Registerer, when set, registers the sweep's metrics.
	Registerer prometheus.Registerer
}

// Lot is a lot with available or held units and its expiry.
type Lot struct {
	Warehouse string `json:"warehouse"`
	SKU       string `json:"sku"`
	Lot       string `json:"lot"`
	Owner     string `json:"owner"`
	Expiry    string `json:"expiry"` // YYYY-MM-DD
	OnHand    int64  `json:"on_hand"`
	DaysLeft  int    `json:"days_left"`
}

// Sweeper expires lots and finds those near expiry.
type Sweeper struct {
	cfg     Config
	mu      sync.Mutex
	lastDay time.Time // of the last sweep
	// expired counts the keys the sweep expired; sweeps counts sweeps by
	// result (ok, error).
	expired prometheus.Counter
	sweeps  *prometheus.CounterVec
}

// New returns a Sweeper.
func New(cfg Config) *Sweeper {
	if cfg.Today == nil {
		cfg.Today = time.Now
	}
	if cfg.HLC == nil {
		cfg.HLC = func() protocol.HLC { return protocol.MakeHLC(time.Now().UnixMilli(), 0) }
	}
	s := &Sweeper{cfg: cfg,
		expired: prometheus.NewCounter(prometheus.CounterOpts{Name: "shelfsync_expiry_expired_keys_total",
			Help: "Stock keys (a lot at a location, available or held) the expiry sweep moved to status expired."}),
		sweeps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_expiry_sweeps_total",
			Help: "Expiry sweeps, by result (ok, error)."}, []string{"result"})}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(s.expired, s.sweeps)
	}
	return s
}

type lotID struct{ wh, sku, lot, owner string }

// lots reads the stock of wh ("" every warehouse) and the expiry of each
// lot: the rows to judge (available or held, on hand) per lot.
func (s *Sweeper) lots(ctx context.Context, wh string) (map[lotID][]store.StockRow, map[lotID]string, error) {
	rows, err := s.cfg.Store.Stock(ctx, store.StockQuery{Warehouse: wh})
	if err != nil {
		return nil, nil, err
	}
	held := map[lotID][]store.StockRow{}
	exp := map[lotID]string{}
	err = s.cfg.Store.View(func(tx store.Tx) error {
		for _, r := range rows {
			if r.Lot == "" {
				continue
			}
			id := lotID{r.Warehouse, r.SKU, r.Lot, r.Owner}
			o, ok, err := tx.Origin(r.Key())
			if err != nil {
				return err
			}
			if ok && o.Expiry != "" && (exp[id] == "" || o.Expiry < exp[id]) {
				exp[id] = o.Expiry
			}
			if r.OnHand > 0 && (r.Status == protocol.StatusAvailable || r.Status == protocol.StatusHold) {
				held[id] = append(held[id], r)
			}
		}
		return nil
	})
	return held, exp, err
}

// NearExpiry lists the lots of wh ("" every warehouse) with available or
// held units that expire within the horizon, soonest first.
func (s *Sweeper) NearExpiry(ctx context.Context, wh string) ([]Lot, error) {
	held, exp, err := s.lots(ctx, wh)
	if err != nil {
		return nil, err
	}
	today := day(s.cfg.Today())
	out := []Lot{}
	for id, rows := range held {
		e := exp[id]
		if e == "" {
			continue
		}
		left := daysBetween(today, e)
		if left < 0 || left > s.nearDays(id.wh) {
			continue
		}
		l := Lot{Warehouse: id.wh, SKU: id.sku, Lot: id.lot, Owner: id.owner, Expiry: e, DaysLeft: left}
		for _, r := range rows {
			l.OnHand += r.OnHand
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b Lot) int {
		return strings.Compare(a.Expiry+"\x00"+a.Warehouse+"\x00"+a.SKU+"\x00"+a.Lot+"\x00"+a.Owner,
			b.Expiry+"\x00"+b.Warehouse+"\x00"+b.SKU+"\x00"+b.Lot+"\x00"+b.Owner)
	})
	return out, nil
}

func (s *Sweeper) nearDays(wh string) int {
	if s.cfg.NearDays != nil {
		return s.cfg.NearDays(wh)
	}
	return protocol.DefaultNearExpiryDays
}

// Result is what a sweep did.
type Result struct {
	Expired []protocol.Op  // the status ops issued
	Alerted []Lot          // the near-expiry alerts raised
	Cleared []alerts.Alert // the near-expiry alerts cleared
}

// causePrefix starts the alert cause of every lot near its expiry.
const causePrefix = "near-expiry\x00"

// cause names the near-expiry alert's cause: the lot and its expiry.
func cause(l Lot) string {
	return causePrefix + strings.Join([]string{l.Warehouse, l.SKU, l.Lot, l.Owner, l.Expiry}, "\x00")
}

// legacyAlertedKey marked a lot whose near-expiry alert an older server
// raised (it named no alert, so it cannot be cleared): such a lot is not
// alerted again.
func legacyAlertedKey(l Lot) []byte {
	return []byte("ex/n/" + strings.Join([]string{l.Warehouse, l.SKU, l.Lot, l.Owner, l.Expiry}, "\x00"))
}

// Sweep raises the near-expiry alerts not raised yet, expires every
// available or held key of a lot past its expiry, and then clears the
// near-expiry alerts whose lot is no longer near its expiry.
func (s *Sweeper) Sweep(ctx context.Context) (Result, error) {
	var res Result
	s.newDay()
	near, err := s.NearExpiry(ctx, "")
	if err != nil {
		return res, err
	}
	standing := map[string]bool{}
	for _, l := range near {
		standing[cause(l)] = true
		if s.cfg.Alerts == nil {
			continue
		}
		var legacy bool
		if err := s.cfg.Store.View(func(tx store.Tx) error {
			var err error
			_, legacy, err = tx.Get(legacyAlertedKey(l))
			return err
		}); err != nil {
			return res, err
		}
		if legacy {
			continue
		}
		_, raised, err := s.cfg.Alerts.RaiseFor(cause(l), alerts.Alert{Kind: alerts.KindNearExpiry, Warehouse: l.Warehouse, SKU: l.SKU, Owner: l.Owner,
			Message: fmt.Sprintf("lot %s of %s (%d on hand) expires on %s, in %d day(s)", l.Lot, l.SKU, l.OnHand, l.Expiry, l.DaysLeft)})
		if err != nil {
			return res, fmt.Errorf("near-expiry alert of %s lot %s: %w", l.SKU, l.Lot, err)
		}
		if raised {
			res.Alerted = append(res.Alerted, l)
		}
	}
	held, exp, err := s.lots(ctx, "")
	if err != nil {
		return res, err
	}
	today := day(s.cfg.Today())
	for id, rows := range held {
		if e := exp[id]; e == "" || daysBetween(today, e) >= 0 {
			continue
		}
		for _, r := range rows {
			op := protocol.Op{HLC: s.cfg.HLC(), Kind: protocol.OpStatus, Location: r.Location, SKU: r.SKU, Lot: r.Lot,
				Owner: r.Owner, Status: r.Status, ToStatus: protocol.StatusExpired, Qty: r.OnHand, Reason: "EXPIRED", Operator: "expiry"}
			issued, ir, err := s.cfg.Store.IssueOp(ctx, r.Warehouse, op)
			if err != nil {
				return res, fmt.Errorf("expire %s lot %s at %s/%s: %w", r.SKU, r.Lot, r.Warehouse, r.Location, err)
			}
			if s.cfg.Issued != nil {
				s.cfg.Issued(r.Warehouse, ir)
			}
			res.Expired = append(res.Expired, issued)
			s.expired.Inc()
		}
	}
	if s.cfg.Alerts == nil {
		return res, nil
	}
	causes, err := s.cfg.Alerts.Causes(causePrefix)
	if err != nil {
		return res, err
	}
	for _, c := range causes {
		if standing[c] {
			continue
		}
		a, cleared, err := s.cfg.Alerts.ClearFor(c)
		if err != nil {
			return res, fmt.Errorf("clear near-expiry alert: %w", err)
		}
		if cleared {
			res.Cleared = append(res.Cleared, a)
		}
	}
	return res, nil
}

// newDay tells Config.NewDay when the date changed since the last sweep.
func (s *Sweeper) newDay() {
	today := day(s.cfg.Today())
	s.mu.Lock()
	changed := !s.lastDay.IsZero() && !today.Equal(s.lastDay)
	s.lastDay = today
	s.mu.Unlock()
	if changed && s.cfg.NewDay != nil {
		s.cfg.NewDay()
	}
}

// Run sweeps at start and then every interval until ctx ends; leading
// (nil: always) says whether this replica does the sweep now.
func (s *Sweeper) Run(ctx context.Context, every time.Duration, leading func() bool, onErr func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if leading == nil || leading() {
			if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				s.sweeps.WithLabelValues("error").Inc()
				if onErr != nil {
					onErr(err)
				}
			} else if err == nil {
				s.sweeps.WithLabelValues("ok").Inc()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func day(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// daysBetween is the number of days from today to the date e (negative
// when e is past); a malformed date counts as far away.
func daysBetween(today time.Time, e string) int {
	d, err := time.Parse(time.DateOnly, e)
	if err != nil {
		return 1 << 30
	}
	return int(d.Sub(today).Hours() / 24)
}
