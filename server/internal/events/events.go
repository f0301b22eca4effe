// Package events carries what each committed transaction did to the parts
// of the server that follow it: the downstream sender, the order model and
// availability, alerts, webhooks, the dashboard's live feed and the
// replica feed.
//
// Whoever commits a transaction (the apply core for gateways' batches and
// server-origin ops, the order model for orders, the master data for its
// records) publishes one Event after the commit, on a Bus. Subscribers
// receive every event in publish order on a goroutine of their own, so a
// slow subscriber never holds up the apply path; one that falls too far
// behind loses its queue and is told to resync (bus.go).
package events

import (
	"encoding/json"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
)

// Event is what one committed transaction did. Subscribers share it: they
// must not modify it or anything it points to.
type Event struct {
	// Batches is the ledger work of the transaction: one entry per
	// gateway batch it applied (a group commit applies several), or one
	// whose Gateway is protocol.ServerOrigin for ops the server issued
	// (an API op, a conflict resolution, a quarantine action).
	Batches []Batch
	// Conflicts the transaction created or changed outside any batch
	// (over-picks found when an order is written, resolutions, oversells).
	Conflicts []conflicts.Conflict
	// Orders the transaction created or changed.
	Orders []Order
	// MasterData lists the warehouses whose master data or settings the
	// transaction changed (sellable locations, safety stock, thresholds):
	// what the order model computes from them must be computed again, and
	// the warehouse's downstream log may have grown.
	MasterData []string
	// Tasks lists the warehouses whose tasks the transaction created or
	// changed (their downstream log grew).
	Tasks []string
	// Channels reports that a sales channel's allocation changed.
	Channels bool
	// Reorders are the reorder notices of gateways the transaction took
	// that opened a reorder alert: the server judges each sku against its
	// whole warehouse's stock.
	Reorders []Reorder
	// Remote reports an event another replica told of (the replica feed):
	// this server did not commit it, Ops are nil, and each Change carries
	// only its Key and After. The replica feed does not repeat it.
	Remote bool
}

// Batch is one gateway's part of a committed transaction.
type Batch struct {
	Warehouse string
	Gateway   string // protocol.ServerOrigin for server-issued ops
	// WM is the gateway's watermark after the commit (0 for the server).
	WM          uint64
	Applied     int // ops merged into the ledger
	Quarantined int // ops kept aside
	// Ops are the ops merged, in the order they were applied; nil when
	// the producer does not keep them.
	Ops []protocol.Op
	// Changes are the stock keys the batch touched, one entry per effect,
	// in apply order (a key may appear more than once; the last is its
	// value after the commit).
	Changes []ledger.Change
	// Conflicts the batch created or changed.
	Conflicts []conflicts.Conflict
}

// Order is an order the transaction created or changed.
type Order struct {
	Warehouse string
	ID        string
	Change    string // created, shipped, cancelled, …
	// Detail is the order as the API shows it (JSON), for the live feed;
	// nil on Remote events.
	Detail json.RawMessage
}

// Reorder is a sku a gateway found at or under its reorder point.
type Reorder struct {
	Warehouse string
	SKU       string
}

// Warehouses returns the distinct warehouses the event touched, in first
// appearance order.
func (e *Event) Warehouses() []string {
	var out []string
	seen := map[string]bool{}
	add := func(wh string) {
		if wh != "" && !seen[wh] {
			seen[wh] = true
			out = append(out, wh)
		}
	}
	for _, b := range e.Batches {
		add(b.Warehouse)
	}
	for _, c := range e.Conflicts {
		add(c.Warehouse)
	}
	for _, o := range e.Orders {
		add(o.Warehouse)
	}
	for _, wh := range e.MasterData {
		add(wh)
	}
	for _, r := range e.Reorders {
		add(r.Warehouse)
	}
	for _, wh := range e.Tasks {
		add(wh)
	}
	return out
}

// Changes returns the stock changes of every batch, in order.
func (e *Event) Changes() []ledger.Change {
	if len(e.Batches) == 1 {
		return e.Batches[0].Changes
	}
	var out []ledger.Change
	for _, b := range e.Batches {
		out = append(out, b.Changes...)
	}
	return out
}

// AllConflicts returns the conflicts of every batch, then the event's own.
func (e *Event) AllConflicts() []conflicts.Conflict {
	var out []conflicts.Conflict
	for _, b := range e.Batches {
		out = append(out, b.Conflicts...)
	}
	return append(out, e.Conflicts...)
}

// Empty reports whether the event says nothing.
func (e *Event) Empty() bool {
	return len(e.Batches) == 0 && len(e.Conflicts) == 0 && len(e.Orders) == 0 && len(e.MasterData) == 0 && !e.Channels && len(e.Reorders) == 0 && len(e.Tasks) == 0
}

// weight is what the event counts for against a subscriber's queue bound:
// roughly the number of records it holds.
func (e *Event) weight() int {
	n := 1 + len(e.Conflicts) + len(e.Orders) + len(e.MasterData) + len(e.Reorders) + len(e.Tasks)
	for _, b := range e.Batches {
		n += 1 + len(b.Ops) + len(b.Changes) + len(b.Conflicts)
	}
	return n
}
