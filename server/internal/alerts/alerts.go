// Package alerts raises the alerts a person acts on — reorder point
// crossings, receipt discrepancies, conflicts, oversells, gateways offline
// too long or with a growing backlog — keeps them in the server's records
// (store.Records: Badger or PostgreSQL) until someone acknowledges them.
// What must not be lost with a new or acknowledged alert (its webhook
// deliveries) is written by Config.Within in the transaction that stores
// it; what is live and best effort (the {root}/{wh}/alerts topic, the
// dashboard) follows the commit through Config.Publish.
//
// Reorder: per sku and warehouse a reorder point, with date-bounded
// seasonal overrides. An alert fires once when on-hand falls to or below
// the point and the sku is armed; it re-arms only when on-hand rises above
// the point again. The suggested order quantity is max − on-hand − on-order.
//
// Replicas: several servers may run a Service each over one database. The
// state that makes an alert fire once per crossing (a reorder point's
// armed flag, a conflict's or a gateway episode's standing flag) is checked
// and set in the transaction that stores the alert, so when two replicas
// observe the same crossing one stores the alert and the other finds it
// stored; only the replica whose transaction raised (or acknowledged) an
// alert publishes it. Alert ids come from a counter in that transaction:
// unique across replicas, and ordered by creation time. The backlog
// samples of the gateway check are kept per replica, in memory.
//
// Conflicts are observed by the replica that raised them, after the
// commit; one that died in between would leave a conflict without its
// alert, so Run also sweeps the open conflicts (Config.OpenConflicts, on
// the replica Config.Sweep names) and raises what is missing, once.
package alerts

import (
	"errors"
	"fmt"
	"time"
)

// Kind is the kind of an alert.
type Kind string

// Alert kinds.
const (
	KindReorder            Kind = "reorder"
	KindReceiptDiscrepancy Kind = "receipt-discrepancy"
	KindConflict           Kind = "conflict"
	KindOversell           Kind = "oversell"
	KindGatewayOffline     Kind = "gateway-offline"
	KindGatewayBacklog     Kind = "gateway-backlog"
	KindGatewayClock       Kind = "gateway-clock"
)

// Status is where an alert is in its life.
type Status string

// Alert statuses.
const (
	StatusOpen         Status = "open"
	StatusAcknowledged Status = "acknowledged"
)

// Errors.
var (
	// ErrNotFound reports an unknown alert.
	ErrNotFound = errors.New("alerts: no such alert")
	// ErrAcknowledged reports an alert someone already acknowledged.
	ErrAcknowledged = errors.New("alerts: already acknowledged")
	// ErrInvalid reports a request that breaks a rule (an ack without a name).
	ErrInvalid = errors.New("alerts: invalid request")
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

// Suggested returns the order quantity for on-hand and on-order: max −
// on-hand − on-order, or the reorder quantity when no max is set; never
// negative.
func (t Threshold) Suggested(onHand, onOrder int64) int64 {
	q := t.ReorderQty
	if t.Max > 0 {
		q = t.Max - onHand - onOrder
	}
	return max(q, 0)
}

// Thresholds looks up reorder settings; the master data implements it.
type Thresholds interface {
	Threshold(wh, sku string) (Threshold, bool)
}

// ThresholdsFunc adapts a function to Thresholds.
type ThresholdsFunc func(wh, sku string) (Threshold, bool)

// Threshold implements Thresholds.
func (f ThresholdsFunc) Threshold(wh, sku string) (Threshold, bool) { return f(wh, sku) }
