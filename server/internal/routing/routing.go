// Package routing turns customer order lines into pick tasks at the
// locations that hold the stock, and sends each task to the gateway
// serving its location's zone (docs/DESIGN.md, "Inventory behaviour the
// server owns": pick routing).
//
// Stock is taken first-expired-first-out for items that track expiry
// (the lot whose receipt carried the earliest expiry date), otherwise
// first-in-first-out (the key whose stock came in first), from pick and
// storage locations only, never beyond what open tasks have not already
// claimed. A line's remainder — not picked and not on an open task, for
// instance after a short pick — is routed again on the next call;
// locations where a task of the line was picked short are avoided.
package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/masterdata"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Line is an order line as routing needs it.
type Line struct {
	Line   uint32
	SKU    string
	Lot    string // a lot the customer asked for; "" for any
	Qty    int64
	Picked int64 // picked so far (applied pick ops against the line)
	// Channel is the order's sales channel ("" when unknown).
	Channel string
}

// Orders is where routing reads order lines; the order model implements
// it (through a small adapter where it is wired).
type Orders interface {
	OrderLines(ctx context.Context, wh, order string) ([]Line, error)
}

// ErrNoOrder is wrapped when Orders does not know the order.
var ErrNoOrder = errors.New("routing: unknown order")

// Service routes orders and issues count tasks.
type Service struct {
	b      store.Records
	orders Orders
	log    *slog.Logger
	now    func() time.Time
	// channelDays returns a channel's own minimum shelf life (nil: none).
	channelDays func(channel string) int
}

// SetClock replaces the clock that decides which lots are expired or too
// close to expiry to route (tests, the server's --expiry-clock-offset).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// SetChannelShelfDays sets where routing reads a sales channel's own
// minimum remaining shelf life: an order of that channel is routed only
// to lots with at least the larger of it and the item's left.
func (s *Service) SetChannelShelfDays(days func(channel string) int) { s.channelDays = days }

// New returns a router over the store b (any store.Records: Badger,
// PostgreSQL), reading orders from orders.
func New(b store.Records, orders Orders, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{b: b, orders: orders, log: log, now: time.Now}
}

// Result is what routing an order did.
type Result struct {
	Order    string           `json:"order"`
	Tasks    []protocol.Task  `json:"tasks"`              // tasks created by this call
	Open     int64            `json:"open"`               // units on open tasks after the call
	Unrouted map[uint32]int64 `json:"unrouted,omitempty"` // per line: units no location can give (backorder)
}

// routeRecord is routing's memory of an order line (md/rt/…).
type routeRecord struct {
	Tasks []string `cbor:"1,keyasint"`           // every task issued for the line
	Avoid []string `cbor:"2,keyasint,omitempty"` // locations where a task of the line was picked short
}

const pRoute = "md/rt/"

func routeKey(wh, order string, line uint32) []byte {
	return []byte(fmt.Sprintf("%s%s\x00%s\x00%08x", pRoute, wh, order, line))
}

type cand struct {
	key    ledger.Key
	avail  int64
	expiry string // "" sorts last
	first  protocol.HLC
	rank   uint32
}

