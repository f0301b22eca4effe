// Package masterdata owns a warehouse's master data on the server: the
// catalog (items with their GTINs, lot and expiry tracking and pick
// velocity), locations (zone, type, sellable flag, distance rank from
// packing), zones and the gateway serving each, reorder thresholds,
// purchase orders and the warehouse settings (strict catalog, skew window,
// over-receipt allowance).
//
// Every change is written in one transaction with the downstream item that
// carries it to the gateways (compacted per record, tombstones for
// deletions), so a gateway that was away gets the latest of each record.
// The package also takes the gateways' notices (receipt and task closes,
// local reorder alerts; protocol.Notice) once the ops they sum up are
// applied: closing a purchase order raises a receipt discrepancy for each
// line received short.
//
// Records live in the store's key-value space (store.KV, through
// store.Records transactions) under the md/ prefix (keys.go), so they work
// over every backend that implements store.Records.
package masterdata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Backend is the store the service writes through: any store.Records
// (the embedded Badger store, PostgreSQL).
//
// Deprecated: use store.Records.
type Backend = store.Records

// Errors.
var (
	// ErrNotFound: no record with that key.
	ErrNotFound = errors.New("masterdata: not found")
	// ErrInvalid is wrapped by validation errors; the message names the
	// field and says what is wanted.
	ErrInvalid = errors.New("masterdata: invalid record")
)

// Kind names a kind of record, as in the API paths.
type Kind string

// Record kinds.
const (
	Items      Kind = "items"
	Locations  Kind = "locations"
	Zones      Kind = "zones"
	Thresholds Kind = "thresholds"
	POs        Kind = "pos"
	ASNs       Kind = "asns" // advance ship notices of pallets, keyed by SSCC
)

// Kinds lists the record kinds.
var Kinds = []Kind{Items, Locations, Zones, Thresholds, POs, ASNs}

// ParseKind checks a kind name.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("%w: kind %q: want items, locations, zones, thresholds, pos or asns", ErrInvalid, s)
}

// Zone says which gateway serves a zone: its pick and count tasks and the
// purchase orders of its docks go there.
type Zone struct {
	Zone    string `json:"zone" cbor:"1,keyasint"`
	Gateway string `json:"gateway" cbor:"2,keyasint"`
}

// PO is a purchase order as the server keeps it.
type PO struct {
	protocol.PurchaseOrder
	ClosedBy string `json:"closed_by,omitempty"` // gateway (or API caller) that closed it
	ClosedAt int64  `json:"closed_at_ms,omitempty"`
	// Received is what was received per line (computed when read one at a
	// time, and at close).
	Received map[uint32]int64 `json:"received,omitempty"`
	// Unexpected is what was received against the PO for skus none of its
	// lines lists.
	Unexpected map[string]int64 `json:"unexpected,omitempty"`
}

type poRecord struct {
	PO       protocol.PurchaseOrder `cbor:"1,keyasint"`
	ClosedBy string                 `cbor:"2,keyasint,omitempty"`
	ClosedAt int64                  `cbor:"3,keyasint,omitempty"`
}

// Options configure a Service.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// OnTaskShort, when set, is called after a gateway closed a pick task
	// short (pick routing routes the remainder again).
	OnTaskShort func(ctx context.Context, wh string, t protocol.Task)
	// OnReorder, when set, is called for a gateway's reorder notice that
	// opened an alert (not for duplicates).
	OnReorder func(wh string, a ReorderAlert)
	// OnShip, when set, ships the order a gateway's ship notice names
	// (protocol.NoticeShip) and returns what happened, recorded with the
	// notice; it must be idempotent (it runs again if the server stops
	// before the notice is marked taken). An error leaves the notice
	// untaken: the gateway repeats it. Without OnShip, ship notices are
	// recorded and wait.
	OnShip func(ctx context.Context, wh, gw string, n protocol.Notice) (string, error)
}

// Service reads and writes master data. It keeps no state of its own (no
// cache): every read, Threshold, Sellable and OnOrder included, goes to
// the store, so several services — in one process or in several server
// replicas over one database — may share one store and each sees the
// others' committed writes at once.
type Service struct {
	b   store.Records
	opt Options
	// shipMu serialises taking ship notices in this process: a status and
	// the batch that covers its seq may both hand one over at once, and
	// only one of them may act on it (notices.go, ship).
	shipMu sync.Mutex
}

// New returns a service over b.
func New(b store.Records, opt Options) *Service {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return &Service{b: b, opt: opt}
}

