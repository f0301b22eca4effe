package session

import (
	"fmt"
	"slices"
	"strings"

	"github.com/shelfsync/shelfsync/protocol"
)

// pallet handles a pallet label (an SSCC, GS1 AI 00) by the pallet's
// advance ship notice: in a receive session it receives every line, with
// the checks and flags of an item receipt; in a put-away or move session
// it takes every line, to be moved at the next LOC: scan (a license
// plate). Every op it makes carries the SSCC. A line that cannot be taken
// refuses the whole pallet: nothing of it is committed.
func pallet(d Station, in Input, env Env) Outcome {
	s := d.Session
	if s.Kind == Pack {
		return packLabel(d, in)
	}
	sscc := in.Value
	asn, ok := data(env).ASN(sscc)
	if !ok {
		return bad(d, "pallet %s has no advance ship notice at this gateway: handle its items one by one, or have its ASN sent", sscc)
	}
	if s.NextQty != 0 || s.NextLot != "" {
		return bad(d, "QTY:/LOT: do not apply to a pallet label (its ASN gives each line): scan the pallet again without them, or CMD:CANCEL")
	}
	if s.Location == "" {
		return bad(d, "scan a LOC: label first")
	}
	switch s.Kind {
	case Receive:
		return receivePallet(d, asn, in, env)
	case Move, Putaway:
		return carryPallet(d, asn, in, env)
	}
	return bad(d, "a pallet label belongs in a RECEIVE, PUTAWAY or MOVE session, not %s", s.Kind)
}

// palletItem resolves an ASN line's sku through the catalog.
func palletItem(sku string, env Env) (protocol.Item, string) {
	its, why := candidates(Input{SKU: sku}, env)
	if why != "" {
		return protocol.Item{}, why
	}
	return its[0], ""
}

func receivePallet(d Station, asn protocol.ASN, in Input, env Env) Outcome {
	s := d.Session
	if slices.Contains(s.Pallets, asn.SSCC) {
		return bad(d, "pallet %s was already received in this session", asn.SSCC)
	}
	if asn.PO != "" {
		switch {
		case s.PO == "":
			if po, ok := data(env).PO(asn.PO); ok && (po.Status == "closed" || po.Status == "cancelled") {
				return bad(d, "pallet %s belongs to PO %s, which is %s", asn.SSCC, po.ID, po.Status)
			}
			s.PO = asn.PO
		case s.PO != asn.PO:
			return bad(d, "pallet %s belongs to PO %s; this session receives PO %s: scan CMD:DONE first", asn.SSCC, asn.PO, s.PO)
		}
	}
	pending := map[uint32]int64{}
	ops := make([]protocol.Op, 0, len(asn.Lines))
	var flagged, parts []string
	for _, line := range asn.Lines {
		it, why := palletItem(line.SKU, env)
		if why != "" {
			return bad(d, "pallet %s: %s", asn.SSCC, why)
		}
		op, why := receipt(d, it, protocol.Op{Location: s.Location, SKU: it.SKU, Lot: line.Lot, Qty: line.Qty, Expiry: line.Expiry,
			Raw: []string{in.Raw}, SSCC: asn.SSCC, Owner: it.Owner}, env, pending)
		if why != "" {
			return bad(d, "pallet %s: %s", asn.SSCC, why)
		}
		ops = append(ops, op)
		parts = append(parts, fmt.Sprintf("%d × %s", op.Qty, op.SKU))
		if op.Flags != 0 {
			flagged = append(flagged, op.SKU+" "+FlagText(op.Flags))
		}
	}
	s.Pallets = append(s.Pallets, asn.SSCC)
	msg := fmt.Sprintf("pallet %s received at %s: %d line(s): %s", asn.SSCC, s.Location, len(ops), strings.Join(parts, ", "))
	if s.PO != "" {
		msg += " (PO " + s.PO + ")"
	}
	if len(flagged) > 0 {
		return warn(d, msg+" — flagged "+strings.Join(flagged, "; ")+": set those aside for review", ops...)
	}
	return good(d, msg, ops...)
}

func carryPallet(d Station, asn protocol.ASN, in Input, env Env) Outcome {
	s := d.Session
	l := data(env)
	for _, c := range s.Carried {
		if c.SSCC == asn.SSCC {
			return bad(d, "pallet %s is already taken: scan LOC:to", asn.SSCC)
		}
	}
	for _, line := range asn.Lines {
		it, why := palletItem(line.SKU, env)
		if why != "" {
			return bad(d, "pallet %s: %s", asn.SSCC, why)
		}
		var have int64
		for _, st := range l.Stock(s.Location, it.SKU) {
			if st.Lot == line.Lot && st.Owner == it.Owner && st.Status == protocol.StatusAvailable {
				have += st.OnHand
			}
		}
		if have < line.Qty {
			return bad(d, "pallet %s: %s holds %d × %s lot %q, its ASN lists %d: move the items one by one", asn.SSCC, s.Location, have, it.SKU, line.Lot, line.Qty)
		}
		s.Carried = append(s.Carried, Carried{SKU: it.SKU, Lot: line.Lot, Qty: line.Qty, Raw: in.Raw, SSCC: asn.SSCC, Owner: it.Owner})
	}
	if s.Kind == Putaway && s.Suggest == "" && len(asn.Lines) > 0 {
		s.Suggest = SuggestBin(l, s.Carried[0].SKU, s.Location)
	}
	msg := fmt.Sprintf("pallet %s taken from %s (%d line(s))", asn.SSCC, s.Location, len(asn.Lines))
	if s.Suggest != "" {
		return good(d, msg+"; put it in "+s.Suggest+" (suggested), then scan its LOC:")
	}
	return good(d, msg+"; scan LOC:to")
}
