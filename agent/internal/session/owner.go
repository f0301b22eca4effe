package session

import (
	"fmt"
	"slices"
	"strings"

	"github.com/shelfsync/shelfsync/protocol"
)

// Owners (docs/DESIGN.md, "Owners at the gateway"). A 3PL's clients may
// each list the same GTIN under their own sku. A scan of such a GTIN is
// told apart, in this order, by
//
//  1. the owner of the session's location (protocol.Location.Owner),
//  2. the owner of an OWNER:<id> scan earlier in the session,
//  3. a pick task at the location, or a line of the purchase order being
//     received, naming one of the skus;
//
// and when none of them tells, the gateway asks: the scan is kept in the
// session (State.Pending), nothing is committed, and the next OWNER: scan
// completes it. Any other scan but CMD:CANCEL is refused meanwhile.

// candidates returns the catalog items an item scan may be: the SKU:
// label's item, or every item listing the GTIN; an unlisted GTIN is the
// sku itself unless the catalog is strict.
func candidates(in Input, env Env) ([]protocol.Item, string) {
	l := data(env)
	strict := l.Settings().StrictCatalog
	if in.SKU != "" {
		it, ok := l.Item(in.SKU)
		if !ok {
			if strict {
				return nil, fmt.Sprintf("sku %s is not in the catalog (strict catalog): set the item aside and have it added", in.SKU)
			}
			it.SKU = in.SKU
		}
		return []protocol.Item{it}, ""
	}
	if in.GTIN == "" {
		return nil, "item scan has neither GTIN nor SKU"
	}
	if its := l.ItemsByGTIN(in.GTIN); len(its) > 0 {
		slices.SortFunc(its, func(a, b protocol.Item) int { return strings.Compare(a.SKU, b.SKU) })
		return its, ""
	}
	if strict {
		return nil, fmt.Sprintf("GTIN %s is not in the catalog (strict catalog): set the item aside and have it added", in.GTIN)
	}
	return []protocol.Item{{SKU: in.GTIN}}, ""
}

// locationOwner returns the owner of a location ("" when it has none or
// the master data does not list it).
func locationOwner(code string, env Env) string {
	if code == "" {
		return ""
	}
	loc, _ := data(env).Location(code)
	return loc.Owner
}

// whose picks the item a scan is among its candidates. It returns the
// item, or the owners to ask between (nothing picked), or why the scan is
// refused.
func whose(s *State, cands []protocol.Item, env Env) (it protocol.Item, ask []string, why string) {
	locOwner := locationOwner(s.Location, env)
	if locOwner != "" && s.Owner != "" && s.Owner != locOwner {
		return it, nil, fmt.Sprintf("OWNER:%s was scanned, but %s holds %s's units: scan OWNER:%s, or a location of %s", s.Owner, s.Location, locOwner, locOwner, s.Owner)
	}
	want, by := locOwner, "location "+s.Location
	if want == "" {
		want, by = s.Owner, "OWNER:"+s.Owner
	}
	if len(cands) > 1 && want == "" {
		// The pick tasks at this location, or the lines of the PO being
		// received, name the sku to take.
		skus := map[string]bool{}
		switch s.Kind {
		case Pick:
			for _, t := range scope(s, data(env)) {
				if t.Location == s.Location {
					skus[t.SKU] = true
				}
			}
		case Receive:
			if po, ok := data(env).PO(s.PO); ok && s.PO != "" {
				for _, l := range po.Lines {
					skus[l.SKU] = true
				}
			}
		}
		if narrowed := slices.DeleteFunc(slices.Clone(cands), func(c protocol.Item) bool { return !skus[c.SKU] }); len(narrowed) > 0 {
			cands = narrowed
		}
	}
	if want == "" {
		if len(cands) == 1 {
			return cands[0], nil, ""
		}
		return it, owners(cands), ""
	}
	for _, c := range cands {
		if c.Owner == want {
			return c, nil, ""
		}
	}
	if len(cands) == 1 && cands[0].Owner == "" {
		return cands[0], nil, "" // an item without an owner goes anywhere
	}
	var theirs []string
	for _, c := range cands {
		theirs = append(theirs, fmt.Sprintf("%s is %s's", c.SKU, c.Owner))
	}
	return it, nil, fmt.Sprintf("the scanned item is not %s's (%s, by %s): set it aside or take it to a location of its owner", want, strings.Join(theirs, ", "), by)
}