// For returns a service over st.
func For(st store.Store, opt Options) *Service { return New(st, opt) }

// Backend returns the store the service writes through.
func (s *Service) Backend() store.Records { return s.b }

// PutItems creates or replaces catalog items.
func (s *Service) PutItems(_ context.Context, wh string, items []protocol.Item) error {
	for i := range items {
		if err := validItem(&items[i]); err != nil {
			return fmt.Errorf("items[%d]: %w", i, err)
		}
	}
	return s.b.Update(func(tx store.Tx) error {
		for _, it := range items {
			if err := putItem(tx, wh, it); err != nil {
				return err
			}
		}
		return nil
	})
}

func putItem(tx store.Tx, wh string, it protocol.Item) error {
	var old protocol.Item
	had, err := getCBOR(tx, key(pItem, wh, it.SKU), &old)
	if err != nil {
		return err
	}
	for _, g := range it.GTINs {
		if err := shareableGTIN(tx, wh, g, it); err != nil {
			return err
		}
	}
	if had {
		for _, g := range old.GTINs {
			if err := dropGTIN(tx, wh, g, it.SKU); err != nil {
				return err
			}
		}
	}
	for _, g := range it.GTINs {
		if err := tx.Set(key(pGTINs, wh, g, it.SKU), []byte(it.Owner)); err != nil {
			return err
		}
	}
	if err := putCBOR(tx, key(pItem, wh, it.SKU), it); err != nil {
		return err
	}
	if it.Owner != "" { // from now on CheckOp gives ops without an owner their item's
		if err := tx.Set(key(pOwned, wh), nil); err != nil {
			return err
		}
	}
	return tx.AppendDown(wh, "", protocol.DownCatalog, "item/"+it.SKU, it)
}

// PutLocations creates or replaces locations.
func (s *Service) PutLocations(_ context.Context, wh string, locs []protocol.Location) error {
	for i := range locs {
		if err := validLocation(&locs[i]); err != nil {
			return fmt.Errorf("locations[%d]: %w", i, err)
		}
	}
	return s.b.Update(func(tx store.Tx) error {
		if len(locs) > 0 {
			// From now on the warehouse's ops must name defined locations
			// (CheckOp reads this point key instead of scanning).
			if err := tx.Set(key(pLocManaged, wh), nil); err != nil {
				return err
			}
		}
		for _, l := range locs {
			if err := putCBOR(tx, key(pLoc, wh, l.Code), l); err != nil {
				return err
			}
			if err := tx.AppendDown(wh, "", protocol.DownLocation, "loc/"+l.Code, l); err != nil {
				return err
			}
		}
		return nil
	})
}

// PutZones sets the gateway serving each zone. Zones stay on the server.
func (s *Service) PutZones(_ context.Context, wh string, zones []Zone) error {
	for i := range zones {
		if err := validZone(&zones[i]); err != nil {
			return fmt.Errorf("zones[%d]: %w", i, err)
		}
	}
	return s.b.Update(func(tx store.Tx) error {
		for _, z := range zones {
			if err := putCBOR(tx, key(pZone, wh, z.Zone), z); err != nil {
				return err
			}
		}
		return nil
	})
}

// PutThresholds creates or replaces reorder thresholds.
func (s *Service) PutThresholds(_ context.Context, wh string, ts []protocol.Threshold) error {
	for i := range ts {
		if err := validThreshold(&ts[i]); err != nil {
			return fmt.Errorf("thresholds[%d]: %w", i, err)
		}
	}
	return s.b.Update(func(tx store.Tx) error {
		for _, t := range ts {
			if err := putCBOR(tx, key(pThresh, wh, t.SKU), t); err != nil {
				return err
			}
			if err := tx.AppendDown(wh, "", protocol.DownThreshold, "thr/"+t.SKU, t); err != nil {
				return err
			}
		}
		return nil
	})
}

// PutPOs creates or replaces purchase orders. A PO is sent to the gateway
// serving its dock's zone, or to every gateway when none is known.
func (s *Service) PutPOs(_ context.Context, wh string, pos []protocol.PurchaseOrder) error {
	for i := range pos {
		if err := validPO(&pos[i]); err != nil {
			return fmt.Errorf("pos[%d]: %w", i, err)
		}
	}
	return s.b.Update(func(tx store.Tx) error {
		for i, p := range pos {
			if err := knownLocation(tx, wh, p.Dock); err != nil {
				return fmt.Errorf("pos[%d]: dock: %w", i, err)
			}
			var old poRecord
			if _, err := getCBOR(tx, key(pPO, wh, p.ID), &old); err != nil {
				return err
			}
			rec := poRecord{PO: p}
			if p.Status == old.PO.Status {
				rec.ClosedBy, rec.ClosedAt = old.ClosedBy, old.ClosedAt
			}
			if err := writePO(tx, wh, rec); err != nil {
				return err
			}
		}
		return nil
	})
}

