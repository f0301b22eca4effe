package masterdata

import (
	"context"
	"fmt"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Advance ship notices (ASNs): the lines (sku, lot, expiry, qty) a pallet
// named by its SSCC carries, usually against a purchase order. A gateway
// receives every line with one scan of the pallet label, and moves them
// all with another (a license plate).

// pASN keys an ASN: md/asn/{wh}\0{sscc} → protocol.ASN (CBOR).
const pASN = "md/asn/"

func validASN(a *protocol.ASN) error {
	a.Deleted = false
	if err := protocol.CheckSSCC(a.SSCC); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := field("po", a.PO, false); err != nil {
		return err
	}
	if len(a.Lines) == 0 {
		return fmt.Errorf("%w: lines: at least one line is required", ErrInvalid)
	}
	for i, l := range a.Lines {
		if err := field(fmt.Sprintf("lines[%d].sku", i), l.SKU, true); err != nil {
			return err
		}
		if err := field(fmt.Sprintf("lines[%d].lot", i), l.Lot, false); err != nil {
			return err
		}
		if l.Expiry != "" {
			if _, err := time.Parse(time.DateOnly, l.Expiry); err != nil {
				return fmt.Errorf("%w: lines[%d].expiry %q: want YYYY-MM-DD", ErrInvalid, i, l.Expiry)
			}
		}
		if l.Qty <= 0 || l.Qty > protocol.MaxOpQty {
			return fmt.Errorf("%w: lines[%d].qty %d must be 1..%d", ErrInvalid, i, l.Qty, protocol.MaxOpQty)
		}
	}
	return nil
}

// PutASNs creates or replaces advance ship notices. Each line obeys the
// scanner's rules for its item (a lot for a lot-tracked item, an expiry
// for an expiry-tracked one). An ASN goes to the gateway serving its PO's
// dock, or to every gateway when that is not known.
func (s *Service) PutASNs(_ context.Context, wh string, asns []protocol.ASN) error {
	for i := range asns {
		if err := validASN(&asns[i]); err != nil {
			return fmt.Errorf("asns[%d]: %w", i, err)
		}
	}
	return s.b.Update(func(tx store.Tx) error {
		for i, a := range asns {
			for j, l := range a.Lines {
				it, _, err := ItemOf(tx, wh, l.SKU)
				if err != nil {
					return err
				}
				switch {
				case it.TrackLot && l.Lot == "":
					return fmt.Errorf("asns[%d].lines[%d]: %w: %s is lot-tracked: give its lot", i, j, ErrInvalid, l.SKU)
				case it.TrackExpiry && l.Expiry == "":
					return fmt.Errorf("asns[%d].lines[%d]: %w: %s is expiry-tracked: give the lot's expiry (YYYY-MM-DD)", i, j, ErrInvalid, l.SKU)
				}
			}
			if err := putCBOR(tx, key(pASN, wh, a.SSCC), a); err != nil {
				return err
			}
			target, err := asnGateway(tx, wh, a.PO)
			if err != nil {
				return err
			}
			if err := tx.AppendDown(wh, target, protocol.DownASN, "asn/"+a.SSCC, a); err != nil {
				return err
			}
		}
		return nil
	})
}

// asnGateway is the gateway serving the dock of the ASN's PO ("" when
// unknown: every gateway).
func asnGateway(tx store.Tx, wh, po string) (string, error) {
	if po == "" {
		return "", nil
	}
	var rec poRecord
	if ok, err := getCBOR(tx, key(pPO, wh, po), &rec); err != nil || !ok {
		return "", err
	}
	return gatewayOf(tx, wh, rec.PO.Dock)
}

func deleteASN(tx store.Tx, wh, sscc string) error {
	var a protocol.ASN
	if ok, err := getCBOR(tx, key(pASN, wh, sscc), &a); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("asn %s: %w", sscc, ErrNotFound)
	}
	if err := tx.Delete(key(pASN, wh, sscc)); err != nil {
		return err
	}
	target, err := asnGateway(tx, wh, a.PO)
	if err != nil {
		return err
	}
	return tx.AppendDown(wh, target, protocol.DownASN, "asn/"+sscc, protocol.ASN{SSCC: sscc, Deleted: true})
}
