// Package orders owns customer orders taken from sales channels and what
// they do to stock that is not yet picked: reservations, available-to-sell
// (ATS) per sku and warehouse, and the share of it each channel is offered.
//
// An order reserves its lines at once. A pick op that names the order
// (Refs.Order, and the line when the gateway knows it) consumes the
// reservation of its line; shipping or cancelling releases what is left. A
// reservation that cannot be met is still taken — the order exists — but
// it raises an oversell conflict instead of failing silently.
//
//	ATS(wh, sku) = on-hand in sellable locations − open reservations − safety stock
//	channel(sku) = min(⌊pool × share⌋, cap),  pool = Σ over the channel's warehouses of max(0, ATS)
//
// Availability is recomputed for what changed, debounced, and handed to
// Config.Publish as a full snapshot per channel (for a retained MQTT message
// and a webhook). Every snapshot carries Seq, the reservation sequence it
// reflects: an order accepted with Seq s is counted in every snapshot with
// Seq ≥ s.
//
// Several server replicas may share one database, each with its own
// Service: any of them takes orders (the sequence is one counter in the
// store, and a replica reads the orders the others wrote before it claims a
// sequence), and each keeps its model current (Changed, OrderChanged,
// ChannelsChanged), and reads everything again periodically or when told
// it may have missed something (Reload). Only the active one (SetActive)
// publishes snapshots and raises oversell conflicts. An oversell is
// reservations beyond what can ship: a sku that reserves nothing is never
// oversold, however far below zero its stock went.
//
// An order change's events that must not be lost (its webhooks) are
// written by Config.OnOrderTx in the transaction that writes the order;
// Config.OnOrder follows the commit.
package orders

import (
	"errors"
	"fmt"
	"strings"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Status is where an order is in its life.
type Status = store.OrderStatus

// Order statuses.
const (
	StatusOpen      Status = "open"      // reserving what is not yet picked
	StatusShipped   Status = "shipped"   // left the warehouse; nothing reserved
	StatusCancelled Status = "cancelled" // nothing reserved; picked units go back to stock by a person
	// StatusBackordered: taken, reserving nothing until stock arrives;
	// then released to picking (open) first come, first served.
	StatusBackordered Status = "backordered"
	// Checkout holds (Hold): units held for a channel's checkout.
	StatusHeld      Status = "held"      // reserving its lines until ExpiresMS
	StatusConverted Status = "converted" // an order took its reservation over
	StatusExpired   Status = "expired"   // expired: its units went back to the pool
)

// live reports whether an order with the status is still in the model
// (reserving, or waiting for stock).
func live(st Status) bool {
	return st == StatusOpen || st == StatusHeld || st == StatusBackordered
}

// reserving reports whether an order with the status holds units back
// from available-to-sell.
func reserving(st Status) bool { return st == StatusOpen || st == StatusHeld }

// Errors of the order operations.
var (
	// ErrNotFound reports an unknown order.
	ErrNotFound = errors.New("orders: no such order")
	// ErrInvalid reports a request that breaks a rule; the message says which.
	ErrInvalid = errors.New("orders: invalid request")
	// ErrConflict reports a request that contradicts an existing order (an
	// external id reused with other lines, a shipped order cancelled).
	ErrConflict = errors.New("orders: conflicts with an existing order")
	// ErrUnavailable reports an order or hold refused because what it asks
	// for cannot ship (a *Refusal says what is available).
	ErrUnavailable = errors.New("orders: not available")
)

// Line is one line of an order (Picked and Reserved are computed).
type Line = store.OrderLine

// Order is a customer order of one warehouse: the store's record, which
// the model fills with each line's Picked and Reserved.
type Order = store.Order

// NewOrder is a channel's request for an order.
type NewOrder struct {
	Warehouse  string `json:"warehouse"`
	Channel    string `json:"channel"`
	ExternalID string `json:"external_id"`
	// ID is the order id scanned on the floor (ORD:<id>); default
	// "{channel}-{external_id}".
	ID    string `json:"id,omitempty"`
	Lines []Line `json:"lines"`
	// Hold names a checkout hold of the channel (Service.Hold) that the
	// order converts: its units are the order's, whatever happened to
	// availability since.
	Hold string `json:"hold,omitempty"`
}

// Validate checks the request and fills defaults (ID, line numbers).
func (n *NewOrder) Validate() error {
	var errs []string
	if err := protocol.ValidateID(n.Warehouse); err != nil {
		errs = append(errs, "warehouse: "+err.Error())
	}
	if err := protocol.ValidateID(n.Channel); err != nil {
		errs = append(errs, "channel: "+err.Error())
	}
	if err := checkText("external_id", n.ExternalID); err != nil {
		errs = append(errs, err.Error())
	}
	if n.ID == "" && n.Channel != "" && n.ExternalID != "" {
		n.ID = n.Channel + "-" + n.ExternalID
	}
	if err := checkText("id", n.ID); err != nil {
		errs = append(errs, err.Error()+" (give a shorter id, or a shorter external_id)")
	}
	if n.Hold != "" {
		if err := checkText("hold", n.Hold); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(n.Lines) == 0 {
		errs = append(errs, "lines: at least one line is required")
	}
	if len(n.Lines) > 1000 {
		errs = append(errs, "lines: at most 1000")
	}
	seen := map[uint32]bool{}
	for i := range n.Lines {
		l := &n.Lines[i]
		if l.Line == 0 {
			l.Line = uint32(i + 1)
		}
		if seen[l.Line] {
			errs = append(errs, fmt.Sprintf("lines[%d]: line number %d appears twice", i, l.Line))
		}
		seen[l.Line] = true
		if err := checkText(fmt.Sprintf("lines[%d].sku", i), l.SKU); err != nil {
			errs = append(errs, err.Error())
		}
		if l.Lot != "" {
			if err := checkText(fmt.Sprintf("lines[%d].lot", i), l.Lot); err != nil {
				errs = append(errs, err.Error())
			}
		}
		if l.Qty <= 0 || l.Qty > 1_000_000_000 {
			errs = append(errs, fmt.Sprintf("lines[%d].qty: %d must be 1..1000000000", i, l.Qty))
		}
		l.Picked, l.Reserved, l.Elsewhere, l.Backordered = 0, 0, 0, 0
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "; "))
	}
	return nil
}

// sameLines reports whether a replayed request asks for the order o holds.
func (n *NewOrder) sameLines(o *Order) bool {
	if n.Warehouse != o.Warehouse || len(n.Lines) != len(o.Lines) {
		return false
	}
	for i, l := range n.Lines {
		m := o.Lines[i]
		if l.Line != m.Line || l.SKU != m.SKU || l.Lot != m.Lot || l.Qty != m.Qty {
			return false
		}
	}
	return true
}

func checkText(name, v string) error {
	if err := protocol.CheckField(name, v, true); err != nil {
		return err
	}
	if strings.ContainsAny(v, "/") || strings.Trim(v, ".") == "" {
		return fmt.Errorf("%s must not contain '/' nor be only dots", name)
	}
	return nil
}

// wholeIfReserving is what line j of o reserves before its picks are read.
func wholeIfReserving(o *Order, j int) int64 {
	if reserving(o.Status) {
		return o.Lines[j].Here()
	}
	return 0
}
