package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/alerts"
	"github.com/shelfsync/shelfsync/server/internal/events"
	"github.com/shelfsync/shelfsync/server/internal/masterdata"
	"github.com/shelfsync/shelfsync/server/internal/orders"
	"github.com/shelfsync/shelfsync/server/internal/routing"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// floor acts on what the floor tells the order model (docs/DESIGN.md,
// "Inventory behaviour the server owns": short picks, allocation): a pick
// task closed short, and orders that become pickable after they were
// taken (a backorder released, a part re-allocated to another warehouse),
// which get their pick tasks here.
type floor struct {
	st     store.Store
	md     *masterdata.Service
	rt     *routing.Service
	orders *orders.Service
	alerts *alerts.Service
	bus    events.Publisher
	clock  *protocol.Clock
	log    *slog.Logger
	shorts *prometheus.CounterVec

	leading func() bool // this replica sweeps the short picks left undone

	mu       sync.Mutex
	queue    []okey // orders to route
	set      map[okey]bool
	wake     chan struct{}
	inFlight map[okey]bool // short picks (wh, task) being acted on here
}

type okey struct{ wh, id string }

func newFloor(st store.Store, md *mdWiring, inv *inventory, bus events.Publisher, clock *protocol.Clock, reg prometheus.Registerer, log *slog.Logger) *floor {
	f := &floor{st: st, md: md.md, rt: md.rt, orders: inv.orders, alerts: inv.alerts, bus: bus, clock: clock, log: log,
		leading: inv.leading, set: map[okey]bool{}, wake: make(chan struct{}, 1), inFlight: map[okey]bool{},
		shorts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shelfsync_short_picks_total",
			Help: "Pick tasks closed short, by what became of the units not picked (rerouted, reallocated, backordered)."}, []string{"outcome"})}
	if reg != nil {
		reg.MustRegister(f.shorts)
	}
	return f
}

// routeLater queues an order for pick routing (the order model's OnOrder
// must not wait on it).
func (f *floor) routeLater(wh, id string) {
	f.mu.Lock()
	k := okey{wh, id}
	if !f.set[k] {
		f.set[k] = true
		f.queue = append(f.queue, k)
	}
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// run routes the queued orders, and on the leading replica acts on the
// short picks left undone (a server that died between taking the notice
// and acting on it), at start and every shortSweepEvery, until ctx ends.
func (f *floor) run(ctx context.Context) {
	sweep := time.NewTicker(shortSweepEvery)
	defer sweep.Stop()
	f.sweepShorts(ctx, 0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-sweep.C:
			f.sweepShorts(ctx, shortSweepEvery)
			continue
		case <-f.wake:
		}
		for {
			f.mu.Lock()
			if len(f.queue) == 0 {
				f.mu.Unlock()
				break
			}
			k := f.queue[0]
			f.queue = f.queue[1:]
			delete(f.set, k)
			f.mu.Unlock()
			f.route(ctx, k.wh, k.id)
		}
	}
}

// route makes the pick tasks of an order's open remainder and sends them.
func (f *floor) route(ctx context.Context, wh, id string) routing.Result {
	res, err := f.rt.RouteOrder(ctx, wh, id)
	if err != nil {
		f.log.Warn("order not routed to pick tasks; route it again once stock or locations are known", "warehouse", wh, "order", id, "err", err)
		return res
	}
	if len(res.Tasks) > 0 {
		f.bus.Publish(events.Event{Tasks: []string{wh}})
	}
	return res
}

// orderEvent is the order model's OnOrder hook: an order released from
// backorder gets its pick tasks; a cancelled order's pick tasks are
// cancelled at their gateways (no more picking, no packing).
func (f *floor) orderEvent(o orders.Order, event string) {
	if event == "released" && o.Status == orders.StatusOpen {
		f.routeLater(o.Warehouse, o.ID)
		for _, wh := range o.Parts { // a release may split the order
			f.routeLater(wh, o.ID)
		}
	}
	if event == string(orders.StatusCancelled) && o.ExpiresMS == 0 { // not a checkout hold
		f.cancelTasks(o.Warehouse, o.ID)
	}
}

// cancelTasks cancels the pick tasks of a cancelled order and sends them.
// A server that stops before it leaves them open (the pack session's
// ship is then refused by the server: a ship-refused alert).
func (f *floor) cancelTasks(wh, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := f.rt.CancelOrderTasks(ctx, wh, id)
	if err != nil {
		f.log.Warn("pick tasks of a cancelled order not cancelled at the gateways", "warehouse", wh, "order", id, "err", err)
		return
	}
	if n > 0 {
		f.bus.Publish(events.Event{Tasks: []string{wh}})
	}
}

