// Package alerts keeps the exceptions a person acts on that are not
// conflicts — reorder point crossings, gateways offline too long, with a
// growing backlog or a refused clock — one per cause, in the server's
// records (store.Records: Badger or PostgreSQL), and notifies the
// conflicts of package conflicts, which are exceptions of their own and
// not repeated as alerts.
//
// An alert's life (docs/DESIGN.md, "Exceptions"): it is raised open when
// its cause starts; a person may acknowledge it (still standing); it is
// cleared by the server when its cause is gone (the gateway is back, the
// stock is back above the reorder point), or resolved by a person. A cause
// has at most one standing alert: its state key holds the alert's id from
// the transaction that raises it until the cause is gone.
//
// What must not be lost with a change of an alert (its webhook deliveries
// and its message on the {root}/{wh}/alerts topic) is written by
// Config.Within in the transaction that stores it; what is live and best
// effort (the dashboard) follows the commit through Config.Publish. A
// conflict's opening and its end are notified the same way, once each
// (Config.ConflictWithin), without an alert item.
//
// Reorder: per sku and warehouse a reorder point, with date-bounded
// seasonal overrides. An alert fires only when a decrement crosses the
// point: the sku's last observed on-hand was above it and the new one is
// at or below it (a receipt that leaves stock below the point raises
// nothing; the first observation of a sku only records its side). It is
// cleared when on-hand rises above the point again. The suggested order
// quantity is protocol.Threshold.SuggestedOrder, the one formula.
//
// Replicas: several servers may run a Service each over one database. The
// state that makes an alert fire once per cause (a reorder point's side, a
// conflict's or a gateway episode's standing id) is checked and set in the
// transaction that stores the alert, so when two replicas observe the same
// crossing one stores the alert and the other finds it stored; only the
// replica whose transaction changed an alert publishes it. Alert ids come
// from a counter in that transaction: unique across replicas, and ordered
// by creation time. The backlog samples of the gateway check are kept per
// replica, in memory.
//
// Conflicts are observed by the replica that raised them, after the
// commit; one that died in between would leave a conflict unnotified, so
// Run also sweeps the open conflicts (Config.OpenConflicts, on the replica
// Config.Sweep names) and notifies what is missing, once.
package alerts

import (
	"errors"
	"fmt"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
)

// Kind is the kind of an alert.
type Kind string

// Alert kinds. KindConflict, KindReceiptDiscrepancy and KindOversell are
// no longer raised (conflicts notify on their own); alerts of those kinds
// stored by an older server are cleared by Run.
const (
	KindReorder            Kind = "reorder"
	KindReceiptDiscrepancy Kind = "receipt-discrepancy"
	KindConflict           Kind = "conflict"
	KindOversell           Kind = "oversell"
	KindGatewayOffline     Kind = "gateway-offline"
	KindGatewayBacklog     Kind = "gateway-backlog"
	KindGatewayClock       Kind = "gateway-clock"
	KindNearExpiry         Kind = "near-expiry" // a lot expires within the warehouse's horizon
	// KindShipRefused: a pack session shipped an order the server could
	// not ship (cancelled meanwhile, unknown, backordered): stop the parcel.
	KindShipRefused Kind = "ship-refused"
)

// Status is where an alert is in its life.
type Status string

// Alert statuses: open and acknowledged alerts stand (their cause is
// still there); cleared and resolved ones are closed.
const (
	StatusOpen         Status = "open"
	StatusAcknowledged Status = "acknowledged" // a person saw it; the cause is still there
	StatusCleared      Status = "cleared"      // the server saw the cause go
	StatusResolved     Status = "resolved"     // a person closed it
)

// Standing reports whether an alert of status st still stands.
func (st Status) Standing() bool { return st == StatusOpen || st == StatusAcknowledged }

// Errors.
var (
	// ErrNotFound reports an unknown alert.
	ErrNotFound = errors.New("alerts: no such alert")
	// ErrAcknowledged reports an alert someone already acknowledged.
	ErrAcknowledged = errors.New("alerts: already acknowledged")
	// ErrInvalid reports a request that breaks a rule (an ack without a name).
	ErrInvalid = errors.New("alerts: invalid request")
	// ErrClosed reports an alert that was cleared or resolved already.
	ErrClosed = errors.New("alerts: already closed")
)

