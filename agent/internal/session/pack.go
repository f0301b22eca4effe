package session

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/shelfsync/shelfsync/drivers/scan"
	"github.com/shelfsync/shelfsync/protocol"
)

// A pack session checks every unit picked for an order before it ships
// (docs/DESIGN.md, "Pack and ship by scan"):
//
//	CMD:PACK  ORD:<id>  item… [QTY:/LOT:]  [(00)<SSCC> outbound label]  CMD:DONE
//
// What the order should contain is its pick list as this gateway knows
// it: the pick tasks of the order it holds, each with what was picked
// against it (this gateway's own picks, or the server's figure once the
// task came back closed), summed per sku and lot. A pack station — the
// gateway of a pack location — is sent every closed pick task of the
// warehouse, so it knows the picks of every zone. A scan that is not on
// that list — another sku, another lot, one unit more than was picked — is
// refused with a bad beep and changes nothing. CMD:DONE ships only when
// every picked unit has been checked: it commits a ship notice (with the
// outbound label) in the same durable transaction as the session's end,
// and the server ships the order when the notice reaches it.

// packLine is one line of an order's pick list: what was picked of a sku
// and lot ("" when the task named none: any lot matches).
type packLine struct {
	SKU, Lot string
	Picked   int64
}

// packList returns what was picked for order at this gateway, per sku and
// lot, and whether a pick task of the order was cancelled (the order was).
func packList(l Lookup, order string) ([]packLine, bool) {
	var out []packLine
	cancelled := false
	at := map[[2]string]int{}
	for _, t := range l.OrderTasks(order) {
		if t.Kind != "pick" || t.Order != order {
			continue
		}
		if t.Status == "cancelled" {
			cancelled = true
			continue
		}
		n := max(l.Picked(t.ID), t.Picked)
		if n <= 0 {
			continue
		}
		k := [2]string{t.SKU, t.Lot}
		if i, ok := at[k]; ok {
			out[i].Picked += n
			continue
		}
		at[k] = len(out)
		out = append(out, packLine{SKU: t.SKU, Lot: t.Lot, Picked: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].SKU != out[j].SKU {
			return out[i].SKU < out[j].SKU
		}
		return out[i].Lot < out[j].Lot
	})
	return out, cancelled
}

// checked returns what the session checked of a pick-list line.
func checked(s *State, p packLine) int64 {
	for _, c := range s.Lines {
		if c.SKU == p.SKU && c.Lot == p.Lot {
			return c.Qty
		}
	}
	return 0
}

func (p packLine) String() string {
	if p.Lot == "" {
		return p.SKU
	}
	return p.SKU + " lot " + p.Lot
}

// unpicked describes the open pick tasks of order this gateway holds with
// units still to pick ("" when none): an order is packed once its picks
// here are finished.
func unpicked(l Lookup, order string) string {
	var out []string
	for _, t := range orderTasks(l, order) {
		if left := remaining(l, t); left > 0 {
			out = append(out, fmt.Sprintf("%d × %s at %s (task %s)", left, t.SKU, t.Location, t.ID))
		}
	}
	return strings.Join(out, ", ")
}

// packOrder takes the ORD: label of the order to pack.
func packOrder(d Station, in Input, env Env) Outcome {
	s := d.Session
	l := data(env)
	if in.Kind != scan.KindOrder {
		return bad(d, "TASK: labels do not belong in a PACK session: scan the order's ORD: label")
	}
	if s.Order != "" {
		return bad(d, "packing order %s: scan CMD:DONE or CMD:CANCEL before another order", s.Order)
	}
	if l.Shipped(in.Value) {
		return bad(d, "order %s was already shipped from this gateway", in.Value)
	}
	lines, cancelled := packList(l, in.Value)
	if cancelled {
		return bad(d, "order %s was cancelled: do not ship it; put its units back", in.Value)
	}
	if open := unpicked(l, in.Value); open != "" {
		return bad(d, "order %s is still being picked here: %s; finish the pick (CMD:PICK) first", in.Value, open)
	}
	if len(lines) == 0 {
		return bad(d, "order %s has no picked units at this gateway: finish its picks first, or pack it at the pack station or the gateway that picked it (the ship API ships it too)", in.Value)
	}
	var units int64
	for _, p := range lines {
		units += p.Picked
	}
	s.Order = in.Value
	return good(d, fmt.Sprintf("packing order %s: check %d unit(s) of %d line(s)", in.Value, units, len(lines)))
}