// shortPick is masterdata.Options.OnTaskShort: a gateway closed pick task
// t with fewer units than it asked. The picker found them missing, so
//
//   - the units not picked leave the bin's records at once (server-origin
//     adjust ops, reason SHORT-PICK, audited and replicated like any op),
//     and so available-to-sell;
//   - the bin gets a count task, which finds the truth (a count that finds
//     them is found stock);
//   - the order line's remainder is routed to other bins of the warehouse,
//     else re-allocated to another warehouse of the owner (its part there
//     gets the pick task), else backordered on the line;
//   - a short-pick alert stands until the bin is counted.
//
// The notice recorded the short pick (masterdata.ShortPick) when it was
// taken; the action drops the record when done, and marks the units taken
// before it takes them off (at most once), so a sweep can redo the rest.
func (f *floor) shortPick(ctx context.Context, wh string, t protocol.Task) {
	k := okey{wh, t.ID}
	f.mu.Lock()
	if f.inFlight[k] {
		f.mu.Unlock()
		return
	}
	f.inFlight[k] = true
	f.mu.Unlock()
	defer func() { f.mu.Lock(); delete(f.inFlight, k); f.mu.Unlock() }()
	missing := t.Qty - t.Picked
	if t.Kind != "pick" || missing <= 0 {
		f.shortDone(ctx, wh, t)
		return
	}
	log := f.log.With("warehouse", wh, "task", t.ID, "location", t.Location, "sku", t.SKU, "order", t.Order)
	var (
		taken   int64
		applied = func() {}
	)
	first, err := f.md.ShortTaken(ctx, wh, t.ID)
	if err != nil {
		log.Error("short pick not acted on; the sweep retries", "err", err)
		return
	}
	if first {
		if taken, applied, err = f.takeOff(ctx, wh, t, missing); err != nil {
			log.Error("units missing at a short pick not taken off the records; the count task corrects them", "err", err)
		}
	}
	count, err := f.rt.CountTask(ctx, wh, t.Location, fmt.Sprintf("short pick: task %s picked %d of %d × %s", t.ID, t.Picked, t.Qty, t.SKU))
	if err != nil {
		log.Error("count task of a short-picked bin not sent", "err", err)
	}
	whs := []string{wh}
	outcome := "rerouted"
	var did []string
	if t.Order != "" {
		res := f.route(ctx, wh, t.Order)
		if len(res.Tasks) > 0 {
			did = append(did, fmt.Sprintf("%d unit(s) routed to other bins", unitsOf(res.Tasks)))
		}
		for line, units := range res.Unrouted {
			re, err := f.orders.Reallocate(ctx, wh, t.Order, line, units)
			if err != nil {
				log.Error("order line not re-allocated after a short pick", "line", line, "err", err)
				continue
			}
			for _, p := range re.Parts {
				outcome = "reallocated"
				did = append(did, fmt.Sprintf("line %d re-allocated to warehouse %s (its part there reserves %d)", line, p.Warehouse, partUnits(p, line)))
				f.route(ctx, p.Warehouse, p.ID)
				whs = append(whs, p.Warehouse)
			}
			if re.Backordered > 0 {
				if outcome != "reallocated" {
					outcome = "backordered"
				}
				did = append(did, fmt.Sprintf("%d unit(s) of line %d backordered", re.Backordered, line))
			}
		}
	}
	// The model hears of the units taken off once the line no longer
	// reserves them here (else a recompute in between would see an
	// oversell that the re-allocation ends), and recomputes now: the
	// units leave available-to-sell at once.
	applied()
	f.orders.Flush(ctx)
	f.shorts.WithLabelValues(outcome).Inc()
	if _, _, err := f.alerts.RaiseShortPick(alerts.ShortPick{Warehouse: wh, Location: t.Location, SKU: t.SKU, Lot: t.Lot, Task: t.ID,
		Order: t.Order, Asked: t.Qty, Picked: t.Picked, CountTask: count.ID, Outcome: strings.Join(did, "; ")}); err != nil {
		log.Error("short-pick alert not raised", "err", err)
	}
	f.bus.Publish(events.Event{Tasks: whs})
	f.shortDone(ctx, wh, t)
	log.Info("short pick", "asked", t.Qty, "picked", t.Picked, "taken_off", taken, "count_task", count.ID, "outcome", outcome, "did", did)
}