// Alert is one alert.
type Alert struct {
	ID        string `json:"id" cbor:"1,keyasint"`
	Kind      Kind   `json:"kind" cbor:"2,keyasint"`
	Status    Status `json:"status" cbor:"3,keyasint"`
	Warehouse string `json:"warehouse" cbor:"4,keyasint"`
	SKU       string `json:"sku,omitempty" cbor:"5,keyasint,omitempty"`
	Location  string `json:"location,omitempty" cbor:"6,keyasint,omitempty"`
	Gateway   string `json:"gateway,omitempty" cbor:"7,keyasint,omitempty"`
	// Conflict and ConflictKind name the conflict behind a conflict,
	// oversell or receipt-discrepancy alert.
	Conflict     string `json:"conflict,omitempty" cbor:"8,keyasint,omitempty"`
	ConflictKind string `json:"conflict_kind,omitempty" cbor:"9,keyasint,omitempty"`
	Message      string `json:"message" cbor:"10,keyasint"`
	// Reorder figures.
	OnHand       int64 `json:"on_hand,omitempty" cbor:"11,keyasint,omitempty"`
	ReorderPoint int64 `json:"reorder_point,omitempty" cbor:"12,keyasint,omitempty"`
	ReorderQty   int64 `json:"reorder_qty,omitempty" cbor:"13,keyasint,omitempty"`
	Max          int64 `json:"max,omitempty" cbor:"14,keyasint,omitempty"`
	OnOrder      int64 `json:"on_order,omitempty" cbor:"15,keyasint,omitempty"`
	SuggestedQty int64 `json:"suggested_qty,omitempty" cbor:"16,keyasint,omitempty"`
	Seasonal     bool  `json:"seasonal,omitempty" cbor:"17,keyasint,omitempty"`
	// Backlog is a gateway's unacknowledged ops.
	Backlog   uint64 `json:"backlog,omitempty" cbor:"18,keyasint,omitempty"`
	CreatedMS int64  `json:"created_ms" cbor:"19,keyasint"`
	AckBy     string `json:"ack_by,omitempty" cbor:"20,keyasint,omitempty"`
	AckMS     int64  `json:"ack_ms,omitempty" cbor:"21,keyasint,omitempty"`
	AckNote   string `json:"ack_note,omitempty" cbor:"22,keyasint,omitempty"`
	// ClosedMS is when the alert was cleared (its cause gone) or resolved;
	// ResolvedBy and ResolveNote say who resolved it and why.
	ClosedMS    int64  `json:"closed_ms,omitempty" cbor:"23,keyasint,omitempty"`
	ResolvedBy  string `json:"resolved_by,omitempty" cbor:"24,keyasint,omitempty"`
	ResolveNote string `json:"resolve_note,omitempty" cbor:"25,keyasint,omitempty"`
	// Owner is the owner of the stock the alert is about (the item's
	// owner of a reorder alert, the lot's of a near-expiry one); "" for an
	// alert about no owner's data (a gateway's) or in a warehouse without
	// owners. A token bound to an owner sees only that owner's alerts.
	Owner string `json:"owner,omitempty" cbor:"26,keyasint,omitempty"`
}

// Threshold is the reorder setting of one sku in one warehouse.
type Threshold struct {
	ReorderPoint int64 `json:"reorder_point"`
	ReorderQty   int64 `json:"reorder_qty"`
	Max          int64 `json:"max"`
	SafetyStock  int64 `json:"safety_stock"`
	// Seasonal overrides apply on the days From..To (YYYY-MM-DD, both
	// inclusive, in UTC); the first that covers a day wins.
	Seasonal []Seasonal `json:"seasonal,omitempty"`
}

// Seasonal is a date-bounded override of a Threshold.
type Seasonal struct {
	From         string `json:"from"`
	To           string `json:"to"`
	ReorderPoint int64  `json:"reorder_point"`
	ReorderQty   int64  `json:"reorder_qty"`
	Max          int64  `json:"max"`
}

// On returns the threshold in effect on day, and whether a seasonal
// override made it.
func (t Threshold) On(day time.Time) (Threshold, bool) {
	d := day.UTC().Format(time.DateOnly)
	for _, s := range t.Seasonal {
		if s.From <= d && d <= s.To {
			out := t
			out.ReorderPoint, out.ReorderQty, out.Max, out.Seasonal = s.ReorderPoint, s.ReorderQty, s.Max, nil
			return out, true
		}
	}
	return t, false
}

// Validate checks the threshold's figures and override dates.
func (t Threshold) Validate() error {
	var errs []error
	if t.ReorderPoint < 0 || t.ReorderQty < 0 || t.Max < 0 || t.SafetyStock < 0 {
		errs = append(errs, errors.New("reorder_point, reorder_qty, max and safety_stock must be ≥ 0"))
	}
	for i, s := range t.Seasonal {
		f, err1 := time.Parse(time.DateOnly, s.From)
		to, err2 := time.Parse(time.DateOnly, s.To)
		if err1 != nil || err2 != nil || to.Before(f) {
			errs = append(errs, fmt.Errorf("seasonal[%d]: from and to must be YYYY-MM-DD with from ≤ to", i))
		}
	}
	return errors.Join(errs...)
}

// Suggested returns the order quantity for on-hand and on-order: the one
// formula, protocol.Threshold.SuggestedOrder.
func (t Threshold) Suggested(onHand, onOrder int64) int64 {
	return protocol.Threshold{ReorderPoint: t.ReorderPoint, ReorderQty: t.ReorderQty, Max: t.Max}.SuggestedOrder(onHand, onOrder)
}

// Thresholds looks up reorder settings; the master data implements it.
type Thresholds interface {
	Threshold(wh, sku string) (Threshold, bool)
}

// ThresholdsFunc adapts a function to Thresholds.
type ThresholdsFunc func(wh, sku string) (Threshold, bool)

// Threshold implements Thresholds.
func (f ThresholdsFunc) Threshold(wh, sku string) (Threshold, bool) { return f(wh, sku) }
