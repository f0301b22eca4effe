// Package session turns a device's scans into operations. Each device has
// one open session at most (receive, put-away, pick, count, move, adjust);
// Step is a pure function from the device's state and one scan to a verdict,
// the ops to commit and the new state, so the caller can write ops and state
// in one durable transaction before the operator hears the beep.
package session

import (
	"fmt"
	"strings"
	"time"

	"github.com/shelfsync/shelfsync/drivers/scan"
	"github.com/shelfsync/shelfsync/protocol"
)

// Kind is a session kind.
type Kind string

// Session kinds, named as the CMD: labels that start them.
const (
	Receive Kind = "RECEIVE"
	Putaway Kind = "PUTAWAY"
	Pick    Kind = "PICK"
	Count   Kind = "COUNT"
	Move    Kind = "MOVE"
	Adjust  Kind = "ADJUST"
	Hold    Kind = "HOLD"    // available → hold, one status op per item scan
	Release Kind = "RELEASE" // hold → available
	Damage  Kind = "DAMAGE"  // available (or hold) → damaged
	Pack    Kind = "PACK"    // check an order's picked units, then ship it (pack.go)
)

// Input is one decoded scan.
type Input struct {
	Kind    scan.Kind `cbor:"1,keyasint"`           // what the scan means (docs/DESIGN.md, "Scan vocabulary")
	Command string    `cbor:"2,keyasint,omitempty"` // RECEIVE … ADJUST, DONE, CANCEL
	Value   string    `cbor:"3,keyasint,omitempty"` // location, PO, order, task, lot, reason, operator, owner
	Qty     int64     `cbor:"4,keyasint,omitempty"` // QTY: value, or (30)/(37) inside an item barcode
	GTIN    string    `cbor:"5,keyasint,omitempty"` // GTIN-14 of an item
	SKU     string    `cbor:"6,keyasint,omitempty"` // SKU: label, or the catalog's sku for GTIN
	Lot     string    `cbor:"7,keyasint,omitempty"` // (10) inside an item barcode
	Expiry  string    `cbor:"8,keyasint,omitempty"` // YYYY-MM-DD from (17)
	Raw     string    `cbor:"9,keyasint,omitempty"` // the scanned text
}

// Verdict is what the operator hears.
type Verdict string

// Verdicts.
const (
	Good Verdict = "good"
	Bad  Verdict = "bad"
	Warn Verdict = "warn" // accepted with a discrepancy (distinct beep)
)

// Station is the persisted state of one scanning device as the operator
// sees it: who is logged in, and the open session. (The port itself is
// drivers/device.Device.)
type Station struct {
	Operator string `cbor:"1,keyasint,omitempty"`
	Session  *State `cbor:"2,keyasint,omitempty"`
}

// State is an open session.
type State struct {
	Kind     Kind                 `cbor:"1,keyasint"`
	Location string               `cbor:"2,keyasint,omitempty"` // current (from) location
	To       string               `cbor:"3,keyasint,omitempty"`
	PO       string               `cbor:"4,keyasint,omitempty"`
	Order    string               `cbor:"5,keyasint,omitempty"`
	Task     string               `cbor:"6,keyasint,omitempty"`
	Reason   string               `cbor:"7,keyasint,omitempty"`
	NextQty  int64                `cbor:"8,keyasint,omitempty"`
	NextLot  string               `cbor:"9,keyasint,omitempty"`
	Lines    []protocol.CountLine `cbor:"10,keyasint,omitempty"` // count accumulator
	Carried  []Carried            `cbor:"11,keyasint,omitempty"` // move/put-away items awaiting their destination
	Raw      []string             `cbor:"12,keyasint,omitempty"`
	Started  int64                `cbor:"13,keyasint"` // Unix ms
	LastScan int64                `cbor:"14,keyasint"` // Unix ms
	// Suggest is the bin slotting suggests for the carried items (put-away).
	Suggest string `cbor:"15,keyasint,omitempty"`
	// Pallets are the SSCCs received in this session (a second scan of
	// the same label is refused).
	Pallets []string `cbor:"16,keyasint,omitempty"`
	// Owner is the owner of an OWNER: scan: whose units the items scanned
	// next are, where the location has no owner.
	Owner string `cbor:"17,keyasint,omitempty"`
	// Pending is an item scan waiting for an OWNER: scan (its GTIN is
	// held for the owners in Asked and nothing told them apart); nothing
	// of it is committed until then.
	Pending *Input   `cbor:"18,keyasint,omitempty"`
	Asked   []string `cbor:"19,keyasint,omitempty"`
	// Outbound is the outbound label (SSCC) scanned in a pack session.
	Outbound string `cbor:"20,keyasint,omitempty"`
}

// Carried is an item picked up in a move or put-away, awaiting LOC:to.
type Carried struct {
	SKU   string `cbor:"1,keyasint"`
	Lot   string `cbor:"2,keyasint,omitempty"`
	Qty   int64  `cbor:"3,keyasint"`
	Raw   string `cbor:"4,keyasint,omitempty"`
	Owner string `cbor:"5,keyasint,omitempty"`
	// SSCC is the pallet the item was taken with (a pallet label scan).
	SSCC string `cbor:"6,keyasint,omitempty"`
}