func writePO(tx store.Tx, wh string, rec poRecord) error {
	if err := putCBOR(tx, key(pPO, wh, rec.PO.ID), rec); err != nil {
		return err
	}
	target, err := gatewayOf(tx, wh, rec.PO.Dock)
	if err != nil {
		return err
	}
	return tx.AppendDown(wh, target, protocol.DownPO, "po/"+rec.PO.ID, rec.PO)
}

// knownLocation refuses a location a location-managed warehouse has not
// defined (the rule the scanner and CheckOp apply); "" passes.
func knownLocation(tx store.Tx, wh, code string) error {
	if code == "" {
		return nil
	}
	managed, err := exists(tx, key(pLocManaged, wh))
	if err != nil || !managed {
		return err
	}
	if ok, err := exists(tx, key(pLoc, wh, code)); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("%w: unknown location %q in %s: the scanner refuses it too; add the location first", ErrInvalid, code, wh)
	}
	return nil
}

// GatewayOf returns the gateway serving a location's zone ("" when the
// location, its zone or the zone's gateway is unknown).
func GatewayOf(tx store.Tx, wh, location string) (string, error) { return gatewayOf(tx, wh, location) }

func gatewayOf(tx store.Tx, wh, location string) (string, error) {
	if location == "" {
		return "", nil
	}
	var l protocol.Location
	if ok, err := getCBOR(tx, key(pLoc, wh, location), &l); err != nil || !ok || l.Zone == "" {
		return "", err
	}
	var z Zone
	if ok, err := getCBOR(tx, key(pZone, wh, l.Zone), &z); err != nil || !ok {
		return "", err
	}
	return z.Gateway, nil
}

// Delete removes a record; items, locations, thresholds and POs are sent
// downstream as tombstones.
func (s *Service) Delete(_ context.Context, wh string, kind Kind, id string) error {
	return s.b.Update(func(tx store.Tx) error {
		switch kind {
		case Items:
			var it protocol.Item
			if ok, err := getCBOR(tx, key(pItem, wh, id), &it); err != nil {
				return err
			} else if !ok {
				return fmt.Errorf("item %s: %w", id, ErrNotFound)
			}
			for _, g := range it.GTINs {
				if err := dropGTIN(tx, wh, g, id); err != nil {
					return err
				}
			}
			if err := tx.Delete(key(pItem, wh, id)); err != nil {
				return err
			}
			return tx.AppendDown(wh, "", protocol.DownCatalog, "item/"+id, protocol.Item{SKU: id, Deleted: true})
		case Locations:
			if err := mustExist(tx, key(pLoc, wh, id), "location "+id); err != nil {
				return err
			}
			if err := tx.Delete(key(pLoc, wh, id)); err != nil {
				return err
			}
			return tx.AppendDown(wh, "", protocol.DownLocation, "loc/"+id, protocol.Location{Code: id, Deleted: true})
		case Zones:
			if err := mustExist(tx, key(pZone, wh, id), "zone "+id); err != nil {
				return err
			}
			return tx.Delete(key(pZone, wh, id))
		case Thresholds:
			if err := mustExist(tx, key(pThresh, wh, id), "threshold "+id); err != nil {
				return err
			}
			if err := tx.Delete(key(pThresh, wh, id)); err != nil {
				return err
			}
			return tx.AppendDown(wh, "", protocol.DownThreshold, "thr/"+id, protocol.Threshold{SKU: id, Deleted: true})
		case POs:
			var rec poRecord
			if ok, err := getCBOR(tx, key(pPO, wh, id), &rec); err != nil {
				return err
			} else if !ok {
				return fmt.Errorf("po %s: %w", id, ErrNotFound)
			}
			if err := tx.Delete(key(pPO, wh, id)); err != nil {
				return err
			}
			target, err := gatewayOf(tx, wh, rec.PO.Dock)
			if err != nil {
				return err
			}
			return tx.AppendDown(wh, target, protocol.DownPO, "po/"+id, protocol.PurchaseOrder{ID: id, Deleted: true})
		case ASNs:
			return deleteASN(tx, wh, id)
		}
		return fmt.Errorf("%w: kind %q", ErrInvalid, kind)
	})
}

