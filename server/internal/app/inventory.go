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
	"github.com/shelfsync/shelfsync/server/internal/events"
	"github.com/shelfsync/shelfsync/server/internal/expiry"
	"github.com/shelfsync/shelfsync/server/internal/orders"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/webhooks"
)

// inventory wires what the server owns beyond the ledger (docs/DESIGN.md,
// "Inventory behaviour the server owns"): orders and availability, alerts,
// webhooks, and the dashboard's live feed. It follows the post-commit
// events (follow.go) and publishes on MQTT through the ingest's client
// (start).
//
// The master data (sellable locations, safety stock, reorder thresholds,
// on-order quantities) plugs in through masterData (masterdata.go); without
// it every location is sellable and no sku has thresholds.
type inventory struct {
	log    *slog.Logger
	st     store.Store
	topics protocol.Topics
	orders *orders.Service
	alerts *alerts.Service
	// thresholds are the master data's reorder thresholds as alerts and
	// the order model's safety stock read them: kept until the master
	// data changes (forgetMasterData); nil without thresholds.
	thresholds *alerts.ThresholdCache
	hooks      *webhooks.Manager
	hub        *dashboard.Hub
	// series is each gateway's ingest over the last hour (series.go).
	series *dashboard.Series
	out    *mqttOut
	// alertOut publishes the alerts topic from a queue written with each
	// alert.
	alertOut *alerts.Outbox
	bus      events.Publisher
	// expiry expires lots past their date and alerts those near it, on
	// the leading replica.
	expiry      *expiry.Sweeper
	expiryEvery time.Duration
	// shelf knows the expiry of available lots, for the channels with a
	// minimum shelf life of their own.
	shelf   *expiry.Shelf
	leading func() bool
	// shipped counts ship notices by result (ship.go).
	shipped *prometheus.CounterVec
	// onOrder follows every order change this replica wrote (floor.go);
	// set before start.
	onOrder func(o orders.Order, event string)
	// skuOwner is the owner of a sku's item (nil: no owners).
	skuOwner  func(wh, sku string) (string, error)
	hasOwners func(wh string) (bool, error)
	// ownerTopics are the owners whose availability of a channel was
	// published last (owners.go), so an owner whose skus are all gone
	// gets an empty snapshot instead of keeping a stale one.
	ownerMu     sync.Mutex
	ownerTopics map[string]map[string]bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// masterData is what the inventory reads from the master data; nil
// functions take the defaults.
type masterData struct {
	Sellable func(wh, loc string) bool
	Safety   func(wh, sku string) int64
	// Owner returns the owner of a sku's item ("" for none).
	Owner func(wh, sku string) (string, error)
	// HasOwners reports whether a warehouse's items have owners (nil:
	// ask Owner for every sku).
	HasOwners  func(wh string) (bool, error)
	Thresholds alerts.Thresholds
	OnOrder    func(wh, sku string) int64
	// NearDays is a warehouse's near-expiry horizon in days.
	NearDays func(wh string) int
}

// inventoryDeps are what the inventory is built from.
type inventoryDeps struct {
	st      store.Store
	bus     events.Publisher
	hub     *dashboard.Hub
	md      masterData
	leading func() bool // this replica does the once-for-all work now
	shared  bool        // replicas share the store
	// replicaID names this server in delivery leases
	replicaID string
	// alertCfg carries the alert settings (delays and thresholds);
	// Records, hooks and clocks are the inventory's.
	alertCfg alerts.Config
	topics   protocol.Topics
	clock    *protocol.Clock
	// expiryEvery is the expiry sweep's period; expiryToday the clock
	// lot expiry is judged by (config.Expiry).
	expiryEvery time.Duration
	expiryToday func() time.Time
	reg         prometheus.Registerer
	log         *slog.Logger
}

func newInventory(d inventoryDeps) *inventory {
	log := d.log
	inv := &inventory{log: log, st: d.st, topics: d.topics, hub: d.hub, out: newMQTTOut(log), bus: d.bus,
		series: dashboard.NewSeries(0, nil), skuOwner: d.md.Owner, hasOwners: d.md.HasOwners, ownerTopics: map[string]map[string]bool{}}
	registerInventoryMetrics(d.reg, d.st)
	inv.shipped = newShipMetric(d.reg)
	b := d.st
	inv.alertOut = alerts.NewOutbox(b, d.leading, log.With("component", "alerts-mqtt"))
	inv.hooks = webhooks.New(webhooks.Config{Records: b, Shared: d.shared, ReplicaID: d.replicaID,
		Logger: log.With("component", "webhooks"), Registerer: d.reg})
	var thresholds alerts.Thresholds
	if d.md.Thresholds != nil {
		inv.thresholds = alerts.NewThresholdCache(d.md.Thresholds)
		thresholds = inv.thresholds
	}
	inv.alerts = alerts.New(alerts.Config{
		Records: b, Thresholds: thresholds, OnOrder: d.md.OnOrder, Owner: d.md.Owner, Logger: log.With("component", "alerts"), Registerer: d.reg,
		Gateways: func(ctx context.Context) ([]store.Gateway, error) { return d.st.Gateways(ctx, "") },
		// The webhook is queued in the alert's transaction; MQTT and the
		// dashboard follow the commit.
		Within:           inv.queueAlert,
		Publish:          inv.publishAlert,
		ConflictWithin:   inv.queueConflict,
		ConflictNotified: func(conflicts.Conflict, string) { inv.alertOut.Poke() },
		OfflineAfter:     d.alertCfg.OfflineAfter, BacklogOps: d.alertCfg.BacklogOps,
		BacklogChecks: d.alertCfg.BacklogChecks, CheckEvery: d.alertCfg.CheckEvery,
		// Conflicts whose notification the apply did not make (the replica
		// died after its commit) get it from the sweep, on the leader.
		OpenConflicts: func(ctx context.Context) ([]conflicts.Conflict, error) {
			return b.Conflicts(ctx, conflicts.Query{Status: conflicts.StatusOpen})
		},
		Sweep: d.leading,
	})
	safety := d.md.Safety
	if safety == nil && thresholds != nil {
		safety = func(wh, sku string) int64 {
			t, _ := thresholds.Threshold(wh, sku)
			return t.SafetyStock
		}
	}
	inv.shelf = expiry.NewShelf(expiry.ShelfConfig{Store: b, Today: d.expiryToday, Sellable: d.md.Sellable})
	inv.orders = orders.New(orders.Config{
		Sellable: d.md.Sellable, Safety: safety, ShortDated: inv.shelf.ShortDated, Owner: d.md.Owner, HLC: d.clock.Now, Logger: log.With("component", "orders"),
		Publish:    inv.publishAvailability,
		OnStock:    inv.alerts.ObserveStock, // on the active model only
		OnConflict: func(c conflicts.Conflict) { d.bus.Publish(events.Event{Conflicts: []conflicts.Conflict{c}}) },
		OnOrderTx:  inv.queueOrder,
		OnOrder:    inv.order,
		Passive:    d.shared, // until elected (replica.Run: lead)
		Resync:     resyncEvery(d.shared),
	}, b)
	inv.leading = d.leading
	inv.expiryEvery = d.expiryEvery
	if inv.expiryEvery <= 0 {
		inv.expiryEvery = defaultExpiryEvery
	}
	inv.expiry = expiry.New(expiry.Config{Store: b, NearDays: d.md.NearDays, Today: d.expiryToday, HLC: d.clock.Now, Alerts: inv.alerts,
		NewDay:     inv.orders.Invalidate, // lots crossed channels' minimum shelf life
		Registerer: d.reg,
		Issued: func(wh string, res store.Result) {
			d.bus.Publish(events.Event{Batches: []events.Batch{{Warehouse: wh, Gateway: protocol.ServerOrigin, WM: res.WM,
				Applied: res.Applied, Changes: res.Changes, Conflicts: res.Conflicts}}})
		}})
	return inv
}

// start loads the order model and starts the background work, which
// publishes on MQTT through pub.
func (inv *inventory) start(ctx context.Context, pub topicPublisher) error {
	ctx, inv.cancel = context.WithCancel(ctx)
	inv.wg.Add(1)
	go func() { defer inv.wg.Done(); inv.out.run(ctx, pub) }()
	if err := inv.hooks.Start(ctx); err != nil {
		return err
	}
	if err := inv.shelf.Load(ctx); err != nil {
		return err
	}
	if err := inv.orders.Start(ctx); err != nil {
		return err
	}
	inv.wg.Add(6)
	go func() {
		defer inv.wg.Done()
		inv.shelf.Run(ctx, shelfResync, func(err error) {
			inv.log.Warn("lot expiry index: re-reading a lot whose expiry came late failed; retried at the next tick", "err", err)
		})
	}()
	go func() {
		defer inv.wg.Done()
		inv.expiry.Run(ctx, inv.expiryEvery, inv.leading, func(err error) { inv.log.Warn("expiry sweep failed; the next one retries", "err", err) })
	}()
	go func() { defer inv.wg.Done(); inv.sampleBacklog(ctx, backlogEvery) }()
	go func() { defer inv.wg.Done(); inv.alertOut.Run(ctx, pub) }()
	go func() { defer inv.wg.Done(); inv.orders.Run(ctx) }()
	go func() { defer inv.wg.Done(); inv.alerts.Run(ctx) }()
	return nil
}

// shelfResync is how often the lot expiry index is read again while it
// is stale (a lot's first expiry came after keys of it without one).
const shelfResync = 5 * time.Minute

// defaultExpiryEvery is how often lots are checked against their expiry
// date when the deps do not say (--expiry-every).
const defaultExpiryEvery = 15 * time.Minute

// stop ends the background work and waits for it.
func (inv *inventory) stop() {
	if inv.cancel == nil {
		return
	}
	inv.cancel()
	inv.hub.Close()
	inv.wg.Wait()
	inv.hooks.Wait()
}

// lead makes the order model active while this replica leads.
func (inv *inventory) lead(leader bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := inv.orders.SetActive(ctx, leader); err != nil {
		inv.log.Warn("order model: taking over as leader failed; retried at the next recompute", "err", err)
	}
}

// reload re-reads all stock, orders and channels (events were lost).
func (inv *inventory) reload() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	inv.forgetMasterData()
	if err := inv.shelf.Load(ctx); err != nil {
		inv.log.Warn("lot expiry index: re-reading after lost events failed; channels with a minimum shelf life may be offered short-dated lots until the next reload", "err", err)
	}
	if err := inv.orders.Reload(ctx); err != nil {
		inv.log.Warn("order model: re-reading after lost events failed; recomputing what it knows", "err", err)
		inv.orders.Invalidate()
	}
}

