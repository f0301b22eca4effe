// Package conflicts owns the detection and the lifecycle of the conflicts of
// docs/DESIGN.md ("Conflicts"): negative stock, over-picks, count races, count
// variances, receipt discrepancies, quarantined ops and oversells.
//
// A Detector is fed every op the server merges, right after ledger.Apply and
// in the same transaction, and keeps the conflicts in a Store. Detection is
// incremental — the work per op is proportional to what the op touches — and
// a function of the op set: whatever the arrival order, the conflicts that
// hold at the end are the ones Compute finds from scratch. A conflict whose
// condition stops holding (stock back at or above zero, a late op that
// explains a count) is kept, with status cleared, for audit; it is reopened
// when the condition holds again. Nothing is resolved away silently: only
// Resolve, on behalf of a person, marks a conflict resolved — at once for
// accept and adjust, whose work the resolution itself does; a recount
// leaves it acknowledged until the count is scanned (RecountDone).
package conflicts

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
)

// Kind is the kind of a conflict.
type Kind string

// Conflict kinds (docs/DESIGN.md, "Conflicts").
const (
	KindNegativeStock      Kind = "negative-stock"
	KindOverPick           Kind = "over-pick"
	KindCountRace          Kind = "count-race"
	KindVariance           Kind = "variance"
	KindReceiptDiscrepancy Kind = "receipt-discrepancy"
	KindQuarantinedOp      Kind = "quarantined-op"
	KindOversell           Kind = "oversell"
)

// Status is where a conflict is in its lifecycle.
type Status string

// Conflict statuses.
const (
	StatusOpen         Status = "open"         // the condition holds and nobody resolved it
	StatusAcknowledged Status = "acknowledged" // a person asked for a recount; it is not scanned yet
	StatusCleared      Status = "cleared"      // the condition no longer holds; kept for audit
	StatusResolved     Status = "resolved"     // a person resolved it, and its work is done
)

// Resolutions a person may choose.
const (
	ResolutionAccept  = "accept"  // keep the records as they are
	ResolutionAdjust  = "adjust"  // the server issues an adjust op
	ResolutionRecount = "recount" // the server issues a count task
)

// Errors returned by Resolve.
var (
	// ErrNotFound reports an unknown conflict ID.
	ErrNotFound = errors.New("conflicts: no such conflict")
	// ErrResolved reports a conflict that is already resolved.
	ErrResolved = errors.New("conflicts: conflict already resolved")
	// ErrResolution reports a resolution other than accept, adjust or recount.
	ErrResolution = errors.New("conflicts: resolution must be accept, adjust or recount")
)

// OpRef names one op.
type OpRef struct {
	WH  string       `json:"warehouse"`
	GW  string       `json:"gateway"`
	Seq uint64       `json:"seq"`
	HLC protocol.HLC `json:"hlc"`
}

// Order returns the op's place in the merge order.
func (r OpRef) Order() ledger.Order { return ledger.Order{HLC: r.HLC, GW: r.GW, Seq: r.Seq} }

func refOf(wh string, o ledger.Order) OpRef { return OpRef{WH: wh, GW: o.GW, Seq: o.Seq, HLC: o.HLC} }

func compareRefs(a, b OpRef) int {
	if c := a.Order().Compare(b.Order()); c != 0 {
		return c
	}
	return cmp.Compare(a.WH, b.WH)
}

// sortRefs sorts refs in merge order and drops duplicates.
func sortRefs(refs []OpRef) []OpRef {
	slices.SortFunc(refs, compareRefs)
	return slices.Compact(refs)
}