// packItem checks one item scan against the order's pick list.
func packItem(d Station, in Input, env Env) Outcome {
	s := d.Session
	if s.Order == "" {
		return bad(d, "scan the ORD: label of the order to pack first")
	}
	cands, why := candidates(in, env)
	if why != "" {
		return bad(d, "%s", why)
	}
	qty := s.NextQty
	if qty == 0 {
		qty = in.Qty
	}
	if qty == 0 {
		qty = 1
	}
	if qty < 0 {
		return bad(d, "quantity must be positive in a PACK session")
	}
	lot := s.NextLot
	if lot == "" {
		lot = in.Lot
	}
	lines, cancelled := packList(data(env), s.Order)
	if cancelled {
		return bad(d, "order %s was cancelled meanwhile: set this item aside, scan CMD:CANCEL and put the order's units back", s.Order)
	}
	// A GTIN several owners list is the sku the order was picked as.
	it := cands[0]
	for _, c := range cands {
		if slices.ContainsFunc(lines, func(p packLine) bool { return p.SKU == c.SKU }) {
			it = c
			break
		}
	}
	var ofSKU, room []packLine
	for _, p := range lines {
		if p.SKU != it.SKU {
			continue
		}
		ofSKU = append(ofSKU, p)
		if (lot == "" || p.Lot == "" || p.Lot == lot) && p.Picked > checked(s, p) {
			room = append(room, p)
		}
	}
	if len(ofSKU) == 0 {
		var want []string
		for _, p := range lines {
			if p.Picked > checked(s, p) {
				want = append(want, p.String())
			}
		}
		return bad(d, "wrong item %s: it is not in order %s (still to check: %s); set it aside", it.SKU, s.Order, strings.Join(want, ", "))
	}
	if len(room) == 0 {
		for _, p := range ofSKU {
			if p.Lot == lot && lot != "" {
				return bad(d, "one too many: every %s picked for order %s is checked already; set it aside", p.String(), s.Order)
			}
		}
		for _, p := range ofSKU {
			if p.Picked > checked(s, p) {
				return bad(d, "wrong lot %s of %s: order %s was picked from %s; set it aside", lot, it.SKU, s.Order, p.String())
			}
		}
		return bad(d, "one too many: every %s picked for order %s is checked already; set it aside", it.SKU, s.Order)
	}
	if lot == "" {
		lots := map[string]bool{}
		for _, p := range room {
			lots[p.Lot] = true
		}
		if len(lots) > 1 {
			var names []string
			for _, p := range room {
				names = append(names, p.Lot)
			}
			return bad(d, "%s of order %s was picked from several lots (%s): scan LOT: first, or the item's GS1 barcode with its lot", it.SKU, s.Order, strings.Join(names, ", "))
		}
	}
	p := room[0]
	if left := p.Picked - checked(s, p); qty > left {
		return bad(d, "%d × %s is more than order %s has left to check (%d): set the extra aside", qty, p.String(), s.Order, left)
	}
	s.NextQty, s.NextLot = 0, ""
	found := false
	for i := range s.Lines {
		if s.Lines[i].SKU == p.SKU && s.Lines[i].Lot == p.Lot {
			s.Lines[i].Qty += qty
			found = true
		}
	}
	if !found {
		s.Lines = append(s.Lines, protocol.CountLine{SKU: p.SKU, Lot: p.Lot, Qty: qty})
	}
	s.Raw = append(s.Raw, in.Raw)
	var want, done int64
	for _, q := range lines {
		want, done = want+q.Picked, done+min(checked(s, q), q.Picked)
	}
	if done == want {
		return good(d, fmt.Sprintf("checked %d × %s: all %d unit(s) of order %s checked; scan the outbound label or CMD:DONE to ship", qty, p.String(), want, s.Order))
	}
	return good(d, fmt.Sprintf("checked %d × %s (%d of %d unit(s))", qty, p.String(), done, want))
}

// packLabel records the outbound label (an SSCC) of the parcel or pallet.
func packLabel(d Station, in Input) Outcome {
	s := d.Session
	if s.Outbound != "" && s.Outbound != in.Value {
		return bad(d, "outbound label %s is already scanned for this shipment: scan CMD:CANCEL to start over", s.Outbound)
	}
	if s.NextQty != 0 || s.NextLot != "" {
		return bad(d, "QTY:/LOT: do not apply to an outbound label: scan it again without them")
	}
	s.Outbound = in.Value
	return good(d, "outbound label "+in.Value)
}

// packDone ships the order once every picked unit is checked: a ship
// notice is committed with the end of the session.
func packDone(d Station, env Env) Outcome {
	s := d.Session
	if s.Order == "" {
		return bad(d, "no order scanned: scan its ORD: label, or CMD:CANCEL")
	}
	lines, cancelled := packList(data(env), s.Order)
	if cancelled {
		return bad(d, "order %s was cancelled meanwhile: do not ship it; scan CMD:CANCEL and put its units back", s.Order)
	}
	if open := unpicked(data(env), s.Order); open != "" {
		return bad(d, "order %s got a pick task meanwhile: %s; pick it, or CMD:CANCEL", s.Order, open)
	}
	var missing, extra []string
	var units int64
	for _, p := range lines {
		units += p.Picked
		if c := checked(s, p); c < p.Picked {
			missing = append(missing, fmt.Sprintf("%d × %s", p.Picked-c, p.String()))
		} else if c > p.Picked {
			extra = append(extra, fmt.Sprintf("%d × %s", c-p.Picked, p.String()))
		}
	}
	for _, c := range s.Lines {
		if !listed(lines, c) {
			extra = append(extra, fmt.Sprintf("%d × %s", c.Qty, packLine{SKU: c.SKU, Lot: c.Lot}.String()))
		}
	}
	if len(extra) > 0 {
		return bad(d, "order %s now shows fewer picked units than were checked (%s more): scan CMD:CANCEL and pack it again", s.Order, strings.Join(extra, ", "))
	}
	if len(missing) > 0 {
		return bad(d, "order %s is not fully checked: %s still to scan (or CMD:CANCEL)", s.Order, strings.Join(missing, ", "))
	}
	if units == 0 {
		// Its pick tasks are gone (dropped after --task-retention as the
		// session began): nothing is known to ship.
		return bad(d, "order %s has no picked units at this gateway any more: scan CMD:CANCEL (the ship API ships it)", s.Order)
	}
	d.Session = nil
	n := notice(d, env, protocol.NoticeShip, s.Order, s.Location, "", units)
	n.SSCC = s.Outbound
	msg := fmt.Sprintf("order %s shipped: %d unit(s) checked", s.Order, units)
	if s.Outbound != "" {
		msg += ", outbound label " + s.Outbound
	}
	out := good(d, msg)
	out.Notices = []protocol.Notice{n}
	return out
}

func listed(lines []packLine, c protocol.CountLine) bool {
	for _, p := range lines {
		if p.SKU == c.SKU && p.Lot == c.Lot {
			return true
		}
	}
	return false
}