// Env is what Step needs from the gateway.
type Env struct {
	Device       string
	ReceivingLoc string // default location of receive sessions and put-away from
	Now          time.Time
	IdleTimeout  time.Duration // 0: no timeout
	// Data is the master data, POs, tasks and stock Step checks scans
	// against; nil behaves as NoData (every scan is taken at face value).
	Data Lookup
}

// Outcome is the result of one scan.
type Outcome struct {
	Verdict Verdict
	Reason  string // why (bad/warn) or what happened (good)
	Ops     []protocol.Op
	Station Station // new station state (persist when Changed)
	Changed bool
	Expect  string // what the operator should scan next
	// Notices are records for the server committed with the ops (receipt
	// and task closes).
	Notices []protocol.Notice
}

func bad(d Station, format string, args ...any) Outcome {
	return Outcome{Verdict: Bad, Reason: fmt.Sprintf(format, args...), Station: d, Expect: Expect(d.Session)}
}

func good(d Station, reason string, ops ...protocol.Op) Outcome {
	return Outcome{Verdict: Good, Reason: reason, Ops: ops, Station: d, Changed: true, Expect: Expect(d.Session)}
}

func warn(d Station, reason string, ops ...protocol.Op) Outcome {
	o := good(d, reason, ops...)
	o.Verdict = Warn
	return o
}

// Step applies one scan to a device's state. It never mutates d.
func Step(d Station, in Input, env Env) Outcome {
	d = clone(d)
	now := env.Now.UnixMilli()
	if s := d.Session; s != nil && env.IdleTimeout > 0 && env.Now.Sub(time.UnixMilli(s.LastScan)) > env.IdleTimeout {
		d.Session = nil // idle too long: abandoned without committing
		if in.Kind != scan.KindCommand || !isStart(in.Command) {
			out := bad(d, "%s session timed out after %s idle and was abandoned; nothing from it was committed", s.Kind, env.IdleTimeout)
			out.Changed = true
			return out
		}
	}
	switch in.Kind {
	case scan.KindOperator:
		d.Operator = in.Value
		return good(d, "operator "+in.Value+" logged in")
	case scan.KindCommand:
		return command(d, in, env, now)
	}
	s := d.Session
	if s == nil {
		if in.Kind == scan.KindOwner {
			return bad(d, "OWNER: belongs in a session: scan a CMD: label first, then OWNER:%s", in.Value)
		}
		return bad(d, "no open session: scan a CMD: label (RECEIVE, PUTAWAY, PICK, COUNT, MOVE, ADJUST, HOLD, RELEASE, DAMAGE, PACK) first")
	}
	s.LastScan = now
	if s.Pending != nil && in.Kind != scan.KindOwner {
		return bad(d, "GTIN %s waits for its owner: scan OWNER:%s (or CMD:CANCEL) before anything else", s.Pending.GTIN, strings.Join(s.Asked, " or OWNER:"))
	}
	switch in.Kind {
	case scan.KindOwner:
		return ownerScan(d, in, env)
	case scan.KindQty:
		if in.Qty == 0 || (in.Qty < 0 && s.Kind != Adjust) {
			return bad(d, "quantity %d is not allowed in a %s session", in.Qty, s.Kind)
		}
		if in.Qty > protocol.MaxOpQty || in.Qty < -protocol.MaxOpQty {
			return bad(d, "quantity %d is beyond ±%d: scan a smaller quantity", in.Qty, protocol.MaxOpQty)
		}
		s.NextQty = in.Qty
		return good(d, fmt.Sprintf("next quantity %d", in.Qty))
	case scan.KindLot:
		s.NextLot = in.Value
		return good(d, "next lot "+in.Value)
	case scan.KindLocation:
		return location(d, in, env)
	case scan.KindPO:
		return poScan(d, in, env)
	case scan.KindOrder, scan.KindTask:
		if s.Kind == Pack {
			return packOrder(d, in, env)
		}
		return taskScan(d, in, env)
	case scan.KindReason:
		if s.Kind != Adjust && !s.Kind.movesStatus() {
			return bad(d, "REASON: only belongs in an ADJUST, HOLD, RELEASE or DAMAGE session")
		}
		s.Reason = strings.ToUpper(in.Value)
		return good(d, "reason "+s.Reason)
	case scan.KindItem:
		return item(d, in, env)
	case scan.KindPallet:
		return pallet(d, in, env)
	}
	return bad(d, "scan kind %q not understood", in.Kind)
}

func isStart(cmd string) bool {
	switch Kind(cmd) {
	case Receive, Putaway, Pick, Count, Move, Adjust, Hold, Release, Damage, Pack:
		return true
	}
	return false
}

func clone(d Station) Station {
	if d.Session != nil {
		s := *d.Session
		s.Lines = append([]protocol.CountLine(nil), s.Lines...)
		s.Carried = append([]Carried(nil), s.Carried...)
		s.Raw = append([]string(nil), s.Raw...)
		s.Pallets = append([]string(nil), s.Pallets...)
		s.Asked = append([]string(nil), s.Asked...)
		if s.Pending != nil {
			p := *s.Pending
			s.Pending = &p
		}
		d.Session = &s
	}
	return d
}
