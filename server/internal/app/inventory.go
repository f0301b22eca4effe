package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/alerts"
	"github.com/shelfsync/shelfsync/server/internal/api"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/dashboard"
	"github.com/shelfsync/shelfsync/server/internal/ingest"
	"github.com/shelfsync/shelfsync/server/internal/orders"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/webhooks"
)

// inventory wires what the server owns beyond the ledger (docs/DESIGN.md,
// "Inventory behaviour the server owns"): orders and availability, alerts,
// webhooks, and the dashboard's live feed. It reacts to every applied batch
// and API change, and publishes on MQTT through the ingest's client.
//
// The master data (sellable locations, safety stock, reorder thresholds,
// on-order quantities) plugs in through masterData (masterdata.go); without
// it every location is sellable and no sku has thresholds.
type inventory struct {
	log    *slog.Logger
	st     store.Store
	topics protocol.Topics
	orders *orders.Service // nil with a store that keeps no records
	alerts *alerts.Service
	hooks  *webhooks.Manager
	hub    *dashboard.Hub
	out    *mqttOut
	// alertOut publishes the alerts topic from a queue written with each
	// alert (alertout.go).
	alertOut *alertOut
	cl       *cluster // other replicas (nil: a single server)
	down     func(wh string)

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// masterData is what the inventory reads from the master data; nil
// functions take the defaults.
type masterData struct {
	Sellable   func(wh, loc string) bool
	Safety     func(wh, sku string) int64
	Thresholds alerts.Thresholds
	OnOrder    func(wh, sku string) int64
}

func newInventory(st store.Store, in *ingest.Ingest, md masterData, cl *cluster, reg prometheus.Registerer, log *slog.Logger) *inventory {
	inv := &inventory{log: log, st: st, topics: in.Topics(), hub: dashboard.NewHub(), out: newMQTTOut(in.PublishTopic, log)}
	registerInventoryMetrics(reg, st)
	b, ok := st.(orders.Store)
	if !ok {
		log.Warn("orders, availability, alerts and webhooks need a store that keeps records; they are off with this backend")
		return inv
	}
	inv.cl = cl
	inv.alertOut = newAlertOut(b, in.PublishTopic, func() bool { return inv.orders.Active() }, log.With("component", "alerts-mqtt"))
	inv.hooks = webhooks.New(webhooks.Config{Records: b, Shared: cl != nil, ReplicaID: cl.replicaID(),
		Logger: log.With("component", "webhooks"), Registerer: reg, OnCreate: inv.welcome})
	inv.alerts = alerts.New(alerts.Config{
		Records: b, Thresholds: md.Thresholds, OnOrder: md.OnOrder, Logger: log.With("component", "alerts"), Registerer: reg,
		Gateways: func(ctx context.Context) ([]store.Gateway, error) { return st.Gateways(ctx, "") },
		// The webhook is queued in the alert's transaction; MQTT and the
		// dashboard follow the commit.
		Within:  inv.queueAlert,
		Publish: inv.publishAlert,
		// Conflicts whose alert the apply did not raise (the replica died
		// after its commit) get it from the sweep, on the leader.
		OpenConflicts: func(ctx context.Context) ([]conflicts.Conflict, error) {
			return b.Conflicts(ctx, conflicts.Query{Status: conflicts.StatusOpen})
		},
		Sweep: func() bool { return inv.orders.Active() },
	})
	safety := md.Safety
	if safety == nil && md.Thresholds != nil {
		safety = func(wh, sku string) int64 {
			t, _ := md.Thresholds.Threshold(wh, sku)
			return t.SafetyStock
		}
	}
	inv.orders = orders.New(orders.Config{
		Sellable: md.Sellable, Safety: safety, HLC: in.Clock().Now, Logger: log.With("component", "orders"),
		Publish: inv.publishAvailability,
		// Every replica's model recomputes; the active one alone evaluates
		// reorder points from it (the alert is raised once either way, but
		// there is no need to do the work three times).
		OnStock: func(wh, sku string, onHand int64) {
			if inv.orders.Active() {
				inv.alerts.ObserveStock(wh, sku, onHand)
			}
		},
		OnConflict: inv.conflict,
		OnOrderTx:  inv.queueOrder,
		OnOrder:    inv.order,
		Passive:    cl != nil, // until elected (cluster.go)
		Resync:     resyncEvery(cl),
	}, b)
	if cl != nil {
		inv.joinCluster(cl)
	}
	return inv
}

// start loads the order model and starts the background work.
func (inv *inventory) start(ctx context.Context) error {
	ctx, inv.cancel = context.WithCancel(ctx)
	inv.wg.Add(1)
	go func() { defer inv.wg.Done(); inv.out.run(ctx) }()
	if inv.orders == nil {
		return nil
	}
	if err := inv.hooks.Start(ctx); err != nil {
		return err
	}
	if err := inv.orders.Start(ctx); err != nil {
		return err
	}
	inv.wg.Add(3)
	go func() { defer inv.wg.Done(); inv.alertOut.run(ctx) }()
	go func() { defer inv.wg.Done(); inv.orders.Run(ctx) }()
	go func() { defer inv.wg.Done(); inv.alerts.Run(ctx) }()
	return nil
}

// stop ends the background work and waits for it.
func (inv *inventory) stop() {
	if inv.cancel == nil {
		return
	}
	inv.cancel()
	inv.hub.Close()
	inv.wg.Wait()
	if inv.hooks != nil {
		inv.hooks.Wait()
	}
}

// apiDeps fills the API's dependencies with what is running.
func (inv *inventory) apiDeps(d *api.Deps) {
	d.Events = inv.hub
	d.Dashboard = dashboard.Handler()
	if inv.orders != nil {
		d.Orders, d.Alerts, d.Webhooks = inv.orders, inv.alerts, inv.hooks
		if inv.cl != nil {
			d.Orders = clusterOrders{inv.orders, inv.cl}
		}
	}
}

type keyValue struct {
	Location string `json:"location"`
	SKU      string `json:"sku"`
	Lot      string `json:"lot,omitempty"`
	OnHand   int64  `json:"on_hand"`
}

// applied reacts to a durably applied batch (gw is the gateway, or the
// server for API changes): availability, alerts, the live feed.
func (inv *inventory) applied(wh, gw string, res store.Result) {
	if res.Applied == 0 && res.Quarantined == 0 && len(res.Changes) == 0 && len(res.Conflicts) == 0 {
		// the API's signal that wh's master data (or settings) changed:
		// sellable locations, safety stock, thresholds
		if inv.orders != nil {
			inv.orders.Invalidate()
		}
		inv.cl.masterData(wh)
		return
	}
	if inv.orders != nil {
		inv.orders.Changed(res.Changes)
	}
	for _, c := range res.Conflicts {
		inv.conflict(c)
	}
	feed := feedEvent(wh, gw, res)
	inv.hub.Publish("batch", feed)
	inv.cl.batch(wh, gw, res.Changes, feed)
}

func (inv *inventory) conflict(c conflicts.Conflict) {
	if inv.alerts != nil {
		inv.alerts.ObserveConflict(c)
	}
	inv.hub.Publish("conflict", c)
}

// order follows the commit of an order change: the dashboard and the
// other replicas (the webhook was queued in the transaction: queueOrder).
func (inv *inventory) order(o orders.Order, event string) {
	inv.hub.Publish("order", map[string]any{"event": event, "order": o})
	inv.cl.order(o.Warehouse, o.ID)
}

// queueOrder queues the order.{event} webhook in the order's transaction.
func (inv *inventory) queueOrder(tx store.Tx, o orders.Order, event string) error {
	body, err := json.Marshal(map[string]any{"event": "order." + event, "order": o})
	if err != nil {
		return err
	}
	return inv.hooks.EnqueueTx(tx, webhooks.Event{Type: webhooks.EventOrder, Warehouse: o.Warehouse, Body: body})
}

func (inv *inventory) publishAvailability(sn orders.Snapshot) {
	body, err := json.Marshal(sn)
	if err != nil {
		inv.log.Error("encode availability", "channel", sn.Channel, "err", err)
		return
	}
	inv.out.retain(inv.topics.Availability(sn.Channel), body)
	if err := inv.hooks.Enqueue(webhooks.Event{Type: webhooks.EventAvailability, Channel: sn.Channel, Key: "availability/" + sn.Channel, Body: body}); err != nil {
		inv.log.Error("availability webhook not queued", "channel", sn.Channel, "err", err)
	}
	inv.hub.Publish("availability", map[string]any{"channel": sn.Channel, "seq": sn.Seq, "items": len(sn.Items), "generated_at": sn.GeneratedAt})
}

// welcome queues every channel's current availability for a new endpoint.
func (inv *inventory) welcome(e webhooks.Endpoint) {
	for _, c := range inv.orders.Channels() {
		sn, ok := inv.orders.Snapshot(c.Name)
		if !ok {
			continue
		}
		body, err := json.Marshal(sn)
		if err == nil {
			err = inv.hooks.EnqueueTo(e.ID, webhooks.Event{Type: webhooks.EventAvailability, Channel: sn.Channel, Key: "availability/" + sn.Channel, Body: body})
		}
		if err != nil {
			inv.log.Error("availability not queued for a new endpoint", "endpoint", e.ID, "err", err)
		}
	}
}

// queueAlert queues the alert's webhook in the transaction that raises or
// acknowledges it.
func (inv *inventory) queueAlert(tx store.Tx, a alerts.Alert) error {
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := inv.alertOut.queue(tx, a.ID, string(a.Status), inv.topics.Alerts(a.Warehouse), body); err != nil {
		return err
	}
	return inv.hooks.EnqueueTx(tx, webhooks.Event{Type: webhooks.EventAlert, Warehouse: a.Warehouse, Body: body})
}

// publishAlert follows the commit of a new or acknowledged alert: its
// MQTT message and webhook were queued in the transaction (queueAlert);
// the dashboard is live, best effort.
func (inv *inventory) publishAlert(a alerts.Alert) {
	inv.alertOut.poke()
	inv.hub.Publish("alert", a)
}

// mqttOut publishes the server's retained topics (availability) from one
// goroutine, so that a slow or absent broker never holds up ingest: each
// topic keeps only its latest payload until it is published.
type mqttOut struct {
	pub  func(topic string, retained bool, payload []byte) error
	log  *slog.Logger
	mu   sync.Mutex
	ret  map[string][]byte
	wake chan struct{}
}

func newMQTTOut(pub func(string, bool, []byte) error, log *slog.Logger) *mqttOut {
	return &mqttOut{pub: pub, log: log, ret: map[string][]byte{}, wake: make(chan struct{}, 1)}
}

func (o *mqttOut) retain(topic string, payload []byte) {
	o.mu.Lock()
	o.ret[topic] = payload
	o.mu.Unlock()
	o.poke()
}

func (o *mqttOut) poke() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *mqttOut) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		}
		for !o.flush() {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// flush publishes what waits; it reports false when the broker refused.
func (o *mqttOut) flush() bool {
	for {
		o.mu.Lock()
		var topic string
		var payload []byte
		for t, p := range o.ret {
			topic, payload = t, p
			delete(o.ret, t)
			break
		}
		o.mu.Unlock()
		if topic == "" {
			return true
		}
		if err := o.pub(topic, true, payload); err != nil {
			o.mu.Lock()
			if _, newer := o.ret[topic]; !newer {
				o.ret[topic] = payload
			}
			o.mu.Unlock()
			return false
		}
	}
}
