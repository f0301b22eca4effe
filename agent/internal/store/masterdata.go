package store

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"sort"
	"strings"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/agent/internal/session"
	"github.com/shelfsync/shelfsync/protocol"
)

// Local master data and work documents, beside the ledger's keys:
//
//	md/i/{sku}               catalog item (CBOR)
//	md/g/{gtin}              sku of a GTIN-14
//	md/l/{code}              location (CBOR)
//	md/t/{sku}               reorder threshold (CBOR)
//	md/p/{po}                purchase order (CBOR)
//	md/s                     warehouse settings (CBOR)
//	md/r/{po}\0{line}        received here against a PO line (int64)
//	md/k/{task}              picked here against a task (int64)
//	md/c/p/{po}, md/c/t/{id} status set here by a close not yet confirmed
//	md/e/{epc hex}           location of a serialised unit
//	md/w/{loc}               EPC set of the location's last rfid sweep (CBOR)
//	md/n/{id}                notice for the server, until acknowledged (CBOR)
const (
	mdItem     = "md/i/"
	mdGTIN     = "md/g/"
	mdLoc      = "md/l/"
	mdThresh   = "md/t/"
	mdPO       = "md/p/"
	mdSettings = "md/s"
	mdRecv     = "md/r/"
	mdPicked   = "md/k/"
	mdClosed   = "md/c/"
	mdEPC      = "md/e/"
	mdSweep    = "md/w/"
	mdNotice   = "md/n/"
)

// Down is the decoded content of a downstream batch.
type Down struct {
	Stock      []protocol.StockValue
	Tasks      []protocol.Task
	Items      []protocol.Item
	Locations  []protocol.Location
	Thresholds []protocol.Threshold
	POs        []protocol.PurchaseOrder
	Settings   *protocol.Settings
	NoticeAcks []string
}

// signal is a level-triggered wake-up; its zero value is ready to use.
type signal struct {
	once sync.Once
	c    chan struct{}
}

func (g *signal) ch() chan struct{} {
	g.once.Do(func() { g.c = make(chan struct{}, 1) })
	return g.c
}

func (g *signal) poke() {
	select {
	case g.ch() <- struct{}{}:
	default:
	}
}

// NoticeNotify returns a channel signalled after notices are committed,
// so the uplink can publish them without waiting for its status period.
func (s *Store) NoticeNotify() <-chan struct{} { return s.notices.ch() }

// ApplyDownItems applies a downstream batch: master data and notice
// acknowledgements, then stock and tasks as ApplyDown does, all in one
// transaction.
func (s *Store) ApplyDownItems(d Down, upWM, last uint64) error {
	return s.applyDown(func(txn *badger.Txn) error { return writeMaster(txn, d) }, d.Stock, d.Tasks, upWM, last)
}

func putOrDelete(txn *badger.Txn, key string, deleted bool, v any) error {
	if deleted {
		return txn.Delete([]byte(key))
	}
	b, err := protocol.Marshal(v)
	if err != nil {
		return err
	}
	return txn.Set([]byte(key), b)
}

