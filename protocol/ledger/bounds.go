package ledger

import (
	"errors"
	"fmt"

	"github.com/shelfsync/shelfsync/protocol"
)

// MaxKeyQty bounds a key's on-hand and the running sum of its deltas:
// |x| ≤ 10^15 units. Together with protocol.MaxOpQty per op, no merge can
// wrap int64.
const MaxKeyQty = 1_000_000_000_000_000

// ErrQtyBound reports an op whose merge would take a key's on-hand (or
// its sum of deltas) beyond ±MaxKeyQty. The server quarantines such an op.
var ErrQtyBound = errors.New("quantity beyond the bound of a stock key")

// addQty returns a+b, or ErrQtyBound when the result is beyond ±MaxKeyQty
// (checked before it could wrap).
func addQty(a, b int64) (int64, error) {
	if (b > 0 && a > MaxKeyQty-b) || (b < 0 && a < -MaxKeyQty-b) || a > MaxKeyQty || a < -MaxKeyQty {
		return 0, fmt.Errorf("%w: %d %+d is beyond ±%d", ErrQtyBound, a, b, MaxKeyQty)
	}
	return a + b, nil
}

// CheckQty reports, without writing, whether merging op (of gateway gw)
// would take the sum or on-hand of a key it changes beyond ±MaxKeyQty
// (ErrQtyBound); other errors are the store's. Counts set quantities within
// protocol.MaxOpQty and are not checked here.
func CheckQty(st Store, wh, gw string, op *protocol.Op) error {
	if op.Kind.IsCount() {
		return nil
	}
	ord := OrderOf(gw, op)
	var buf [MaxEffects]Effect
	for _, e := range AppendDeltas(buf[:0], wh, op) {
		ks, existed, err := st.GetKey(e.Key)
		if err != nil {
			return err
		}
		if !existed {
			if ks, err = fresh(st, e.Key); err != nil {
				return err
			}
		}
		if ord.Compare(ks.Count) <= 0 {
			continue // covered by a later count: it changes nothing
		}
		sum, err := addQty(ks.Sum, e.Qty)
		if err == nil {
			_, err = addQty(ks.CountQty, sum)
		}
		if err != nil {
			return fmt.Errorf("op %d (%s) on %s/%s: %w", op.Seq, op.Kind, e.Key.Location, e.Key.SKU, err)
		}
	}
	return nil
}
