package session

import (
	"fmt"

	"github.com/shelfsync/shelfsync/protocol"
)

// movesStatus reports whether the session kind commits status ops.
func (k Kind) movesStatus() bool { return k == Hold || k == Release || k == Damage }

// statusItem commits one status op for an item scanned in a HOLD, RELEASE
// or DAMAGE session (docs/DESIGN.md, "Scan vocabulary"): HOLD takes
// available units to hold, RELEASE held units to available, DAMAGE
// available units (or held ones, when the location holds none available)
// to damaged. A RELEASE of a key the local view shows nothing held of is
// refused: it would only push the held records below zero. Without a lot
// scanned, the one lot of the sku in the from-status there is taken.
func statusItem(d Station, op protocol.Op, env Env) Outcome {
	s := d.Session
	l := data(env)
	held := func(st protocol.StockStatus) (int64, []string) {
		var n int64
		var lots []string
		for _, r := range l.Stock(s.Location, op.SKU) {
			if r.Status == st && r.Owner == op.Owner && r.OnHand > 0 && (op.Lot == "" || r.Lot == op.Lot) {
				n += r.OnHand
				lots = append(lots, r.Lot)
			}
		}
		return n, lots
	}
	op.Kind, op.Reason = protocol.OpStatus, s.Reason
	switch s.Kind {
	case Hold:
		op.Status, op.ToStatus = protocol.StatusAvailable, protocol.StatusHold
	case Release:
		op.Status, op.ToStatus = protocol.StatusHold, protocol.StatusAvailable
	case Damage:
		op.ToStatus = protocol.StatusDamaged
		if n, _ := held(protocol.StatusAvailable); n == 0 {
			if h, _ := held(protocol.StatusHold); h > 0 {
				op.Status = protocol.StatusHold
			}
		}
	}
	n, lots := held(op.Status)
	if op.Lot == "" && len(lots) == 1 {
		op.Lot = lots[0]
	}
	if s.Kind == Release {
		if n == 0 {
			return bad(d, "nothing of %s%s is on hold at %s: check the item and location; nothing recorded", op.SKU, lotText(op.Lot), s.Location)
		}
		if op.Lot == "" && len(lots) > 1 {
			return bad(d, "%s is on hold at %s in %d lots: scan LOT: first; nothing recorded", op.SKU, s.Location, len(lots))
		}
	}
	return good(d, fmt.Sprintf("%d × %s%s at %s: %s → %s", op.Qty, op.SKU, lotText(op.Lot), s.Location, op.Status, op.ToStatus), stamp(op, d, env))
}

func lotText(lot string) string {
	if lot == "" {
		return ""
	}
	return " lot " + lot
}
