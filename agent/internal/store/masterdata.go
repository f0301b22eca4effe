package store

import (
	"errors"

	"github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/protocol"
)

// Local master data and work documents, beside the ledger's keys:
//
//	md/i/{sku}               catalog item (CBOR)
//	md/g/{gtin}              sku of a GTIN-14 (written before owners: read, dropped with its item)
//	md/G/{gtin}\0{sku}       the GTIN-14 maps to the sku (several skus of different owners)
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
//	md/a/{sscc}              advance ship notice of a pallet (CBOR)
const (
	mdItem     = "md/i/"
	mdGTIN     = "md/g/"
	mdGTINs    = "md/G/"
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
	mdASN      = "md/a/"
)

// Down is the decoded content of a downstream batch.
type Down struct {
	Stock      []protocol.StockValue
	Tasks      []protocol.Task
	Items      []protocol.Item
	Locations  []protocol.Location
	Thresholds []protocol.Threshold
	POs        []protocol.PurchaseOrder
	ASNs       []protocol.ASN
	Settings   *protocol.Settings
	NoticeAcks []string
	// Epoch is the server identity the batch came from: recorded with the
	// downstream position (DownEpoch).
	Epoch string
}

// ApplyDownItems applies a downstream batch: master data and notice
// acknowledgements, then stock and tasks as ApplyDown does, all in one
// transaction.
func (s *Store) ApplyDownItems(d Down, upWM, last uint64) error {
	if err := s.checkDisk(); err != nil {
		return err // not acknowledged: the server sends it again
	}
	return s.applyDown(func(txn *badger.Txn) error {
		if d.Epoch != "" {
			if err := txn.Set([]byte(kDownEpoch), []byte(d.Epoch)); err != nil {
				return err
			}
		}
		return writeMaster(txn, d)
	}, d.Stock, d.Tasks, upWM, last)
}

// DownEpoch makes the downstream position one of the server identity
// epoch. The position counts in one server's downstream log; a batch
// under another identity (a server restored or replaced) restarts from its
// seq 1, so a position kept from the old log would drop the new items as
// already seen — keys never reflected. This happens even without an
// upstream regression: a gateway that got downstream items but no ack
// before the server's state changed has no upstream epoch to compare.
// When the recorded identity differs, the position and the server values
// are dropped (ResetDown) and reset reports true. A store that recorded no
// identity (an older agent's) is left as it is.
func (s *Store) DownEpoch(epoch string) (reset bool, err error) {
	if epoch == "" {
		return false, nil
	}
	var was string
	if err := s.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get([]byte(kDownEpoch))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		v, err := it.ValueCopy(nil)
		was = string(v)
		return err
	}); err != nil {
		return false, err
	}
	if was == "" || was == epoch {
		return false, nil
	}
	return true, s.ResetDown()
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
				if err := dropGTIN(txn, g, it.SKU); err != nil {
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
			if err := txn.Set([]byte(mdGTINs+g+"\x00"+it.SKU), nil); err != nil {
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
	for _, a := range d.ASNs {
		if err := putOrDelete(txn, mdASN+a.SSCC, a.Deleted, a); err != nil {
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
		case protocol.NoticeShip:
			// The server shipped (or refused) it; a repeated ship of a
			// shipped order changes nothing there.
			if err = txn.Delete([]byte(mdClosed + "o/" + n.Ref)); err == nil {
				err = settleShippedOrder(txn, n.Ref)
			}
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

// dropGTIN removes the mapping of a GTIN to sku, in either layout.
func dropGTIN(txn *badger.Txn, gtin, sku string) error {
	if legacy, ok, err := getString(txn, mdGTIN+gtin); err != nil {
		return err
	} else if ok && legacy == sku {
		if err := txn.Delete([]byte(mdGTIN + gtin)); err != nil {
			return err
		}
	}
	return txn.Delete([]byte(mdGTINs + gtin + "\x00" + sku))
}

// gtinSKUs returns the skus a GTIN-14 maps to, in both layouts.
func gtinSKUs(txn *badger.Txn, gtin string) ([]string, error) {
	var out []string
	legacy, ok, err := getString(txn, mdGTIN+gtin)
	if err != nil {
		return nil, err
	}
	if ok {
		out = append(out, legacy)
	}
	prefix := []byte(mdGTINs + gtin + "\x00")
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if sku := string(it.Item().Key()[len(prefix):]); sku != legacy {
			out = append(out, sku)
		}
	}
	return out, nil
}

func getString(txn *badger.Txn, key string) (string, bool, error) {
	it, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	b, err := it.ValueCopy(nil)
	return string(b), err == nil, err
}
