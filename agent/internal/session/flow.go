package session

import (
	"fmt"

	"github.com/shelfsync/shelfsync/protocol"
)

func command(d Device, in Input, env Env, now int64) Outcome {
	s := d.Session
	switch in.Command {
	case "CANCEL":
		if s == nil {
			return bad(d, "no open session to cancel")
		}
		d.Session = nil
		return good(d, fmt.Sprintf("%s session cancelled; nothing more committed", s.Kind))
	case "DONE":
		if s == nil {
			return bad(d, "no open session to finish")
		}
		return done(d, env)
	}
	if !isStart(in.Command) {
		return bad(d, "unknown command %q", in.Command)
	}
	if s != nil {
		return bad(d, "a %s session is open: scan CMD:DONE or CMD:CANCEL first", s.Kind)
	}
	ns := &State{Kind: Kind(in.Command), Started: now, LastScan: now}
	if ns.Kind == Receive || ns.Kind == Putaway {
		ns.Location = env.ReceivingLoc
	}
	d.Session = ns
	return good(d, string(ns.Kind)+" session started")
}

func done(d Device, env Env) Outcome {
	s := d.Session
	switch s.Kind {
	case Count:
		if s.Location == "" {
			return bad(d, "scan the LOC: label of the location being counted before CMD:DONE")
		}
		op := protocol.Op{Kind: protocol.OpCount, Scope: protocol.ScopeLocation, Location: s.Location, Lines: s.Lines, Raw: s.Raw}
		d.Session = nil
		return good(d, fmt.Sprintf("count of %s committed (%d lines)", s.Location, len(s.Lines)), stamp(op, d, env, s))
	case Move, Putaway:
		if len(s.Carried) > 0 {
			return bad(d, "%d item(s) scanned without a destination: scan LOC:to, or CMD:CANCEL", len(s.Carried))
		}
	}
	d.Session = nil
	return good(d, string(s.Kind)+" session finished")
}

func location(d Device, in Input, env Env) Outcome {
	s := d.Session
	switch s.Kind {
	case Count:
		if len(s.Lines) > 0 && s.Location != in.Value {
			return bad(d, "counting %s: scan CMD:DONE before another location", s.Location)
		}
		s.Location = in.Value
		return good(d, "counting "+in.Value)
	case Move, Putaway:
		if len(s.Carried) == 0 {
			s.Location = in.Value
			return good(d, "taking from "+in.Value)
		}
		if in.Value == s.Location {
			return bad(d, "destination %s is the source location", in.Value)
		}
		kind := protocol.OpMove
		if s.Kind == Putaway {
			kind = protocol.OpPutaway
		}
		ops := make([]protocol.Op, 0, len(s.Carried))
		for _, c := range s.Carried {
			ops = append(ops, stamp(protocol.Op{Kind: kind, Location: s.Location, To: in.Value, SKU: c.SKU, Lot: c.Lot, Qty: c.Qty, Raw: []string{c.Raw, in.Raw}}, d, env, s))
		}
		s.Carried = nil
		return good(d, fmt.Sprintf("%d item line(s) moved to %s", len(ops), in.Value), ops...)
	}
	s.Location = in.Value
	return good(d, "location "+in.Value)
}

func item(d Device, in Input, env Env) Outcome {
	s := d.Session
	sku := in.SKU
	if sku == "" {
		sku = in.GTIN
	}
	if sku == "" {
		return bad(d, "item scan has neither GTIN nor SKU")
	}
	explicitQty := s.NextQty != 0 || in.Qty != 0
	qty := s.NextQty
	if qty == 0 {
		qty = in.Qty
	}
	if qty == 0 {
		qty = 1
	}
	lot := s.NextLot
	if lot == "" {
		lot = in.Lot
	}
	if s.Location == "" {
		return bad(d, "scan a LOC: label first")
	}
	s.NextQty, s.NextLot = 0, ""
	base := protocol.Op{Location: s.Location, SKU: sku, Lot: lot, Qty: qty, Expiry: in.Expiry, Raw: []string{in.Raw}}
	switch s.Kind {
	case Receive:
		base.Kind = protocol.OpReceive
		if s.PO != "" {
			base.Refs = &protocol.Refs{PO: s.PO}
		}
		return good(d, fmt.Sprintf("received %d × %s at %s", qty, sku, s.Location), stamp(base, d, env, s))
	case Pick:
		if qty < 0 {
			return bad(d, "pick quantity must be positive")
		}
		base.Kind = protocol.OpPick
		if s.Order != "" || s.Task != "" {
			base.Refs = &protocol.Refs{Order: s.Order, Task: s.Task}
		}
		return good(d, fmt.Sprintf("picked %d × %s from %s", qty, sku, s.Location), stamp(base, d, env, s))
	case Adjust:
		if !explicitQty { // an adjust needs an explicit signed quantity
			return bad(d, "scan QTY:+n or QTY:-n before the item in an ADJUST session")
		}
		base.Kind, base.Reason = protocol.OpAdjust, s.Reason
		return good(d, fmt.Sprintf("adjusted %+d × %s at %s", qty, sku, s.Location), stamp(base, d, env, s))
	case Count:
		for i := range s.Lines {
			if s.Lines[i].SKU == sku && s.Lines[i].Lot == lot {
				s.Lines[i].Qty += qty
				s.Raw = append(s.Raw, in.Raw)
				return good(d, "counted") // blind count: no running total
			}
		}
		s.Lines = append(s.Lines, protocol.CountLine{SKU: sku, Lot: lot, Qty: qty})
		s.Raw = append(s.Raw, in.Raw)
		return good(d, "counted")
	case Move, Putaway:
		s.Carried = append(s.Carried, Carried{SKU: sku, Lot: lot, Qty: qty, Raw: in.Raw})
		return good(d, fmt.Sprintf("%d × %s taken; scan LOC:to", qty, sku))
	}
	return bad(d, "items are not expected in a %s session", s.Kind)
}

// stamp fills the fields every op of a session carries.
func stamp(op protocol.Op, d Device, env Env, _ *State) protocol.Op {
	op.Device = env.Device
	op.Operator = d.Operator
	return op
}

// Expect describes the next scan the session expects, for screens.
func Expect(s *State) string {
	if s == nil {
		return "a CMD: label to start a session"
	}
	switch s.Kind {
	case Receive:
		return "item (or QTY:/LOT:/PO:/LOC:), CMD:DONE to finish"
	case Count:
		if s.Location == "" {
			return "LOC: of the location to count"
		}
		return "items on " + s.Location + ", CMD:DONE to commit the count"
	case Move, Putaway:
		if len(s.Carried) > 0 {
			return "LOC: destination"
		}
		if s.Location == "" {
			return "LOC: source"
		}
		return "item to move, or CMD:DONE"
	case Pick:
		if s.Location == "" {
			return "ORD:/TASK: then LOC: of the pick location"
		}
		return "item to pick, CMD:DONE to finish"
	case Adjust:
		if s.Location == "" {
			return "LOC: of the adjusted stock"
		}
		return "REASON:, QTY:±n, then the item"
	}
	return ""
}