// Conflict is one detected conflict. ID is a function of the kind and the
// subject, so the same conflict gets the same ID whatever the arrival order.
type Conflict struct {
	ID        string `json:"id"`
	Kind      Kind   `json:"kind"`
	Status    Status `json:"status"`
	Holds     bool   `json:"holds"` // the condition holds in the current op set
	Warehouse string `json:"warehouse"`
	Location  string `json:"location,omitempty"`
	SKU       string `json:"sku,omitempty"`
	Lot       string `json:"lot,omitempty"`
	Owner     string `json:"owner,omitempty"`
	// StockStatus is the status of the stock key (hold, damaged, …);
	// absent for available stock.
	StockStatus protocol.StockStatus `json:"stock_status,omitempty"`
	Order       string               `json:"order,omitempty"`
	OrderLine   uint32               `json:"order_line,omitempty"`
	// Ops are the ops involved, in merge order.
	Ops []OpRef `json:"ops"`
	// Expected and Observed depend on the kind: variance, records before
	// the count vs counted; negative-stock, 0 vs on-hand; over-pick, line
	// quantity vs picked; oversell, available vs reserved.
	Expected        int64  `json:"expected"`
	Observed        int64  `json:"observed"`
	Detail          string `json:"detail"`
	SuggestedAction string `json:"suggested_action,omitempty"`
	Resolution      string `json:"resolution,omitempty"`
	ResolvedBy      string `json:"resolved_by,omitempty"`
	// RecountTask names the count task a recount resolution sent, and
	// RecountAfter when it was asked for: a count of the location stamped
	// after it is the recount (RecountDone).
	RecountTask  string       `json:"recount_task,omitempty"`
	RecountAfter protocol.HLC `json:"recount_after,omitempty"`
	// CreatedHLC is where, in merge order, the condition arose.
	CreatedHLC protocol.HLC `json:"created_hlc"`
}

// Key returns the stock key the conflict is about (Location and SKU may be
// empty).
func (c *Conflict) Key() ledger.Key {
	return ledger.Key{WH: c.Warehouse, Location: c.Location, SKU: c.SKU, Lot: c.Lot, Owner: c.Owner, Status: c.StockStatus}
}

// esc keeps the "/" that separates ID parts out of free-form codes.
func esc(s string) string { return url.PathEscape(s) }

func keyPath(k ledger.Key) string {
	s := k.WH + "/" + esc(k.Location) + "/" + esc(k.SKU)
	if k.Lot != "" {
		s += "/" + esc(k.Lot)
	}
	if k.Owner != "" || k.Status != protocol.StatusAvailable { // PathEscape escapes every ";" in a code
		s += ";" + esc(k.Owner) + ";" + k.Status.String()
	}
	return s
}

func opPath(wh string, o ledger.Order) string { return fmt.Sprintf("%s/%s/%d", wh, o.GW, o.Seq) }

// NegativeStockID returns the ID of the negative-stock conflict of k.
func NegativeStockID(k ledger.Key) string { return "neg:" + keyPath(k) }

// OverPickID returns the ID of the over-pick conflict of an order line.
func OverPickID(l OrderLineKey) string {
	return fmt.Sprintf("overpick:%s/%s/%d", l.WH, esc(l.Order), l.Line)
}

// CountRaceID returns the ID of the count-race conflict of a count op.
func CountRaceID(wh string, count ledger.Order) string { return "race:" + opPath(wh, count) }

// VarianceID returns the ID of the variance conflict of a count op on k.
func VarianceID(count ledger.Order, k ledger.Key) string {
	return "var:" + opPath(k.WH, count) + ":" + keyPath(k)
}

// ReceiptID returns the ID of the receipt-discrepancy conflict of a receive.
func ReceiptID(wh string, o ledger.Order) string { return "rcpt:" + opPath(wh, o) }

// OrderLineKey names a customer order line of a warehouse.
type OrderLineKey struct {
	WH, Order string
	Line      uint32
}

// Quarantined returns the quarantined-op conflict for op seq of wh/gw, kept
// aside for reason. The server records it with Raise.
func Quarantined(wh, gw string, seq uint64, reason string) Conflict {
	return Conflict{
		ID: fmt.Sprintf("quar:%s/%s/%d", wh, gw, seq), Kind: KindQuarantinedOp, Status: StatusOpen, Holds: true,
		Warehouse: wh, Ops: []OpRef{{WH: wh, GW: gw, Seq: seq}},
		Detail:          "op kept aside, not applied: " + reason,
		SuggestedAction: "fix master data then re-apply, or reject",
	}
}

// Oversell returns the oversell conflict of sku in wh: reservations exceed
// what is available to sell, as of at. The server's order model raises it
// with Raise, and clears it by raising it again with reserved ≤ available.
func Oversell(wh, sku string, reserved, available int64, at protocol.HLC) Conflict {
	return Conflict{
		ID: "oversell:" + wh + "/" + esc(sku), Kind: KindOversell, Status: StatusOpen, Holds: reserved > available,
		Warehouse: wh, SKU: sku, Expected: available, Observed: reserved, CreatedHLC: at,
		Detail: fmt.Sprintf("reservations of %s (%d) exceed available-to-sell (%d)", sku, reserved, available),
	}
}

