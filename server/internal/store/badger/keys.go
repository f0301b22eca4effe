package badger

import (
	"encoding/binary"
	"strings"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
)

// Key layout. Fields are joined with NUL, which protocol validation forbids
// inside IDs, skus, locations and lots; numbers are big-endian so that byte
// order is numeric order.
//
//	m/epoch                         store epoch
//	w/{wh}\0{gw}                    watermark (uint64)
//	o/{wh}\0{gw}\0{seq}             op (CBOR)
//	q/{wh}\0{gw}\0{seq}             quarantined op (CBOR)
//	k/{path}                        ledger.KeyState (CBOR)
//	l/{wh}\0{loc}                   location count order (CBOR)
//	d/{path}\0{hlc}{gw}\0{seq}      delta qty (int64), ordered by merge order
//
// A stock key's path is {wh}\0{loc}\0{sku}\0{lot}, the layout from before
// owners and statuses, for a key with owner "" and status available; any
// other key appends \x01{owner}\x01{status digit} to the lot. Validation
// forbids control characters in lots and owners, so no path is a prefix of
// another's delta prefix, and a data directory written before owners and
// statuses reads as owner "", status available.
const (
	pfxEpoch = "m/epoch"
	pfxWM    = "w/"
	pfxOp    = "o/"
	pfxQuar  = "q/"
	pfxKey   = "k/"
	pfxLoc   = "l/"
	pfxDelta = "d/"
)

func join(parts ...string) string { return strings.Join(parts, "\x00") }

func u64(v uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return string(b[:])
}

func wmKey(wh, gw string) []byte { return []byte(pfxWM + join(wh, gw)) }

func opKey(pfx, wh, gw string, seq uint64) []byte {
	return []byte(pfx + join(wh, gw, u64(seq)))
}

// keyPath is a stock key's path (see the layout above).
func keyPath(k ledger.Key) string { return join(k.WH, k.Location, k.SKU, ledger.StoredLot(k)) }

func stockKey(k ledger.Key) []byte { return []byte(pfxKey + keyPath(k)) }

func parseStockKey(b []byte) (ledger.Key, bool) {
	parts := strings.Split(strings.TrimPrefix(string(b), pfxKey), "\x00")
	if len(parts) != 4 {
		return ledger.Key{}, false
	}
	k := ledger.Key{WH: parts[0], Location: parts[1], SKU: parts[2]}
	return k, k.SetStoredLot(parts[3])
}

func locKey(wh, loc string) []byte { return []byte(pfxLoc + join(wh, loc)) }

func deltaPrefix(k ledger.Key) []byte {
	return []byte(pfxDelta + keyPath(k) + "\x00")
}

func orderBytes(o ledger.Order) string {
	return u64(uint64(o.HLC)) + o.GW + "\x00" + u64(o.Seq)
}

// storedLotLen is len(ledger.StoredLot(k)).
func storedLotLen(k ledger.Key) int {
	if k.Owner == "" && k.Status == protocol.StatusAvailable {
		return len(k.Lot)
	}
	return len(k.Lot) + 1 + len(k.Owner) + 2
}

// appendKeyPath appends keyPath(k) to b.
func appendKeyPath(b []byte, k ledger.Key) []byte {
	b = append(b, k.WH...)
	b = append(b, 0)
	b = append(b, k.Location...)
	b = append(b, 0)
	b = append(b, k.SKU...)
	b = append(b, 0)
	b = append(b, k.Lot...)
	if k.Owner != "" || k.Status != protocol.StatusAvailable {
		b = append(b, 1)
		b = append(b, k.Owner...)
		b = append(b, 1, byte('0'+k.Status))
	}
	return b
}

// deltaKeyLen is the length of k's delta key at o.
func deltaKeyLen(k ledger.Key, o ledger.Order) int {
	return len(pfxDelta) + len(k.WH) + len(k.Location) + len(k.SKU) + storedLotLen(k) + 4 + 8 + len(o.GW) + 1 + 8
}

// appendDeltaKey appends k's delta key at o (deltaPrefix(k) +
// orderBytes(o)) to b.
func appendDeltaKey(b []byte, k ledger.Key, o ledger.Order) []byte {
	b = append(b, pfxDelta...)
	b = appendKeyPath(b, k)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(o.HLC))
	b = append(b, o.GW...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint64(b, o.Seq)
}
