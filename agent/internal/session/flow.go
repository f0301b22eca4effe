package session

import (
	"fmt"
	"strings"

	"github.com/shelfsync/shelfsync/protocol"
)

func command(d Station, in Input, env Env, now int64) Outcome {
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
		if s.Pending != nil {
			return bad(d, "GTIN %s waits for its owner: scan OWNER:%s, or CMD:CANCEL", s.Pending.GTIN, strings.Join(s.Asked, " or OWNER:"))
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
	note := ""
	if ns.Kind == Receive || ns.Kind == Putaway {
		// The default dock, unless the location master data lacks it: then
		// the operator scans the dock's LOC: label first, so that no item
		// is recorded at a location the server would quarantine.
		if why := checkLocation(env.ReceivingLoc, env); why == "" {
			ns.Location = env.ReceivingLoc
		} else {
			note = "; default " + why + " — scan the LOC: label of the dock"
		}
	}
	d.Session = ns
	return good(d, string(ns.Kind)+" session started"+note)
}

func done(d Station, env Env) Outcome {
	s := d.Session
	switch s.Kind {
	case Count:
		if s.Location == "" {
			return bad(d, "scan the LOC: label of the location being counted before CMD:DONE")
		}
		op := protocol.Op{Kind: protocol.OpCount, Scope: protocol.ScopeLocation, Location: s.Location, Lines: s.Lines, Raw: s.Raw}
		if s.Task != "" {
			op.Refs = &protocol.Refs{Task: s.Task}
		}
		d.Session = nil
		out := good(d, fmt.Sprintf("count of %s committed (%d lines)", s.Location, len(s.Lines)), stamp(op, d, env))
		if s.Task != "" {
			out.Notices = []protocol.Notice{notice(d, env, protocol.NoticeTaskClose, s.Task, s.Location, "", 0)}
			out.Reason += "; task " + s.Task + " done"
		}
		return out
	case Move, Putaway:
		if len(s.Carried) > 0 {
			return bad(d, "%d item(s) scanned without a destination: scan LOC:to, or CMD:CANCEL", len(s.Carried))
		}
	case Receive:
		return receiveDone(d, env)
	case Pick:
		return pickDone(d, env)
	case Pack:
		return packDone(d, env)
	}
	d.Session = nil
	return good(d, string(s.Kind)+" session finished")
}

// notice builds a record for the server; the store stamps its seq.
func notice(d Station, env Env, kind, ref, location, sku string, qty int64) protocol.Notice {
	return protocol.Notice{
		ID: kind + "/" + ref + "/" + fmt.Sprint(env.Now.UnixMilli()), Kind: kind, At: env.Now.UnixMilli(), Ref: ref,
		Location: location, SKU: sku, Qty: qty, Device: env.Device, Operator: d.Operator,
	}
}

// checkLocation returns why a scanned location is refused: when the
// gateway holds location master data, the location must be in it.
func checkLocation(code string, env Env) string {
	l := data(env)
	if _, ok := l.Location(code); ok || len(l.Locations()) == 0 {
		return ""
	}
	return fmt.Sprintf("location %s is not in the location master data: check the label, or have the location added", code)
}

func location(d Station, in Input, env Env) Outcome {
	s := d.Session
	if why := checkLocation(in.Value, env); why != "" {
		return bad(d, "%s", why)
	}
	switch s.Kind {
	case Count:
		if len(s.Lines) > 0 && s.Location != in.Value {
			return bad(d, "counting %s: scan CMD:DONE before another location", s.Location)
		}
		if s.Task != "" && s.Location != "" && in.Value != s.Location {
			return bad(d, "wrong location %s: count task %s is for %s", in.Value, s.Task, s.Location)
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
		if why := carriedOwners(s.Carried, in.Value, env); why != "" {
			return bad(d, "%s; nothing moved", why)
		}
		kind := protocol.OpMove
		if s.Kind == Putaway {
			kind = protocol.OpPutaway
		}
		reason := ""
		if s.Kind == Putaway && s.Suggest != "" {
			reason = "suggested " + s.Suggest
			if in.Value != s.Suggest {
				reason += "; put at " + in.Value
			}
		}
		ops := make([]protocol.Op, 0, len(s.Carried))
		for _, c := range s.Carried {
			ops = append(ops, stamp(protocol.Op{Kind: kind, Location: s.Location, To: in.Value, SKU: c.SKU, Lot: c.Lot, Owner: c.Owner, Qty: c.Qty, Reason: reason, Raw: []string{c.Raw, in.Raw}, SSCC: c.SSCC}, d, env))
		}
		msg := fmt.Sprintf("%d item line(s) moved to %s", len(ops), in.Value)
		if s.Suggest != "" && in.Value != s.Suggest {
			msg += " instead of the suggested " + s.Suggest + " (recorded)"
		}
		s.Carried, s.Suggest = nil, ""
		return good(d, msg, ops...)
	case Pick:
		return pickLocation(d, in, env)
	}
	s.Location = in.Value
	return good(d, "location "+in.Value)
}

func item(d Station, in Input, env Env) Outcome {
	s := d.Session
	if s.Kind == Pack {
		return packItem(d, in, env)
	}
	cands, why := candidates(in, env)
	if why != "" {
		return bad(d, "%s", why)
	}
	if s.Location == "" {
		if s.Kind == Pick && (s.Task != "" || s.Order != "") {
			return bad(d, "scan the LOC: label of the pick location first (%s)", Expect(s))
		}
		return bad(d, "scan a LOC: label first")
	}
	it, ask, why := whose(s, cands, env)
	if why != "" {
		return bad(d, "%s; nothing recorded", why)
	}
	if len(ask) > 0 {
		return askOwner(d, in, cands, ask)
	}
	sku := it.SKU
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
	s.NextQty, s.NextLot = 0, ""
	base := protocol.Op{Location: s.Location, SKU: sku, Lot: lot, Qty: qty, Expiry: in.Expiry, Raw: []string{in.Raw}, Owner: it.Owner}
	switch s.Kind {
	case Receive:
		return receiveItem(d, it, in, base, env)
	case Pick:
		if qty < 0 {
			return bad(d, "pick quantity must be positive")
		}
		return pickItem(d, it, in, base, env)
	case Hold, Release, Damage:
		if qty < 0 {
			return bad(d, "quantity must be positive in a %s session", s.Kind)
		}
		return statusItem(d, base, env)
	case Adjust:
		if !explicitQty { // an adjust needs an explicit signed quantity
			return bad(d, "scan QTY:+n or QTY:-n before the item in an ADJUST session")
		}
		base.Kind, base.Reason = protocol.OpAdjust, s.Reason
		return good(d, fmt.Sprintf("adjusted %+d × %s at %s", qty, sku, s.Location), stamp(base, d, env))
	case Count:
		for i := range s.Lines {
			if s.Lines[i].SKU == sku && s.Lines[i].Lot == lot && s.Lines[i].Owner == it.Owner {
				if s.Lines[i].Qty > protocol.MaxOpQty-qty {
					return bad(d, "count of %s would pass %d units: finish this count (CMD:DONE) and count the rest in another", sku, protocol.MaxOpQty)
				}
				s.Lines[i].Qty += qty
				s.Raw = append(s.Raw, in.Raw)
				return good(d, "counted") // blind count: no running total
			}
		}
		s.Lines = append(s.Lines, protocol.CountLine{SKU: sku, Lot: lot, Qty: qty, Owner: it.Owner})
		s.Raw = append(s.Raw, in.Raw)
		return good(d, "counted")
	case Move, Putaway:
		s.Carried = append(s.Carried, Carried{SKU: sku, Lot: lot, Qty: qty, Raw: in.Raw, Owner: it.Owner})
		if s.Kind == Putaway && len(s.Carried) == 1 {
			s.Suggest = SuggestBin(data(env), sku, s.Location)
		}
		if s.Suggest != "" {
			return good(d, fmt.Sprintf("%d × %s taken; put it in %s (suggested), then scan its LOC:", qty, sku, s.Suggest))
		}
		return good(d, fmt.Sprintf("%d × %s taken; scan LOC:to", qty, sku))
	}
	return bad(d, "items are not expected in a %s session", s.Kind)
}

// stamp fills the fields every op of a session carries.
func stamp(op protocol.Op, d Station, env Env) protocol.Op {
	op.Device = env.Device
	op.Operator = d.Operator
	return op
}

// Expect describes the next scan the session expects, for screens.
func Expect(s *State) string {
	if s == nil {
		return "a CMD: label to start a session"
	}
	if s.Pending != nil {
		return "OWNER:" + strings.Join(s.Asked, " or OWNER:") + " for GTIN " + s.Pending.GTIN + ", or CMD:CANCEL"
	}
	switch s.Kind {
	case Receive:
		if s.PO != "" {
			return "item of PO " + s.PO + " (or QTY:/LOT:), CMD:DONE to close the receipt"
		}
		return "item (or QTY:/LOT:/PO:/LOC:), CMD:DONE to finish"
	case Count:
		if s.Location == "" {
			return "LOC: of the location to count"
		}
		return "items on " + s.Location + ", CMD:DONE to commit the count"
	case Move, Putaway:
		if len(s.Carried) > 0 {
			if s.Suggest != "" {
				return "LOC: destination (suggested " + s.Suggest + ")"
			}
			return "LOC: destination"
		}
		if s.Location == "" {
			return "LOC: source"
		}
		return "item to move, or CMD:DONE"
	case Pick:
		if s.Location == "" {
			if s.Task != "" || s.Order != "" {
				return "LOC: of the pick location"
			}
			return "ORD:/TASK: then LOC: of the pick location"
		}
		return "item to pick, CMD:DONE to finish"
	case Adjust:
		if s.Location == "" {
			return "LOC: of the adjusted stock"
		}
		return "REASON:, QTY:±n, then the item"
	case Hold, Release, Damage:
		if s.Location == "" {
			return "LOC: of the units"
		}
		return "[REASON:] [QTY:] [LOT:] then the item, CMD:DONE to finish"
	case Pack:
		if s.Order == "" {
			return "ORD: of the order to pack"
		}
		return "items of order " + s.Order + " (or QTY:/LOT:), the outbound SSCC label, CMD:DONE to ship"
	}
	return ""
}