func writeMaster(txn *badger.Txn, d Down) error {
	for _, it := range d.Items {
		var old protocol.Item
		if ok, err := getCBOR(txn, mdItem+it.SKU, &old); err != nil {
			return err
		} else if ok {
			for _, g := range old.GTINs {
				if err := txn.Delete([]byte(mdGTIN + g)); err != nil {
					return err
				}
			}
		}
		if err := putOrDelete(txn, mdItem+it.SKU, it.Deleted, it); err != nil {
			return err
		}
		if it.Deleted {
			continue
		}
		for _, g := range it.GTINs {
			if err := txn.Set([]byte(mdGTIN+g), []byte(it.SKU)); err != nil {
				return err
			}
		}
	}
	for _, l := range d.Locations {
		if err := putOrDelete(txn, mdLoc+l.Code, l.Deleted, l); err != nil {
			return err
		}
	}
	for _, t := range d.Thresholds {
		if err := putOrDelete(txn, mdThresh+t.SKU, t.Deleted, t); err != nil {
			return err
		}
	}
	for _, p := range d.POs {
		if err := putOrDelete(txn, mdPO+p.ID, p.Deleted, p); err != nil {
			return err
		}
	}
	if d.Settings != nil {
		if err := putOrDelete(txn, mdSettings, false, *d.Settings); err != nil {
			return err
		}
	}
	for _, id := range d.NoticeAcks {
		var n protocol.Notice
		ok, err := getCBOR(txn, mdNotice+id, &n)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if err := txn.Delete([]byte(mdNotice + id)); err != nil {
			return err
		}
		// The server owns the status from now on (it sent it before the ack).
		switch n.Kind {
		case protocol.NoticePOClose:
			err = txn.Delete([]byte(mdClosed + "p/" + n.Ref))
		case protocol.NoticeTaskClose:
			err = txn.Delete([]byte(mdClosed + "t/" + n.Ref))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func getCBOR(txn *badger.Txn, key string, v any) (bool, error) {
	it, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, it.Value(func(b []byte) error { return protocol.Unmarshal(b, v) })
}

func addI64(txn *badger.Txn, key string, d int64) (int64, error) {
	v, _, err := readI64(txn, []byte(key))
	if err != nil {
		return 0, err
	}
	v += d
	return v, txn.Set([]byte(key), be(uint64(v)))
}

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

// writeNotices stores the commit's notices, stamped with the last seq
// committed, and applies their local effect (a closed PO or task).
func writeNotices(txn *badger.Txn, c *Commit, seq uint64) error {
	for _, n := range c.Notices {
		n.Seq = seq
		switch n.Kind {
		case protocol.NoticePOClose:
			if err := txn.Set([]byte(mdClosed+"p/"+n.Ref), []byte("closed")); err != nil {
				return err
			}
		case protocol.NoticeTaskClose:
			st := "done"
			var t protocol.Task
			if ok, err := getCBOR(txn, pTask+n.Ref, &t); err != nil {
				return err
			} else if ok && t.Kind == "pick" && n.Qty < t.Qty {
				st = "short"
			}
			if err := txn.Set([]byte(mdClosed+"t/"+n.Ref), []byte(st)); err != nil {
				return err
			}
		}
		if err := putOrDelete(txn, mdNotice+n.ID, false, n); err != nil {
			return err
		}
		c.noticed = true
	}
	return nil
}

// Notices returns up to max pending notices, oldest first by seq.
func (s *Store) Notices(max int) ([]protocol.Notice, error) {
	var out []protocol.Notice
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(mdNotice), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var n protocol.Notice
			if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &n) }); err != nil {
				return err
			}
			out = append(out, n)
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	if max > 0 && len(out) > max {
		out = out[:max]
	}
	return out, err
}

// EPCLocations returns where each serialised unit was last recorded.
func (s *Store) EPCLocations() (map[string]string, error) {
	out := map[string]string{}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(mdEPC), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out[strings.TrimPrefix(string(it.Item().Key()), mdEPC)] = string(v)
		}
		return nil
	})
	return out, err
}

// Known reports whether a serialised unit (EPC, upper-case hex) was ever
// recorded at this gateway.
func (s *Store) Known(epcHex string) (string, bool) {
	var loc string
	var ok bool
	_ = s.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get([]byte(mdEPC + epcHex))
		if err != nil {
			return nil
		}
		v, err := it.ValueCopy(nil)
		loc, ok = string(v), err == nil
		return nil
	})
	return loc, ok
}

// LastSweep returns the EPC set of a location's last rfid sweep.
func (s *Store) LastSweep(location string) ([]string, bool) {
	var set []string
	var ok bool
	_ = s.db.View(func(txn *badger.Txn) error {
		var err error
		ok, err = getCBOR(txn, mdSweep+location, &set)
		return err
	})
	return set, ok
}

// GhostStock reports, per location with an rfid sweep, the serialised
// units recorded there that its last sweep did not see.
func (s *Store) GhostStock() (map[string][]string, error) {
	locs, err := s.EPCLocations()
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	swept := map[string]map[string]bool{}
	for epc, loc := range locs {
		seen, ok := swept[loc]
		if !ok {
			set, has := s.LastSweep(loc)
			if !has {
				swept[loc] = nil
				continue
			}
			seen = map[string]bool{}
			for _, e := range set {
				seen[e] = true
			}
			swept[loc] = seen
		}
		if seen != nil && !seen[epc] {
			out[loc] = append(out[loc], epc)
		}
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out, nil
}

// Lookup returns the store's answers for session.Step.
func (s *Store) Lookup() session.Lookup { return lookup{s} }

type lookup struct{ s *Store }

var _ session.Lookup = lookup{}

func (l lookup) get(key string, v any) bool {
	var ok bool
	err := l.s.db.View(func(txn *badger.Txn) error {
		var err error
		ok, err = getCBOR(txn, key, v)
		return err
	})
	if err != nil {
		l.s.log.Warn("local master data unreadable", "key", key, "err", err)
	}
	return ok && err == nil
}

func (l lookup) i64(key string) int64 {
	var v int64
	_ = l.s.db.View(func(txn *badger.Txn) error {
		var err error
		v, _, err = readI64(txn, []byte(key))
		return err
	})
	return v
}

func (l lookup) closed(key string) string {
	var v string
	_ = l.s.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get([]byte(mdClosed + key))
		if err != nil {
			return nil
		}
		b, err := it.ValueCopy(nil)
		v = string(b)
		return err
	})
	return v
}