func (f *floor) shortDone(ctx context.Context, wh string, t protocol.Task) {
	if err := f.md.ShortDone(ctx, wh, t.ID); err != nil {
		f.log.Warn("short pick done but still recorded; the sweep acts on it again", "warehouse", wh, "task", t.ID, "err", err)
	}
}

// shortSweepEvery is how often the leading replica looks for short picks
// left undone.
const shortSweepEvery = time.Minute

// sweepShorts acts on the recorded short picks older than age that no
// action here is working on.
func (f *floor) sweepShorts(ctx context.Context, age time.Duration) {
	if f.leading != nil && !f.leading() {
		return
	}
	sps, err := f.md.PendingShorts(ctx)
	if err != nil {
		f.log.Warn("short picks left undone not listed; the next sweep retries", "err", err)
		return
	}
	cutoff := time.Now().Add(-age).UnixMilli()
	for _, sp := range sps {
		if ctx.Err() != nil {
			return
		}
		if age > 0 && sp.AtMS > cutoff {
			continue
		}
		f.log.Info("acting on a short pick left undone", "warehouse", sp.Warehouse, "task", sp.Task.ID, "taken_off_before", sp.Taken)
		f.shortPick(ctx, sp.Warehouse, sp.Task)
	}
}

// partUnits is what a part's line reserves.
func partUnits(p orders.Order, line uint32) int64 {
	var n int64
	for _, l := range p.Lines {
		if l.Line == line {
			n += l.Reserved
		}
	}
	return n
}

func unitsOf(ts []protocol.Task) int64 {
	var n int64
	for _, t := range ts {
		n += t.Qty
	}
	return n
}

// takeOff issues the adjust ops that take up to missing units of the
// task's sku (and lot) off its bin's available keys, never below 0, and
// returns how many it took, and what tells the order model and the bus
// (the caller calls it once the line is re-allocated).
func (f *floor) takeOff(ctx context.Context, wh string, t protocol.Task, missing int64) (int64, func(), error) {
	none := func() {}
	rows, err := f.st.Stock(ctx, store.StockQuery{Warehouse: wh, SKU: t.SKU, Location: t.Location})
	if err != nil {
		return 0, none, err
	}
	var ops []protocol.Op
	left := missing
	for _, r := range rows {
		if left == 0 {
			break
		}
		if r.Location != t.Location || r.SKU != t.SKU || (t.Lot != "" && r.Lot != t.Lot) || r.Status != protocol.StatusAvailable || r.OnHand <= 0 {
			continue
		}
		q := min(left, r.OnHand)
		left -= q
		ops = append(ops, protocol.Op{HLC: f.clock.Now(), Kind: protocol.OpAdjust, Location: r.Location, SKU: r.SKU, Lot: r.Lot,
			Owner: r.Owner, Status: r.Status, Qty: -q, Reason: "SHORT-PICK", Operator: "short-pick", Refs: &protocol.Refs{Task: t.ID}})
	}
	if len(ops) == 0 {
		return 0, none, nil
	}
	issued, res, err := f.st.IssueOps(ctx, wh, ops, nil)
	if err != nil {
		return 0, none, err
	}
	var taken int64
	for _, is := range issued {
		if is.Err == nil && !is.Skipped {
			taken -= is.Op.Qty
		}
	}
	return taken, func() {
		f.orders.Changed(res.Changes)
		f.bus.Publish(events.Event{Batches: []events.Batch{{Warehouse: wh, Gateway: protocol.ServerOrigin, WM: res.WM,
			Applied: res.Applied, Changes: res.Changes, Conflicts: res.Conflicts}}})
	}, nil
}

// checkShortPicks clears the short-pick alerts of bins a batch counted
// (the periodic check of the alerts catches what this misses).
func (f *floor) checkShortPicks(ctx context.Context, ev events.Event) {
	if !f.alerts.ShortPicksStanding() || len(ev.Batches) == 0 {
		return
	}
	seen := map[alerts.Bin]bool{}
	var bins []alerts.Bin
	for _, b := range ev.Batches {
		for _, ch := range b.Changes {
			if bin := (alerts.Bin{Warehouse: ch.Key.WH, Location: ch.Key.Location}); !seen[bin] {
				seen[bin] = true
				bins = append(bins, bin)
			}
		}
	}
	if len(bins) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := f.alerts.CheckShortPicks(ctx, bins...); err != nil {
		f.log.Warn("short-pick alerts not checked; the periodic check retries", "err", err)
	}
}
