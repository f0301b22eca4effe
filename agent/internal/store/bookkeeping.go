package store

import (
	"encoding/binary"
	"encoding/hex"
	"sort"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/protocol"
)

// What each committed op changes beside the ledger, in the op's own
// transaction: receipts per PO line, picks per task, where each serialised
// unit is, the last EPC set of a swept location, and a reorder notice when
// a pick crosses its sku's reorder point.

func recvKey(po string, line uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], line)
	return mdRecv + po + "\x00" + string(b[:])
}

// trackOp keeps what the sessions check against up to date in the op's
// own transaction: receipts per PO line, picks per task, EPC locations,
// and a reorder notice when a pick crosses its sku's reorder point.
func (s *Store) trackOp(txn *badger.Txn, op *protocol.Op, c *Commit) error {
	switch op.Kind {
	case protocol.OpReceive:
		if op.Refs != nil && op.Refs.PO != "" {
			if _, err := addI64(txn, recvKey(op.Refs.PO, op.Refs.POLine), op.Qty); err != nil {
				return err
			}
		}
	case protocol.OpPick:
		if op.Refs != nil && op.Refs.Task != "" {
			if _, err := addI64(txn, mdPicked+op.Refs.Task, op.Qty); err != nil {
				return err
			}
		}
		if err := s.reorderCheck(txn, op, c); err != nil {
			return err
		}
	}
	loc := op.Location
	if op.To != "" {
		loc = op.To
	}
	for _, e := range op.EPCs {
		if err := txn.Set([]byte(mdEPC+strings.ToUpper(hex.EncodeToString(e))), []byte(loc)); err != nil {
			return err
		}
	}
	if op.Kind == protocol.OpRFIDSweep {
		set := make([]string, 0, len(op.EPCs))
		for _, e := range op.EPCs {
			set = append(set, strings.ToUpper(hex.EncodeToString(e)))
		}
		sort.Strings(set)
		return putOrDelete(txn, mdSweep+op.Location, false, set)
	}
	return nil
}

// reorderCheck raises a reorder notice when the pick took the sku's
// on-hand (all locations of the local view) from above its reorder point
// to at or below it: one notice per downward crossing.
func (s *Store) reorderCheck(txn *badger.Txn, op *protocol.Op, c *Commit) error {
	var th protocol.Threshold
	ok, err := getCBOR(txn, mdThresh+op.SKU, &th)
	if err != nil || !ok {
		return err
	}
	th = th.On(op.HLC.Time().UTC().Format("2006-01-02"))
	after, err := skuOnHand(txn, op.SKU)
	if err != nil {
		return err
	}
	before := after + op.Qty
	if !(after <= th.ReorderPoint && before > th.ReorderPoint) {
		return nil
	}
	n := protocol.Notice{
		ID: protocol.NoticeReorder + "/" + op.SKU + "/" + uitoa(op.Seq), Kind: protocol.NoticeReorder, Seq: op.Seq,
		At: op.HLC.Time().UnixMilli(), SKU: op.SKU, Location: op.Location, Qty: after, Threshold: th.ReorderPoint,
		Device: op.Device, Operator: op.Operator,
	}
	c.noticed = true
	return putOrDelete(txn, mdNotice+n.ID, false, n)
}

func uitoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}

func skuOnHand(txn *badger.Txn, sku string) (int64, error) {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pView), PrefetchValues: false})
	defer it.Close()
	var sum int64
	for it.Rewind(); it.Valid(); it.Next() {
		k, ok := parseViewKey(it.Item().Key(), pView)
		if !ok || k.SKU != sku {
			continue
		}
		if err := it.Item().Value(func(b []byte) error { sum += int64(binary.BigEndian.Uint64(b)); return nil }); err != nil {
			return 0, err
		}
	}
	return sum, nil
}