// apiDeps fills the API's dependencies with what is running.
func (inv *inventory) apiDeps(d *api.Deps) {
	d.Orders, d.Alerts = announcingOrders{inv.orders, inv.bus}, inv.alerts
	d.Webhooks = welcomingWebhooks{inv.hooks, inv.welcome}
	d.Series = inv.series
	d.NearExpiry = inv.expiry.NearExpiry
}

// order follows the commit of an order change of this replica (its
// webhook was queued in the transaction: queueOrder).
func (inv *inventory) order(o orders.Order, event string) {
	if inv.onOrder != nil {
		inv.onOrder(o, event)
	}
	detail, _ := json.Marshal(o)
	inv.bus.Publish(events.Event{Orders: []events.Order{{Warehouse: o.Warehouse, ID: o.ID, Change: event, Detail: detail}}})
}

// queueOrder queues the order.{event} webhook in the order's transaction.
func (inv *inventory) queueOrder(tx store.Tx, o orders.Order, event string) error {
	body, err := json.Marshal(map[string]any{"event": "order." + event, "order": o})
	if err != nil {
		return err
	}
	return inv.hooks.EnqueueTx(tx, webhooks.Event{Type: webhooks.EventOrder, Warehouse: o.Warehouse, Owner: o.Owner, Body: body})
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
	inv.publishOwners(sn)
	inv.hub.Publish("availability", map[string]any{"channel": sn.Channel, "seq": sn.Seq, "items": len(sn.Items), "generated_at": sn.GeneratedAt})
}

