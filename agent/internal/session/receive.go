package session

import (
	"fmt"
	"strings"

	"github.com/shelfsync/shelfsync/protocol"
)

// poScan starts receiving against a purchase order.
func poScan(d Station, in Input, env Env) Outcome {
	s := d.Session
	if s.Kind != Receive {
		return bad(d, "PO: only belongs in a RECEIVE session")
	}
	if s.PO != "" && s.PO != in.Value {
		return bad(d, "receiving PO %s: scan CMD:DONE to close it before PO %s", s.PO, in.Value)
	}
	po, ok := data(env).PO(in.Value)
	if !ok {
		s.PO = in.Value
		return good(d, "receiving against PO "+in.Value+" (not known at this gateway: receipts are not checked against it)")
	}
	switch po.Status {
	case "closed", "cancelled":
		return bad(d, "PO %s is %s: nothing more can be received against it", po.ID, po.Status)
	}
	s.PO = in.Value
	return good(d, fmt.Sprintf("receiving against PO %s (%d line(s))", po.ID, len(po.Lines)))
}

// flagNames names the receive flags for operators.
var flagNames = []struct {
	flag uint32
	name string
}{
	{protocol.FlagOverReceipt, "over-receipt"},
	{protocol.FlagUnexpected, "unexpected item"},
	{protocol.FlagLotMismatch, "lot mismatch"},
	{protocol.FlagExpired, "expired"},
	{protocol.FlagShortShelfLife, "below minimum shelf life"},
}

// FlagText names the flags set in f, comma-separated.
func FlagText(f uint32) string {
	var out []string
	for _, n := range flagNames {
		if f&n.flag != 0 {
			out = append(out, n.name)
		}
	}
	return strings.Join(out, ", ")
}

// poLine picks the PO line a receipt of sku/lot counts against: the first
// line of the sku expecting that lot (or any lot) with quantity left, else
// the first line of the sku expecting that lot, else the first of the sku.
func poLine(l Lookup, po protocol.PurchaseOrder, sku, lot string) (protocol.POLine, bool) {
	var lotMatch, any *protocol.POLine
	for i := range po.Lines {
		pl := &po.Lines[i]
		if pl.SKU != sku {
			continue
		}
		if any == nil {
			any = pl
		}
		if pl.Lot != "" && lot != "" && pl.Lot != lot {
			continue
		}
		if l.Received(po.ID, pl.Line) < pl.Qty {
			return *pl, true
		}
		if lotMatch == nil {
			lotMatch = pl
		}
	}
	if lotMatch != nil {
		return *lotMatch, true
	}
	if any != nil {
		return *any, true
	}
	return protocol.POLine{}, false
}

// receiveItem commits one receipt, flagging discrepancies against the PO
// and the calendar: the op is committed either way (the goods are at the
// dock) and a flagged one answers with the warning beep.
func receiveItem(d Station, it protocol.Item, in Input, op protocol.Op, env Env) Outcome {
	op, why := receipt(d, it, op, env, nil)
	if why != "" {
		return bad(d, "%s", why)
	}
	msg := fmt.Sprintf("received %d × %s at %s", op.Qty, op.SKU, op.Location)
	if op.Refs != nil && op.Refs.POLine != 0 {
		msg += fmt.Sprintf(" (PO %s line %d)", op.Refs.PO, op.Refs.POLine)
	}
	if op.Status == protocol.StatusHold {
		return warn(d, msg+" — flagged "+FlagText(op.Flags)+": on hold there for review", op)
	}
	if op.Flags != 0 {
		return warn(d, msg+" — flagged "+FlagText(op.Flags)+": set it aside for review", op)
	}
	return good(d, msg, op)
}

// receipt makes a receive op of the session, checked against the item's
// rules and flagged against the PO and the calendar, or says why it is
// refused. pending holds what this same scan already receives per PO
// line (a pallet's earlier lines); nil for one item.
func receipt(d Station, it protocol.Item, op protocol.Op, env Env, pending map[uint32]int64) (protocol.Op, string) {
	s := d.Session
	l := data(env)
	if it.TrackLot && op.Lot == "" {
		return op, fmt.Sprintf("%s is lot-tracked: scan LOT:<lot> (or a GS1 barcode with (10)) before the item", op.SKU)
	}
	op.Kind = protocol.OpReceive
	today := env.Now.UTC()
	switch {
	case op.Expiry == "":
	case op.Expiry < today.Format("2006-01-02"):
		op.Flags |= protocol.FlagExpired
	case it.MinShelfDays > 0 && op.Expiry < today.AddDate(0, 0, it.MinShelfDays).Format("2006-01-02"):
		op.Flags |= protocol.FlagShortShelfLife
	}
	if s.PO != "" {
		op.Refs = &protocol.Refs{PO: s.PO}
		if po, ok := l.PO(s.PO); ok {
			pl, found := poLine(l, po, op.SKU, op.Lot)
			switch {
			case !found:
				op.Flags |= protocol.FlagUnexpected
			default:
				op.Refs.POLine = pl.Line
				if pl.Lot != "" && op.Lot != pl.Lot {
					op.Flags |= protocol.FlagLotMismatch
				}
				allowed := pl.Qty * int64(100+l.Settings().OverReceiptPct) / 100
				if got := l.Received(po.ID, pl.Line) + pending[pl.Line] + op.Qty; got > allowed {
					op.Flags |= protocol.FlagOverReceipt
				}
				if pending != nil {
					pending[pl.Line] += op.Qty
				}
			}
		}
	}
	if op.Flags&^l.Settings().NoHoldFlags != 0 {
		op.Status = protocol.StatusHold // not available until released (CMD:RELEASE or the API)
	}
	return stamp(op, d, env), ""
}

// receiveDone finishes a receive session; against a known PO it closes
// the receipt and reports the lines received short.
func receiveDone(d Station, env Env) Outcome {
	s := d.Session
	d.Session = nil
	if s.PO == "" {
		return good(d, "RECEIVE session finished")
	}
	l := data(env)
	n := notice(d, env, protocol.NoticePOClose, s.PO, s.Location, "", 0)
	po, ok := l.PO(s.PO)
	if !ok {
		out := good(d, "receipt of PO "+s.PO+" closed")
		out.Notices = []protocol.Notice{n}
		return out
	}
	var shorts []string
	for _, pl := range po.Lines {
		if got := l.Received(po.ID, pl.Line); got < pl.Qty {
			shorts = append(shorts, fmt.Sprintf("line %d: %d of %d × %s", pl.Line, got, pl.Qty, pl.SKU))
		}
	}
	if len(shorts) == 0 {
		out := good(d, "receipt of PO "+s.PO+" closed: complete")
		out.Notices = []protocol.Notice{n}
		return out
	}
	out := warn(d, "receipt of PO "+s.PO+" closed short — "+strings.Join(shorts, "; "))
	out.Notices = []protocol.Notice{n}
	return out
}
