// Package ledger implements the merge rule (docs/DESIGN.md, "The merge
// rule") in one place for the server and the agents: for a stock key k,
// the count covering k with the highest order (hlc, then gateway, then seq)
// sets the base, and every delta on k ordered after that count adds to it.
// With no count, on_hand is the sum of all deltas. The result is a function
// of the set of ops only.
//
// Apply maintains the result incrementally over a Store (a Badger
// transaction on the server, memory in tests); Fold computes it from scratch
// and is the reference the property tests compare Apply with.
package ledger

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/shelfsync/shelfsync/protocol"
)

// Key is a stock key. Owner is "" when the warehouse has no owners; the
// zero Status is available. A key of a version before owners and
// statuses is the same key with both zero.
type Key struct {
	WH, Location, SKU, Lot string
	Owner                  string
	Status                 protocol.StockStatus
}

// String formats the key as wh/location/sku[/lot][ owner=…][ status].
func (k Key) String() string {
	s := k.WH + "/" + k.Location + "/" + k.SKU
	if k.Lot != "" {
		s += "/" + k.Lot
	}
	if k.Owner != "" {
		s += " owner=" + k.Owner
	}
	if k.Status != protocol.StatusAvailable {
		s += " " + k.Status.String()
	}
	return s
}

// StoredLot is the lot part of k as both stores' byte layouts keep it:
// the lot itself for owner "" and available (the layout from before
// owners and statuses), else lot + "\x01" + owner + "\x01" + the status
// digit. Validation forbids control characters in lots and owners, so
// stored lots of distinct keys never nest.
func StoredLot(k Key) string {
	if k.Owner == "" && k.Status == protocol.StatusAvailable {
		return k.Lot
	}
	return k.Lot + "\x01" + k.Owner + "\x01" + string(rune('0'+k.Status))
}

// SetStoredLot reads a StoredLot into k's Lot, Owner and Status.
func (k *Key) SetStoredLot(s string) bool {
	lot, ext, ok := strings.Cut(s, "\x01")
	k.Lot, k.Owner, k.Status = lot, "", protocol.StatusAvailable
	if !ok {
		return true
	}
	owner, st, ok := strings.Cut(ext, "\x01")
	if !ok || len(st) != 1 || !protocol.StockStatus(st[0]-'0').Valid() {
		return false
	}
	k.Owner, k.Status = owner, protocol.StockStatus(st[0]-'0')
	return true
}

// CompareKeys orders keys by warehouse, location, sku, lot, owner, status.
func CompareKeys(a, b Key) int {
	return cmp.Or(cmp.Compare(a.WH, b.WH), cmp.Compare(a.Location, b.Location), cmp.Compare(a.SKU, b.SKU),
		cmp.Compare(a.Lot, b.Lot), cmp.Compare(a.Owner, b.Owner), cmp.Compare(a.Status, b.Status))
}

// Available returns k with status available.
func (k Key) Available() Key {
	k.Status = protocol.StatusAvailable
	return k
}

// CoveredByLocCount reports whether a location-scope count of k's
// location covers k: only available stock is. Units on hold, damaged or
// expired are counted by a key-scope count of their status, so that a
// shelf count does not release them.
func (k Key) CoveredByLocCount() bool { return k.Status == protocol.StatusAvailable }

// Order places an op in the merge order: by HLC, ties broken by gateway then
// seq. The zero Order sorts before every op.
type Order struct {
	HLC protocol.HLC
	GW  string
	Seq uint64
}

// Compare returns -1, 0 or +1.
func (o Order) Compare(p Order) int {
	if c := cmp.Compare(o.HLC, p.HLC); c != 0 {
		return c
	}
	if c := cmp.Compare(o.GW, p.GW); c != 0 {
		return c
	}
	return cmp.Compare(o.Seq, p.Seq)
}

// IsZero reports whether o is the zero Order.
func (o Order) IsZero() bool { return o == Order{} }

// OrderOf returns the merge order of op from gateway gw.
func OrderOf(gw string, op *protocol.Op) Order {
	if op.GW != "" {
		gw = op.GW
	}
	return Order{HLC: op.HLC, GW: gw, Seq: op.Seq}
}

// KeyState is the materialised state of one key.
type KeyState struct {
	Count    Order // covering count with the highest order; zero when none
	CountQty int64 // its quantity for this key
	Sum      int64 // Σ deltas on the key ordered after Count
}

// OnHand returns the key's on-hand quantity.
func (s KeyState) OnHand() int64 { return s.CountQty + s.Sum }

// Store is what Apply reads and writes. Implementations need not be safe for
// concurrent use; the server passes one per transaction.
type Store interface {
	GetKey(k Key) (KeyState, bool, error)
	PutKey(k Key, s KeyState) error
	// GetLocCount returns the highest-ordered location-scope count of loc.
	GetLocCount(wh, loc string) (Order, bool, error)
	PutLocCount(wh, loc string, o Order) error
	// KeysAt lists every key with state at the location.
	KeysAt(wh, loc string) ([]Key, error)
	// AddDelta records a delta on k.
	AddDelta(k Key, o Order, qty int64) error
	// SumAfter sums the recorded deltas on k ordered after o.
	SumAfter(k Key, o Order) (int64, error)
}

// Change is one key's on-hand before and after an op.
type Change struct {
	Key           Key
	Before, After int64
	Existed       bool // the key had state before the op
}

// Effect is one signed quantity an op adds to a key.
type Effect struct {
	Key Key
	Qty int64
}

// Deltas returns the quantities a delta op adds, per key. Counts return nil.
func Deltas(wh string, op *protocol.Op) []Effect { return AppendDeltas(nil, wh, op) }

