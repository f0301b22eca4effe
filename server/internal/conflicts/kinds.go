package conflicts

import (
	"fmt"
	"slices"
	"strings"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
)

// The constructors below build a holding conflict from its facts. Observe
// and Compute share them, so both describe a conflict the same way.

func compareKeys(a, b ledger.Key) int { return ledger.CompareKeys(a, b) }

func keyConflict(id string, kind Kind, k ledger.Key) Conflict {
	return Conflict{ID: id, Kind: kind, Status: StatusOpen, Holds: true,
		Warehouse: k.WH, Location: k.Location, SKU: k.SKU, Lot: k.Lot, Owner: k.Owner, StockStatus: k.Status}
}

// negConflict: on-hand of k is below zero; refs is the op that pushed it
// there (in merge order) and the decrements after it.
func negConflict(k ledger.Key, onHand int64, refs []OpRef) Conflict {
	c := keyConflict(NegativeStockID(k), KindNegativeStock, k)
	c.Ops, c.Observed = refs, onHand
	if len(refs) > 0 {
		c.CreatedHLC = refs[0].HLC
	}
	describe(&c)
	return c
}

// raceBase is the count-race conflict of a count (of location scope when
// loc, else of key k) listing only the count; racing deltas are added.
func raceBase(wh string, count ledger.Order, loc bool, k ledger.Key) Conflict {
	if loc {
		k = ledger.Key{WH: k.WH, Location: k.Location}
	}
	c := keyConflict(CountRaceID(wh, count), KindCountRace, k)
	c.Ops, c.CreatedHLC = []OpRef{refOf(wh, count)}, count.HLC
	return c
}

// varianceConflict: the count at order c found observed of k where the
// records said expected. It holds when the count differs from what a shelf
// can hold of those records: max(expected, 0). Records below zero are no
// quantity a count can confirm; their negative-stock conflict already says
// units are missing, and a count of 0 confirms them (it clears that
// conflict and raises no "found stock"). A count above 0 where the records
// are negative found that many units.
func varianceConflict(k ledger.Key, count ledger.Order, expected, observed int64) Conflict {
	c := keyConflict(VarianceID(count, k), KindVariance, k)
	c.Holds = max(expected, 0) != observed
	c.Ops, c.CreatedHLC = []OpRef{refOf(k.WH, count)}, count.HLC
	c.Expected, c.Observed = expected, observed
	describe(&c)
	return c
}

// overPickConflict: picks of line l exceed its quantity qty.
func overPickConflict(l OrderLineKey, qty int64, picks []LinePick) Conflict {
	picks = slices.Clone(picks)
	slices.SortFunc(picks, func(a, b LinePick) int { return compareRefs(a.Ref, b.Ref) })
	c := Conflict{ID: OverPickID(l), Kind: KindOverPick, Status: StatusOpen, Warehouse: l.WH,
		Order: l.Order, OrderLine: l.Line, Expected: qty}
	for _, p := range picks {
		c.Observed += p.Qty
		if c.Observed > qty && !c.Holds {
			c.Holds, c.CreatedHLC = true, p.Ref.HLC // the pick that went over, in merge order
		}
		c.Ops = append(c.Ops, p.Ref)
	}
	c.Ops = sortRefs(c.Ops)
	describe(&c)
	return c
}

// receiptConflict: a receive flagged at the gateway.
func receiptConflict(wh string, ord ledger.Order, op *protocol.Op) Conflict {
	c := keyConflict(ReceiptID(wh, ord), KindReceiptDiscrepancy, ledger.Key{WH: wh, Location: op.Location, SKU: op.SKU, Lot: op.Lot, Owner: op.Owner, Status: op.Status})
	c.Ops, c.CreatedHLC, c.Observed = []OpRef{refOf(wh, ord)}, ord.HLC, op.Qty
	flagNames := []struct {
		flag uint32
		name string
	}{
		{protocol.FlagOverReceipt, "over-receipt"},
		{protocol.FlagUnexpected, "unexpected item"},
		{protocol.FlagLotMismatch, "lot mismatch"},
		{protocol.FlagExpired, "expired"},
		{protocol.FlagShortShelfLife, "below minimum shelf life"},
	}
	var flags []string
	for _, f := range flagNames {
		if op.Flags&f.flag != 0 {
			flags = append(flags, f.name)
		}
	}
	c.Detail = fmt.Sprintf("received %d of %s at %s flagged %s", op.Qty, op.SKU, op.Location, strings.Join(flags, ", "))
	if op.Refs != nil && op.Refs.PO != "" {
		c.Detail += fmt.Sprintf(" (PO %s line %d)", op.Refs.PO, op.Refs.POLine)
	}
	c.SuggestedAction = "review with supplier"
	return c
}

// describe sets Detail and SuggestedAction from the conflict's facts.
func describe(c *Conflict) {
	k := c.Key()
	first := func() string {
		if len(c.Ops) == 0 {
			return "?"
		}
		return fmt.Sprintf("%s/%d at %s", c.Ops[0].GW, c.Ops[0].Seq, c.Ops[0].HLC.Time().Format("2006-01-02 15:04:05.000Z"))
	}
	switch c.Kind {
	case KindNegativeStock:
		c.Detail = fmt.Sprintf("on-hand of %s is %d; pushed below zero by %s", k, c.Observed, first())
		c.SuggestedAction = "count task for location " + c.Location
	case KindOverPick:
		c.Detail = fmt.Sprintf("order %s line %d: %d picked of %d ordered, in %d picks", c.Order, c.OrderLine, c.Observed, c.Expected, len(c.Ops))
		c.SuggestedAction = "return-to-stock task or accept over-ship"
	case KindCountRace:
		what := "location " + c.Warehouse + "/" + c.Location
		if c.SKU != "" {
			what = k.String()
		}
		var count OpRef
		for _, r := range c.Ops {
			if CountRaceID(r.WH, r.Order()) == c.ID {
				count = r
			}
		}
		c.Detail = fmt.Sprintf("count %s/%d of %s raced with %d op(s) from other gateways within the skew window",
			count.GW, count.Seq, what, len(c.Ops)-1)
		c.SuggestedAction = "recount"
	case KindVariance:
		c.Detail = fmt.Sprintf("count %s found %d of %s; the records said %d", first(), c.Observed, k, c.Expected)
		c.SuggestedAction = "report found stock"
		if c.Expected > c.Observed {
			c.SuggestedAction = "report ghost stock"
		}
	}
}