// Raise records c, built by Quarantined, Oversell or the detector, with the
// lifecycle rules: a new conflict is stored only when c.Holds; an open one
// whose condition stopped holding is cleared; a cleared one, or a resolved
// one whose condition had stopped holding, is reopened when it holds again.
// It reports whether anything was written.
func Raise(st Store, c Conflict) (Conflict, bool, error) {
	old, ok, err := st.GetConflict(c.ID)
	if err != nil {
		return Conflict{}, false, fmt.Errorf("get conflict %s: %w", c.ID, err)
	}
	var next Conflict
	switch {
	case !ok && !c.Holds:
		return Conflict{}, false, nil
	case !ok:
		next = c
		next.Status, next.Resolution, next.ResolvedBy, next.RecountTask, next.RecountAfter = StatusOpen, "", "", "", 0
	case c.Holds:
		next = c
		next.Status, next.Resolution, next.ResolvedBy, next.RecountTask, next.RecountAfter = old.Status, old.Resolution, old.ResolvedBy, old.RecountTask, old.RecountAfter
		if old.Status == StatusCleared || (old.Status == StatusResolved && !old.Holds) {
			next.Status, next.Resolution, next.ResolvedBy, next.RecountTask, next.RecountAfter = StatusOpen, "", "", "", 0
		}
	default: // an existing conflict no longer holds: keep its facts for audit
		next = old
		next.Holds = false
		if old.Status == StatusOpen {
			next.Status = StatusCleared
		}
	}
	if ok && equal(old, next) {
		return old, false, nil
	}
	if err := st.PutConflict(next); err != nil {
		return Conflict{}, false, fmt.Errorf("put conflict %s: %w", c.ID, err)
	}
	return next, true, nil
}

func equal(a, b Conflict) bool {
	if !slices.Equal(a.Ops, b.Ops) {
		return false
	}
	a.Ops, b.Ops = nil, nil
	return reflect.DeepEqual(a, b)
}

// Resolve marks conflict id resolved by a person (by) with resolution
// accept or adjust. A recount marks it acknowledged instead, naming the
// count task (task) asked for at hlc: it is resolved when that count is
// scanned (RecountDone). Issuing the op or the task that carries the
// resolution to the gateways is the caller's.
func Resolve(st Store, id, resolution, by string) (Conflict, error) {
	return ResolveAt(st, id, resolution, by, "", 0)
}

// ResolveAt is Resolve with the recount task and when it was asked for.
func ResolveAt(st Store, id, resolution, by, task string, at protocol.HLC) (Conflict, error) {
	switch resolution {
	case ResolutionAccept, ResolutionAdjust, ResolutionRecount:
	default:
		return Conflict{}, fmt.Errorf("resolve %s with %q: %w", id, resolution, ErrResolution)
	}
	c, ok, err := st.GetConflict(id)
	if err != nil {
		return Conflict{}, fmt.Errorf("resolve %s: %w", id, err)
	}
	if !ok {
		return Conflict{}, fmt.Errorf("resolve %s: %w", id, ErrNotFound)
	}
	if c.Status == StatusResolved {
		return c, fmt.Errorf("resolve %s: %w (%s by %s)", id, ErrResolved, c.Resolution, c.ResolvedBy)
	}
	c.Status, c.Resolution, c.ResolvedBy = StatusResolved, resolution, by
	if resolution == ResolutionRecount {
		c.Status, c.RecountTask, c.RecountAfter = StatusAcknowledged, task, at
	}
	if err := st.PutConflict(c); err != nil {
		return Conflict{}, fmt.Errorf("resolve %s: %w", id, err)
	}
	return c, nil
}

// RecountDone marks a conflict waiting for its recount resolved when count
// (a count op's place in the merge order) is stamped after the recount was
// asked for; it reports whether it did.
func RecountDone(st Store, id string, count ledger.Order) (Conflict, bool, error) {
	c, ok, err := st.GetConflict(id)
	if err != nil || !ok || c.Status != StatusAcknowledged || c.Resolution != ResolutionRecount {
		return c, false, err
	}
	if count.HLC < c.RecountAfter {
		return c, false, nil // counted before the recount was asked for
	}
	c.Status = StatusResolved
	if err := st.PutConflict(c); err != nil {
		return Conflict{}, false, fmt.Errorf("recount of %s: %w", id, err)
	}
	return c, true, nil
}