// AppendDeltas appends Deltas(wh, op) to dst and returns it: with a small
// array's slice as dst (an op has at most 2 effects), the hot paths that
// ask once per op allocate nothing.
func AppendDeltas(dst []Effect, wh string, op *protocol.Op) []Effect {
	at := Key{WH: wh, Location: op.Location, SKU: op.SKU, Lot: op.Lot, Owner: op.Owner, Status: op.Status}
	switch op.Kind {
	case protocol.OpStatus:
		to := at
		to.Status = op.ToStatus
		return append(dst, Effect{at, -op.Qty}, Effect{to, op.Qty})
	case protocol.OpReceive:
		return append(dst, Effect{at, op.Qty})
	case protocol.OpPick:
		return append(dst, Effect{at, -op.Qty})
	case protocol.OpAdjust:
		return append(dst, Effect{at, op.Qty})
	case protocol.OpMove, protocol.OpPutaway:
		to := at
		to.Location = op.To
		return append(dst, Effect{at, -op.Qty}, Effect{to, op.Qty})
	}
	return dst
}

// MaxEffects is the most effects AppendDeltas adds for one op.
const MaxEffects = 2

// CountLines returns the counted quantities of a count op, per key. For a
// location-scope count the keys not listed are not included: the caller
// observes them as 0.
func CountLines(wh string, op *protocol.Op) []Effect {
	if !op.Kind.IsCount() {
		return nil
	}
	if op.Scope == protocol.ScopeKey {
		return []Effect{{Key{wh, op.Location, op.SKU, op.Lot, op.Owner, op.Status}, op.Qty}}
	}
	out := make([]Effect, 0, len(op.Lines))
	seen := make(map[Key]int, len(op.Lines))
	for _, l := range op.Lines {
		k := Key{wh, op.Location, l.SKU, l.Lot, l.Owner, l.Status}
		if i, ok := seen[k]; ok { // the same key twice in one count: the last line wins
			out[i].Qty = l.Qty
			continue
		}
		seen[k] = len(out)
		out = append(out, Effect{k, l.Qty})
	}
	return out
}

// Apply merges one op (never seen before) from gateway gw of warehouse wh
// into st and returns the keys whose state it touched.
func Apply(st Store, wh, gw string, op *protocol.Op) ([]Change, error) {
	ord := OrderOf(gw, op)
	if op.Kind.IsCount() {
		return applyCount(st, wh, ord, op)
	}
	var buf [MaxEffects]Effect
	effects := AppendDeltas(buf[:0], wh, op)
	if len(effects) == 0 {
		return nil, fmt.Errorf("ledger: op kind %s has no effect rule", op.Kind)
	}
	changes := make([]Change, 0, len(effects))
	for _, e := range effects {
		if err := st.AddDelta(e.Key, ord, e.Qty); err != nil {
			return nil, err
		}
		ks, existed, err := st.GetKey(e.Key)
		if err != nil {
			return nil, err
		}
		before := ks.OnHand()
		if !existed {
			if ks, err = fresh(st, e.Key); err != nil {
				return nil, err
			}
		} else if ord.Compare(ks.Count) > 0 {
			if ks.Sum, err = addQty(ks.Sum, e.Qty); err != nil {
				return nil, fmt.Errorf("ledger: key %v: %w", e.Key, err)
			}
		}
		if err := st.PutKey(e.Key, ks); err != nil {
			return nil, err
		}
		changes = append(changes, Change{Key: e.Key, Before: before, After: ks.OnHand(), Existed: existed})
	}
	return changes, nil
}

// fresh builds the state of a key seen for the first time: covered by its
// location's latest location count, if any, plus every delta after it.
func fresh(st Store, k Key) (KeyState, error) {
	var ks KeyState
	if k.CoveredByLocCount() {
		lc, ok, err := st.GetLocCount(k.WH, k.Location)
		if err != nil {
			return ks, err
		}
		if ok {
			ks.Count = lc
		}
	}
	var err error
	ks.Sum, err = st.SumAfter(k, ks.Count)
	return ks, err
}

func applyCount(st Store, wh string, ord Order, op *protocol.Op) ([]Change, error) {
	lines := CountLines(wh, op)
	targets := make(map[Key]int64, len(lines))
	order := make([]Key, 0, len(lines))
	for _, l := range lines {
		targets[l.Key] = l.Qty
		order = append(order, l.Key)
	}
	if op.Scope == protocol.ScopeLocation {
		lc, ok, err := st.GetLocCount(wh, op.Location)
		if err != nil {
			return nil, err
		}
		if !ok || ord.Compare(lc) > 0 {
			if err := st.PutLocCount(wh, op.Location, ord); err != nil {
				return nil, err
			}
			keys, err := st.KeysAt(wh, op.Location)
			if err != nil {
				return nil, err
			}
			for _, k := range keys {
				if _, listed := targets[k]; !listed && k.CoveredByLocCount() {
					targets[k] = 0
					order = append(order, k)
				}
			}
		}
	}
	changes := make([]Change, 0, len(order))
	for _, k := range order {
		ks, existed, err := st.GetKey(k)
		if err != nil {
			return nil, err
		}
		before := ks.OnHand()
		if !existed {
			if ks, err = fresh(st, k); err != nil {
				return nil, err
			}
		}
		// >= : fresh() may already have taken this very count as the
		// location's covering count, with quantity 0.
		if ord.Compare(ks.Count) >= 0 {
			ks.Count, ks.CountQty = ord, targets[k]
			if ks.Sum, err = st.SumAfter(k, ord); err != nil {
				return nil, err
			}
		}
		if err := st.PutKey(k, ks); err != nil {
			return nil, err
		}
		changes = append(changes, Change{Key: k, Before: before, After: ks.OnHand(), Existed: existed})
	}
	return changes, nil
}
