package store

import (
	"github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/agent/internal/session"
	"github.com/shelfsync/shelfsync/protocol"
)

// The store's answers to session.Step (session.Lookup): master data,
// purchase orders, tasks and the local view, read in one place.

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

func (l lookup) ItemsByGTIN(gtin string) []protocol.Item {
	var out []protocol.Item
	err := l.s.db.View(func(txn *badger.Txn) error {
		skus, err := gtinSKUs(txn, gtin)
		if err != nil {
			return err
		}
		for _, sku := range skus {
			var it protocol.Item
			if ok, err := getCBOR(txn, mdItem+sku, &it); err != nil {
				return err
			} else if ok {
				out = append(out, it)
			}
		}
		return nil
	})
	if err != nil {
		l.s.log.Warn("local master data unreadable", "gtin", gtin, "err", err)
	}
	return out
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

func (l lookup) ASN(sscc string) (protocol.ASN, bool) {
	var a protocol.ASN
	return a, l.get(mdASN+sscc, &a)
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

func (l lookup) OrderTasks(order string) []protocol.Task {
	ts, err := l.s.OrderTasks(order)
	if err != nil {
		l.s.log.Warn("local tasks unreadable", "order", order, "err", err)
	}
	return ts
}

func (l lookup) Picked(task string) int64 { return l.i64(mdPicked + task) }

func (l lookup) Shipped(order string) bool { return l.closed("o/"+order) != "" }

func (l lookup) Stock(location, sku string) []session.Stock {
	rows, err := l.s.Stock(location, sku)
	if err != nil {
		l.s.log.Warn("local stock unreadable", "err", err)
	}
	out := make([]session.Stock, 0, len(rows))
	for _, r := range rows {
		if r.OnHand != 0 {
			out = append(out, session.Stock{Location: r.Location, SKU: r.SKU, Lot: r.Lot, Owner: r.Owner, Status: r.Status, OnHand: r.OnHand})
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

// ASNs lists the advance ship notices the gateway holds.
func (s *Store) ASNs() []protocol.ASN { return list[protocol.ASN](s, mdASN) }

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