// Get returns one record of a kind (a PO with its received quantities).
func (s *Service) Get(_ context.Context, wh string, kind Kind, id string) (any, error) {
	var out any
	err := s.b.View(func(tx store.Tx) error {
		var ok bool
		var err error
		switch kind {
		case Items:
			var v protocol.Item
			ok, err = getCBOR(tx, key(pItem, wh, id), &v)
			out = v
		case Locations:
			var v protocol.Location
			ok, err = getCBOR(tx, key(pLoc, wh, id), &v)
			out = v
		case Zones:
			var v Zone
			ok, err = getCBOR(tx, key(pZone, wh, id), &v)
			out = v
		case Thresholds:
			var v protocol.Threshold
			ok, err = getCBOR(tx, key(pThresh, wh, id), &v)
			out = v
		case POs:
			var rec poRecord
			ok, err = getCBOR(tx, key(pPO, wh, id), &rec)
			if ok && err == nil {
				var p PO
				p, err = withReceipts(tx, wh, rec)
				out = p
			}
		case ASNs:
			var v protocol.ASN
			ok, err = getCBOR(tx, key(pASN, wh, id), &v)
			out = v
		default:
			return fmt.Errorf("%w: kind %q", ErrInvalid, kind)
		}
		if err == nil && !ok {
			err = fmt.Errorf("%s %s: %w", kind, id, ErrNotFound)
		}
		return err
	})
	return out, err
}

// List returns every record of a kind, sorted by key.
func (s *Service) List(_ context.Context, wh string, kind Kind) (any, error) {
	var out any
	err := s.b.View(func(tx store.Tx) error {
		var err error
		switch kind {
		case Items:
			out, err = listCBOR[protocol.Item](tx, pItem, wh)
		case Locations:
			out, err = listCBOR[protocol.Location](tx, pLoc, wh)
		case Zones:
			out, err = listCBOR[Zone](tx, pZone, wh)
		case Thresholds:
			out, err = listCBOR[protocol.Threshold](tx, pThresh, wh)
		case POs:
			var recs []poRecord
			recs, err = listCBOR[poRecord](tx, pPO, wh)
			pos := make([]PO, 0, len(recs))
			for _, r := range recs {
				pos = append(pos, PO{PurchaseOrder: r.PO, ClosedBy: r.ClosedBy, ClosedAt: r.ClosedAt})
			}
			out = pos
		case ASNs:
			out, err = listCBOR[protocol.ASN](tx, pASN, wh)
		default:
			err = fmt.Errorf("%w: kind %q", ErrInvalid, kind)
		}
		return err
	})
	return out, err
}

// Item returns a catalog item.
func (s *Service) Item(ctx context.Context, wh, sku string) (protocol.Item, bool, error) {
	var it protocol.Item
	var ok bool
	err := s.b.View(func(tx store.Tx) error {
		var err error
		ok, err = getCBOR(tx, key(pItem, wh, sku), &it)
		return err
	})
	return it, ok, err
}

// LocationMap returns every location of wh by code.
func LocationMap(tx store.Tx, wh string) (map[string]protocol.Location, error) {
	ls, err := listCBOR[protocol.Location](tx, pLoc, wh)
	out := make(map[string]protocol.Location, len(ls))
	for _, l := range ls {
		out[l.Code] = l
	}
	return out, err
}

// ItemOf returns a catalog item inside a transaction.
func ItemOf(tx store.Tx, wh, sku string) (protocol.Item, bool, error) {
	var it protocol.Item
	ok, err := getCBOR(tx, key(pItem, wh, sku), &it)
	return it, ok, err
}

// Settings returns the warehouse settings.
func (s *Service) Settings(_ context.Context, wh string) (protocol.Settings, error) {
	var st protocol.Settings
	err := s.b.View(func(tx store.Tx) error {
		_, err := getCBOR(tx, key(pSettings, wh), &st)
		return err
	})
	return st, err
}