func list[T any](s *Store, prefix string) []T {
	var out []T
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var v T
			if err := it.Item().Value(func(b []byte) error { return protocol.Unmarshal(b, &v) }); err != nil {
				return err
			}
			out = append(out, v)
		}
		return nil
	})
	if err != nil {
		s.log.Warn("local master data unreadable", "prefix", prefix, "err", err)
	}
	return out
}

func (l lookup) Item(sku string) (protocol.Item, bool) {
	var it protocol.Item
	return it, l.get(mdItem+sku, &it)
}

func (l lookup) ItemByGTIN(gtin string) (protocol.Item, bool) {
	var sku string
	_ = l.s.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get([]byte(mdGTIN + gtin))
		if err != nil {
			return nil
		}
		b, err := it.ValueCopy(nil)
		sku = string(b)
		return err
	})
	if sku == "" {
		return protocol.Item{}, false
	}
	return l.Item(sku)
}

func (l lookup) Location(code string) (protocol.Location, bool) {
	var loc protocol.Location
	return loc, l.get(mdLoc+code, &loc)
}

func (l lookup) Locations() []protocol.Location { return list[protocol.Location](l.s, mdLoc) }

func (l lookup) PO(id string) (protocol.PurchaseOrder, bool) {
	var p protocol.PurchaseOrder
	if !l.get(mdPO+id, &p) {
		return p, false
	}
	if st := l.closed("p/" + id); st != "" {
		p.Status = st
	}
	return p, true
}

func (l lookup) Received(po string, line uint32) int64 { return l.i64(recvKey(po, line)) }

func (l lookup) Task(id string) (protocol.Task, bool) {
	var t protocol.Task
	if !l.get(pTask+id, &t) {
		return t, false
	}
	if st := l.closed("t/" + id); st != "" && (t.Status == "" || t.Status == "open") {
		t.Status = st
	}
	return t, true
}

func (l lookup) Tasks() []protocol.Task {
	ts := list[protocol.Task](l.s, pTask)
	for i := range ts {
		if st := l.closed("t/" + ts[i].ID); st != "" && (ts[i].Status == "" || ts[i].Status == "open") {
			ts[i].Status = st
		}
	}
	return ts
}

func (l lookup) Picked(task string) int64 { return l.i64(mdPicked + task) }

func (l lookup) Stock(location, sku string) []session.Stock {
	rows, err := l.s.Stock(location, sku)
	if err != nil {
		l.s.log.Warn("local stock unreadable", "err", err)
	}
	out := make([]session.Stock, 0, len(rows))
	for _, r := range rows {
		if r.OnHand != 0 {
			out = append(out, session.Stock{Location: r.Location, SKU: r.SKU, Lot: r.Lot, OnHand: r.OnHand})
		}
	}
	return out
}

func (l lookup) Settings() protocol.Settings {
	var st protocol.Settings
	l.get(mdSettings, &st)
	return st
}

// Items lists the local catalog.
func (s *Store) Items() []protocol.Item { return list[protocol.Item](s, mdItem) }

// Thresholds lists the local reorder thresholds.
func (s *Store) Thresholds() []protocol.Threshold { return list[protocol.Threshold](s, mdThresh) }

// POs lists the purchase orders the gateway holds, with local closes.
func (s *Store) POs() []protocol.PurchaseOrder {
	ps := list[protocol.PurchaseOrder](s, mdPO)
	l := lookup{s}
	for i := range ps {
		if st := l.closed("p/" + ps[i].ID); st != "" {
			ps[i].Status = st
		}
	}
	return ps
}