// RouteOrder creates pick tasks for the open remainder of every line of an
// order, and returns what it created.
func (s *Service) RouteOrder(ctx context.Context, wh, order string) (Result, error) {
	lines, err := s.orders.OrderLines(ctx, wh, order)
	if err != nil {
		return Result{}, err
	}
	res := Result{Order: order, Tasks: []protocol.Task{}}
	err = s.b.Update(func(tx store.Tx) error {
		res.Tasks, res.Open, res.Unrouted = res.Tasks[:0], 0, nil
		locs, err := masterdata.LocationMap(tx, wh)
		if err != nil {
			return err
		}
		tasks, err := tx.Tasks(wh)
		if err != nil {
			return err
		}
		claimed := map[ledger.Key]int64{} // units open pick tasks still claim, per key
		byID := map[string]protocol.Task{}
		for _, t := range tasks {
			byID[t.ID] = t
			if t.Kind == "pick" && (t.Status == "" || t.Status == "open") {
				claimed[ledger.Key{WH: wh, Location: t.Location, SKU: t.SKU, Lot: t.Lot}] += max(t.Qty-t.Picked, 0)
			}
		}
		for _, l := range lines {
			var rec routeRecord
			if _, err := getCBOR(tx, routeKey(wh, order, l.Line), &rec); err != nil {
				return err
			}
			avoid := map[string]bool{}
			for _, a := range rec.Avoid {
				avoid[a] = true
			}
			var onTasks int64
			for _, id := range rec.Tasks {
				t := byID[id]
				switch t.Status {
				case "", "open":
					onTasks += max(t.Qty-t.Picked, 0)
				case "short":
					if !avoid[t.Location] {
						avoid[t.Location] = true
						rec.Avoid = append(rec.Avoid, t.Location)
					}
				}
			}
			need := l.Qty - l.Picked - onTasks
			res.Open += onTasks
			if need <= 0 {
				continue
			}
			minDays := 0
			if s.channelDays != nil && l.Channel != "" {
				minDays = s.channelDays(l.Channel)
			}
			cands, err := candidates(tx, wh, l, locs, avoid, claimed, s.now().UTC(), minDays)
			if err != nil {
				return err
			}
			for _, c := range cands {
				if need == 0 {
					break
				}
				q := min(need, c.avail)
				if q <= 0 {
					continue
				}
				t := protocol.Task{
					ID: fmt.Sprintf("pick-%s-%d-%d", url.PathEscape(order), l.Line, len(rec.Tasks)+1), Kind: "pick",
					Location: c.key.Location, SKU: l.SKU, Lot: c.key.Lot, Qty: q, Order: order, OrderLine: l.Line,
					Expiry: c.expiry, Status: "open", Reason: fmt.Sprintf("order %s line %d", order, l.Line),
				}
				target, err := masterdata.GatewayOf(tx, wh, c.key.Location)
				if err != nil {
					return err
				}
				if err := tx.PutTask(wh, target, t); err != nil {
					return err
				}
				claimed[c.key] += q
				rec.Tasks = append(rec.Tasks, t.ID)
				res.Tasks = append(res.Tasks, t)
				res.Open += q
				need -= q
			}
			if need > 0 {
				if res.Unrouted == nil {
					res.Unrouted = map[uint32]int64{}
				}
				res.Unrouted[l.Line] = need
			}
			if err := putCBOR(tx, routeKey(wh, order, l.Line), rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("route order %s/%s: %w", wh, order, err)
	}
	return res, nil
}

// candidates lists the keys that can give stock to a line, best first:
// FEFO (earliest expiry) for items tracking expiry, then FIFO (earliest
// first receipt), then nearest to packing, then by location code.
// minDays is the order's channel's minimum shelf life (0: none).
func candidates(tx store.Tx, wh string, l Line, locs map[string]protocol.Location, avoid map[string]bool, claimed map[ledger.Key]int64, today time.Time, minDays int) ([]cand, error) {
	item, _, err := masterdata.ItemOf(tx, wh, l.SKU)
	if err != nil {
		return nil, err
	}
	rows, err := tx.Stock(wh, l.SKU)
	if err != nil {
		return nil, err
	}
	// The expiry of each lot: from the first receipt of the lot anywhere.
	expiry := map[string]string{}
	var out []cand
	for _, r := range rows {
		k := r.Key()
		o, ok, err := tx.Origin(k)
		if err != nil {
			return nil, err
		}
		if ok && o.Expiry != "" && (expiry[r.Lot] == "" || o.Expiry < expiry[r.Lot]) {
			expiry[r.Lot] = o.Expiry
		}
		if r.Status != protocol.StatusAvailable || (l.Lot != "" && r.Lot != l.Lot) || avoid[r.Location] {
			continue
		}
		loc, known := locs[r.Location]
		if len(locs) > 0 && (!known || (loc.Type != protocol.LocPick && loc.Type != protocol.LocStorage)) {
			continue
		}
		avail := r.OnHand - claimed[ledger.Key{WH: wh, Location: r.Location, SKU: r.SKU, Lot: r.Lot}] // tasks name no owner
		if avail <= 0 {
			continue
		}
		out = append(out, cand{key: k, avail: avail, first: o.HLC, rank: loc.Rank})
	}
	// FEFO never routes a lot that is expired, or that expires within the
	// item's minimum remaining shelf life, or the channel's when stricter.
	cutoff := today.AddDate(0, 0, max(item.MinShelfDays, minDays)).Format(time.DateOnly)
	kept := out[:0]
	for _, c := range out {
		c.expiry = expiry[c.key.Lot]
		if c.expiry != "" && c.expiry < cutoff {
			continue
		}
		kept = append(kept, c)
	}
	out = kept
	fefo := item.TrackExpiry
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if fefo && a.expiry != b.expiry {
			if a.expiry == "" || b.expiry == "" {
				return b.expiry == ""
			}
			return a.expiry < b.expiry
		}
		if a.first != b.first {
			return a.first < b.first
		}
		ra, rb := a.rank, b.rank
		if ra == 0 {
			ra = ^uint32(0)
		}
		if rb == 0 {
			rb = ^uint32(0)
		}
		if ra != rb {
			return ra < rb
		}
		return a.key.Location < b.key.Location
	})
	return out, nil
}

// TaskShort is masterdata.Options.OnTaskShort: after a gateway picked a
// task short, the line's remainder is routed again, avoiding that
// location.
func (s *Service) TaskShort(ctx context.Context, wh string, t protocol.Task) {
	if t.Order == "" {
		return
	}
	res, err := s.RouteOrder(ctx, wh, t.Order)
	if err != nil {
		s.log.Warn("remainder of a short pick not routed", "warehouse", wh, "order", t.Order, "task", t.ID, "err", err)
		return
	}
	s.log.Info("short pick re-routed", "warehouse", wh, "order", t.Order, "task", t.ID, "new_tasks", len(res.Tasks), "unrouted", res.Unrouted)
}

// CountTask issues a whole-location count task, sent to the gateway
// serving the location's zone.
func (s *Service) CountTask(_ context.Context, wh, location, reason string) (protocol.Task, error) {
	var t protocol.Task
	err := s.b.Update(func(tx store.Tx) error {
		tasks, err := tx.Tasks(wh)
		if err != nil {
			return err
		}
		n := 1
		for _, x := range tasks {
			if x.Kind == "count" && x.Location == location {
				n++
			}
		}
		t = protocol.Task{ID: fmt.Sprintf("count-%s-%d", url.PathEscape(location), n), Kind: "count", Location: location, Reason: reason, Status: "open"}
		target, err := masterdata.GatewayOf(tx, wh, location)
		if err != nil {
			return err
		}
		return tx.PutTask(wh, target, t)
	})
	return t, err
}

// Record helpers shared by the packages beside the ledger (store/tx.go).
var (
	getCBOR = store.GetCBOR
	putCBOR = store.PutCBOR
)