// PutSettings replaces the warehouse settings, for the gateways and for
// the server's conflict detection.
func (s *Service) PutSettings(_ context.Context, wh string, st protocol.Settings) error {
	if st.SkewWindowMS < 0 || st.SkewWindowMS > 24*3600*1000 {
		return fmt.Errorf("%w: skew_window_ms %d must be 0..86400000", ErrInvalid, st.SkewWindowMS)
	}
	if st.OverReceiptPct > 1000 {
		return fmt.Errorf("%w: over_receipt_pct %d must be 0..1000", ErrInvalid, st.OverReceiptPct)
	}
	return s.b.Update(func(tx store.Tx) error {
		if err := putCBOR(tx, key(pSettings, wh), st); err != nil {
			return err
		}
		if err := tx.PutSettings(wh, store.Settings{SkewWindowMS: st.SkewWindowMS, StrictCatalog: st.StrictCatalog}); err != nil {
			return err
		}
		return tx.AppendDown(wh, "", protocol.DownSettings, "settings", st)
	})
}

// withReceipts adds what was received against the PO, from the op log.
func withReceipts(tx store.Tx, wh string, rec poRecord) (PO, error) {
	var p PO
	t := newTally(rec, &p)
	err := tx.ScanOps(wh, func(_ string, op *protocol.Op) error {
		if op.Kind == protocol.OpReceive && op.Refs != nil && op.Refs.PO == rec.PO.ID {
			t.add(op)
		}
		return nil
	})
	return p, err
}

// Threshold returns the reorder threshold of a sku (with its seasonal
// overrides; protocol.Threshold.On picks the one in effect).
func (s *Service) Threshold(wh, sku string) (protocol.Threshold, bool) {
	var t protocol.Threshold
	var ok bool
	err := s.b.View(func(tx store.Tx) error {
		var err error
		ok, err = getCBOR(tx, key(pThresh, wh, sku), &t)
		return err
	})
	if err != nil {
		s.opt.Logger.Warn("threshold unreadable", "warehouse", wh, "sku", sku, "err", err)
	}
	return t, ok && err == nil
}

// Sellable reports whether stock at a location counts towards
// available-to-sell: the location's flag, or true for a location the
// master data does not list.
func (s *Service) Sellable(wh, loc string) bool {
	var l protocol.Location
	var ok bool
	err := s.b.View(func(tx store.Tx) error {
		var err error
		ok, err = getCBOR(tx, key(pLoc, wh, loc), &l)
		return err
	})
	return err != nil || !ok || l.Sellable
}

// OnOrder returns what open purchase orders still expect of a sku
// (ordered − received, per line, never negative).
func (s *Service) OnOrder(wh, sku string) int64 {
	var sum int64
	err := s.b.View(func(tx store.Tx) error {
		var err error
		sum, err = onOrder(tx, wh, sku)
		return err
	})
	if err != nil {
		s.opt.Logger.Warn("on-order unreadable", "warehouse", wh, "sku", sku, "err", err)
	}
	return sum
}

// onOrder is OnOrder in tx.
func onOrder(tx store.Tx, wh, sku string) (int64, error) {
	var sum int64
	recs, err := listCBOR[poRecord](tx, pPO, wh)
	if err != nil {
		return 0, err
	}
	for _, r := range recs {
		if r.PO.Status != "" && r.PO.Status != "open" {
			continue
		}
		has := false
		for _, l := range r.PO.Lines {
			has = has || l.SKU == sku
		}
		if !has {
			continue
		}
		p, err := withReceipts(tx, wh, r)
		if err != nil {
			return 0, err
		}
		for _, l := range r.PO.Lines {
			if l.SKU == sku {
				sum += max(l.Qty-p.Received[l.Line], 0)
			}
		}
	}
	return sum, nil
}

// HasOwners reports whether an item of the warehouse has (or had) an
// owner: one read, so that a warehouse without owners costs nothing where
// owners are looked up per sku.
func (s *Service) HasOwners(wh string) (bool, error) {
	var owned bool
	err := s.b.View(func(tx store.Tx) error {
		var err error
		owned, err = exists(tx, key(pOwned, wh))
		return err
	})
	return owned, err
}

// Known reports whether the warehouse has been created: it has settings,
// a location or a catalog item.
func (s *Service) Known(_ context.Context, wh string) (bool, error) {
	found := false
	err := s.b.View(func(tx store.Tx) error {
		if _, ok, err := tx.Get(key(pSettings, wh)); err != nil || ok {
			found = ok
			return err
		}
		for _, p := range []string{pLoc, pItem} {
			err := tx.Scan(key(p, wh, ""), store.ScanOptions{}, func(_, _ []byte) error {
				found = true
				return store.ErrStopScan
			})
			if err != nil || found {
				return err
			}
		}
		return nil
	})
	return found, err
}