// welcome queues every channel's current availability for a new endpoint.
func (inv *inventory) welcome(e webhooks.Endpoint) {
	for _, c := range inv.orders.Channels() {
		sn, ok := inv.orders.Snapshot(c.Name)
		if !ok {
			continue
		}
		ev := webhooks.Event{Type: webhooks.EventAvailability, Channel: sn.Channel, Key: "availability/" + sn.Channel}
		if e.Owner != "" { // an owner's endpoint: its skus only
			owned, err := inv.ownedSKUs()
			if err != nil {
				inv.log.Error("availability not queued for a new endpoint", "endpoint", e.ID, "err", err)
				return
			}
			sn = sn.ForOwner(e.Owner, func(sku string) bool { return owned[sku][e.Owner] })
			ev.Owner, ev.OwnerOnly = e.Owner, true
		}
		body, err := json.Marshal(sn)
		if err == nil {
			ev.Body = body
			err = inv.hooks.EnqueueTo(e.ID, ev)
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
	if err := inv.alertOut.Queue(tx, a.ID, string(a.Status), inv.topics.Alerts(a.Warehouse), body); err != nil {
		return err
	}
	if err := inv.queueOwnerAlert(tx, a.Owner, a.ID, string(a.Status), body); err != nil {
		return err
	}
	return inv.hooks.EnqueueTx(tx, webhooks.Event{Type: webhooks.EventAlert, Warehouse: a.Warehouse, Owner: a.Owner, Body: body})
}

// queueOwnerAlert queues an alert's (or conflict's) message once more on
// its owner's alerts topic, {root}/owners/{owner}/alerts (none for a
// message of no owner: a gateway's alert, stock without owners). Its
// outbox id is apart from the warehouse topic's, so each topic gets its
// messages in the order they were raised. An owner id that is not a
// topic id (only stored before master data checked owner ids) gets no
// topic; its webhooks still get the alert.
func (inv *inventory) queueOwnerAlert(tx store.Tx, owner, id, status string, body []byte) error {
	if owner == "" {
		return nil
	}
	if protocol.ValidateID(owner) != nil {
		inv.log.Warn("owner's alerts topic not published: the owner id is not a topic id ([A-Za-z0-9._-], 1-64); rename the owner in master data", "owner", owner, "alert", id)
		return nil
	}
	return inv.alertOut.Queue(tx, "owners/"+owner+"/"+id, status, inv.topics.OwnerAlerts(owner), body)
}

// ConflictMessage is the body of a conflict's webhook (event "conflict")
// and of its message on the alerts topic: "conflict.opened" when it opens
// (again), "conflict.ended" when it stops holding or is resolved.
type ConflictMessage struct {
	Event    string             `json:"event"`
	Conflict conflicts.Conflict `json:"conflict"`
}

// queueConflict queues a conflict's notification in the transaction that
// records it.
func (inv *inventory) queueConflict(tx store.Tx, c conflicts.Conflict, event string) error {
	body, err := json.Marshal(ConflictMessage{Event: "conflict." + event, Conflict: c})
	if err != nil {
		return err
	}
	if err := inv.alertOut.Queue(tx, "conflict/"+c.ID, event, inv.topics.Alerts(c.Warehouse), body); err != nil {
		return err
	}
	if err := inv.queueOwnerAlert(tx, c.Owner, "conflict/"+c.ID, event, body); err != nil {
		return err
	}
	return inv.hooks.EnqueueTx(tx, webhooks.Event{Type: webhooks.EventConflict, Warehouse: c.Warehouse, Owner: c.Owner, Body: body})
}

// publishAlert follows the commit of an alert change: its MQTT message
// and webhook were queued in the transaction (queueAlert);
// the dashboard is live, best effort.
func (inv *inventory) publishAlert(a alerts.Alert) {
	inv.alertOut.Poke()
	inv.hub.Publish("alert", a)
}

// announcingOrders is the order model as the API sees it: a channel put
// is a post-commit event (the other replicas re-read their channels).
type announcingOrders struct {
	*orders.Service
	bus events.Publisher
}

func (o announcingOrders) PutChannel(ctx context.Context, c orders.Channel) (orders.Channel, error) {
	out, err := o.Service.PutChannel(ctx, c)
	if err == nil {
		o.bus.Publish(events.Event{Channels: true})
	}
	return out, err
}

// welcomingWebhooks is the webhooks manager as the API sees it: a new
// endpoint is sent every channel's current availability.
type welcomingWebhooks struct {
	*webhooks.Manager
	welcome func(webhooks.Endpoint)
}

func (w welcomingWebhooks) Create(ctx context.Context, e webhooks.Endpoint) (webhooks.Endpoint, error) {
	out, err := w.Manager.Create(ctx, e)
	if err == nil {
		w.welcome(out)
	}
	return out, err
}

// resyncEvery is how often the order model re-reads everything: the
// default (5 min) on a single server; every minute on a replica, which
// also learns of other replicas' changes through the feed.
func resyncEvery(shared bool) time.Duration {
	if !shared {
		return 0
	}
	return time.Minute
}

// forgetMasterData drops the thresholds read so far, after the master data
// changed or when changes may have been missed; the order model drops its
// own view in Invalidate.
func (inv *inventory) forgetMasterData() {
	if inv.thresholds != nil {
		inv.thresholds.Forget()
	}
}