func owners(cands []protocol.Item) []string {
	var out []string
	for _, c := range cands {
		if !slices.Contains(out, c.Owner) {
			out = append(out, c.Owner)
		}
	}
	return out
}

// askOwner keeps the scan in the session until an OWNER: scan tells whose
// units they are; nothing is committed. The bad beep and the screen ask.
func askOwner(d Station, in Input, cands []protocol.Item, ask []string) Outcome {
	s := d.Session
	p := in
	s.Pending, s.Asked = &p, ask
	var skus []string
	for _, c := range cands {
		skus = append(skus, fmt.Sprintf("%s (%s)", c.Owner, c.SKU))
	}
	out := bad(d, "whose units? GTIN %s is held for %s: scan OWNER:%s; nothing recorded until then (CMD:CANCEL drops the session)",
		in.GTIN, strings.Join(skus, " and "), strings.Join(ask, " or OWNER:"))
	out.Changed = true // the pending scan is kept
	return out
}

// ownerScan handles OWNER:<id>: the owner of the items scanned next in
// the session, and of the scan waiting for it.
func ownerScan(d Station, in Input, env Env) Outcome {
	s := d.Session
	if p := s.Pending; p != nil {
		if !slices.Contains(s.Asked, in.Value) {
			return bad(d, "OWNER:%s holds none of the items of GTIN %s: scan OWNER:%s, or CMD:CANCEL", in.Value, p.GTIN, strings.Join(s.Asked, " or OWNER:"))
		}
		s.Pending, s.Asked = nil, nil
		s.Owner = in.Value
		base := clone(d)
		out := item(d, *p, env)
		if out.Verdict == Bad && !out.Changed {
			// Refused for another reason (a lot-tracked item without its
			// lot …): the owner stays, the waiting scan goes.
			out = bad(base, "owner %s; the waiting scan is refused: %s — scan it again once that is put right", in.Value, out.Reason)
			out.Changed = true
			return out
		}
		out.Reason = "owner " + in.Value + ": " + out.Reason
		return out
	}
	if lo := locationOwner(s.Location, env); lo != "" && lo != in.Value {
		return bad(d, "%s holds %s's units: OWNER:%s does not apply there; scan a location of %s first", s.Location, lo, in.Value, in.Value)
	}
	s.Owner = in.Value
	return good(d, "owner "+in.Value+": the next items are "+in.Value+"'s, where the location has no owner")
}

// carriedOwners says why carried units may not go to a location that
// holds another owner's units ("" when they may).
func carriedOwners(carried []Carried, to string, env Env) string {
	lo := locationOwner(to, env)
	if lo == "" {
		return ""
	}
	for _, c := range carried {
		if c.Owner != "" && c.Owner != lo {
			return fmt.Sprintf("%s holds %s's units: %s is %s's; take it to a location of %s or an unowned one", to, lo, c.SKU, c.Owner, c.Owner)
		}
	}
	return ""
}

// ItemAt returns the catalog item a GTIN-14 read at a location is, for
// readers that cannot ask (RFID): the item of the location's owner, else
// the one item listing the GTIN, else the one whose sku expected reports
// (an RFID portal: a line of an open purchase order at its dock; nil for
// none). When several owners' items list the GTIN and nothing tells them
// apart, it returns the first by sku and ambiguous true (the caller logs
// it: give the location an owner). ok is false when no item lists the
// GTIN.
func ItemAt(l Lookup, gtin, location string, expected func(sku string) bool) (it protocol.Item, ok, ambiguous bool) {
	its := l.ItemsByGTIN(gtin)
	if len(its) == 0 {
		return it, false, false
	}
	slices.SortFunc(its, func(a, b protocol.Item) int { return strings.Compare(a.SKU, b.SKU) })
	if len(its) == 1 {
		return its[0], true, false
	}
	if loc, _ := l.Location(location); loc.Owner != "" {
		for _, c := range its {
			if c.Owner == loc.Owner {
				return c, true, false
			}
		}
	}
	if expected != nil {
		var hit []protocol.Item
		for _, c := range its {
			if expected(c.SKU) {
				hit = append(hit, c)
			}
		}
		if len(hit) == 1 {
			return hit[0], true, false
		}
	}
	return its[0], true, true
}
