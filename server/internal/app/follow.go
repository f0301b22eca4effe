package app

import (
	"context"
	"encoding/json"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/events"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// follow subscribes what follows a commit to the bus, each on its own
// goroutine with its own bounded queue (events.Options): the downstream
// sender, the master data's waiting notices, the order model, alerts and
// the dashboard's live feed. The replica feed subscribed itself
// (replica.New).
func (s *Server) follow() {
	s.bus.Subscribe("downstream", func(_ context.Context, ev events.Event) {
		for _, wh := range ev.Warehouses() {
			s.down.Changed(wh)
		}
	}, events.Options{Resync: func(context.Context) { s.down.Changed("") }})
	s.bus.Subscribe("masterdata", s.md.follow, events.Options{Resync: s.md.resync})
	s.bus.Subscribe("dashboard", s.inv.followDashboard, events.Options{}) // live: what it missed is gone
	s.bus.Subscribe("orders", s.inv.followOrders, events.Options{Resync: func(context.Context) { s.inv.reload() }})
	// Conflicts whose alert a lost event did not raise get it from the
	// alerts' sweep of open conflicts.
	s.bus.Subscribe("alerts", s.followAlerts, events.Options{})
}

// followOrders keeps the order model's stock, orders and channels current.
func (inv *inventory) followOrders(_ context.Context, ev events.Event) {
	if ch := ev.Changes(); len(ch) > 0 {
		// The lot expiry index first: the model asks it when it recomputes.
		if err := inv.shelf.Changed(ch); err != nil {
			inv.log.Warn("lot expiry index not updated; re-read at the next resync", "err", err)
		}
		inv.orders.Changed(ch)
	}
	if len(ev.MasterData) > 0 { // sellable locations, safety stock, thresholds
		inv.forgetMasterData() // first: the recompute reads them again
		inv.orders.Invalidate()
	}
	if !ev.Remote {
		return // the model made its own order and channel changes
	}
	for _, o := range ev.Orders {
		inv.orders.OrderChanged(o.Warehouse, o.ID)
	}
	if ev.Channels {
		inv.orders.ChannelsChanged()
	}
}

// followAlerts raises the alerts of new conflicts and judges gateways'
// reorder notices against the whole warehouse.
func (s *Server) followAlerts(ctx context.Context, ev events.Event) {
	s.inv.followAlerts(ctx, ev)
	s.floor.checkShortPicks(ctx, ev)
}

func (inv *inventory) followAlerts(ctx context.Context, ev events.Event) {
	for _, c := range ev.AllConflicts() {
		inv.alerts.ObserveConflict(c)
	}
	for _, r := range ev.Reorders {
		rows, err := inv.st.Stock(ctx, store.StockQuery{Warehouse: r.Warehouse, SKU: r.SKU})
		if err != nil {
			inv.log.Warn("reorder notice not judged: stock not read; the next stock change of the sku judges it", "warehouse", r.Warehouse, "sku", r.SKU, "err", err)
			continue
		}
		var onHand int64
		for _, row := range rows {
			if row.SKU == r.SKU {
				onHand += row.OnHand
			}
		}
		inv.alerts.ObserveStock(r.Warehouse, r.SKU, onHand)
	}
}

// followDashboard shows batches, conflicts and orders on the live feed.
func (inv *inventory) followDashboard(_ context.Context, ev events.Event) {
	// With no dashboard open, nobody sees the events: build none (the
	// per-gateway series are kept all the same). One that connects
	// meanwhile shows the events that follow.
	live := inv.hub.Subscribers() > 0
	for _, b := range ev.Batches {
		if live {
			inv.hub.Publish("batch", feedEvent(b))
		}
		if b.Gateway != protocol.ServerOrigin {
			inv.series.Applied(b.Warehouse, b.Gateway, b.Applied, b.Quarantined)
		}
	}
	if !live {
		return
	}
	for _, c := range ev.AllConflicts() {
		inv.hub.Publish("conflict", c)
	}
	for _, o := range ev.Orders {
		if o.Detail != nil {
			inv.hub.Publish("order", map[string]any{"event": o.Change, "order": json.RawMessage(o.Detail)})
		}
	}
}

type keyValue struct {
	Location string `json:"location"`
	SKU      string `json:"sku"`
	Lot      string `json:"lot,omitempty"`
	OnHand   int64  `json:"on_hand"`
	Owner    string `json:"owner,omitempty"`
	Status   string `json:"status"`
}

// feedEvent is the dashboard's "batch" event of an applied batch: the
// batch's figures and the last value of each key it changed.
func feedEvent(b events.Batch) map[string]any {
	at := map[ledger.Key]int{}
	keys := []keyValue{}
	for _, ch := range b.Changes {
		kv := keyValue{Location: ch.Key.Location, SKU: ch.Key.SKU, Lot: ch.Key.Lot, OnHand: ch.After, Owner: ch.Key.Owner, Status: ch.Key.Status.String()}
		if i, ok := at[ch.Key]; ok {
			keys[i] = kv
			continue
		}
		at[ch.Key] = len(keys)
		keys = append(keys, kv)
	}
	return map[string]any{"warehouse": b.Warehouse, "gateway": b.Gateway, "applied": b.Applied, "quarantined": b.Quarantined, "watermark": b.WM, "changes": keys}
}
