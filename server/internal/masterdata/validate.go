package masterdata

import (
	"fmt"
	"strings"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
)

// field checks a code (sku, location, lot, ids) with protocol.CheckField:
// 1–64 bytes of UTF-8 without control or bidirectional formatting
// characters.
func field(name, v string, required bool) error {
	if err := protocol.CheckField(name, v, required); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

// NormalizeGTIN checks a GTIN-8/12/13/14's check digit and returns it as
// GTIN-14 (GS1 General Specifications §7.9).
func NormalizeGTIN(g string) (string, error) {
	g = strings.TrimSpace(g)
	switch len(g) {
	case 8, 12, 13, 14:
	default:
		return "", fmt.Errorf("%w: gtin %q must have 8, 12, 13 or 14 digits", ErrInvalid, g)
	}
	sum := 0
	for i := 0; i < len(g); i++ {
		c := g[i]
		if c < '0' || c > '9' {
			return "", fmt.Errorf("%w: gtin %q is not all digits", ErrInvalid, g)
		}
		if i == len(g)-1 {
			break
		}
		d := int(c - '0')
		if (len(g)-1-i)%2 == 1 {
			d *= 3
		}
		sum += d
	}
	if want := byte('0' + (10-sum%10)%10); g[len(g)-1] != want {
		return "", fmt.Errorf("%w: gtin %q: check digit %c, want %c", ErrInvalid, g, g[len(g)-1], want)
	}
	return strings.Repeat("0", 14-len(g)) + g, nil
}

func validItem(it *protocol.Item) error {
	it.Deleted = false
	if err := field("sku", it.SKU, true); err != nil {
		return err
	}
	seen := map[string]bool{}
	for i, g := range it.GTINs {
		n, err := NormalizeGTIN(g)
		if err != nil {
			return fmt.Errorf("gtins[%d]: %w", i, err)
		}
		if seen[n] {
			return fmt.Errorf("%w: gtins[%d]: %s listed twice", ErrInvalid, i, n)
		}
		seen[n] = true
		it.GTINs[i] = n
	}
	switch it.Velocity {
	case "", protocol.VelocityFast, protocol.VelocityNormal, protocol.VelocitySlow:
	default:
		return fmt.Errorf("%w: velocity %q: want fast, normal or slow", ErrInvalid, it.Velocity)
	}
	if it.TrackExpiry {
		it.TrackLot = true // expiry is per lot
	}
	if err := ownerID(it.Owner); err != nil {
		return err
	}
	if it.MinShelfDays < 0 || it.MinShelfDays > 36500 {
		return fmt.Errorf("%w: min_shelf_days %d: want 0..36500", ErrInvalid, it.MinShelfDays)
	}
	return field("description", truncate(it.Description), false)
}

func truncate(s string) string {
	if len(s) > protocol.MaxFieldLen {
		return s[:protocol.MaxFieldLen]
	}
	return s
}

func validLocation(l *protocol.Location) error {
	l.Deleted = false
	if err := field("code", l.Code, true); err != nil {
		return err
	}
	if err := field("zone", l.Zone, false); err != nil {
		return err
	}
	switch l.Type {
	case "", protocol.LocDock, protocol.LocStorage, protocol.LocPick, protocol.LocPack, protocol.LocQuarantine:
	default:
		return fmt.Errorf("%w: type %q: want dock, storage, pick, pack or quarantine", ErrInvalid, l.Type)
	}
	return ownerID(l.Owner)
}

// ownerID checks an item's or location's owner ("" none): an owner id
// names MQTT topics ({root}/owners/{owner}/…) and is bound to API tokens,
// so it follows the protocol's ID rules (protocol.ValidateID: 1-64
// characters of [A-Za-z0-9._-], not only dots).
func ownerID(v string) error {
	if v == "" {
		return nil
	}
	if err := protocol.ValidateID(v); err != nil {
		return fmt.Errorf("%w: owner: %v", ErrInvalid, err)
	}
	return nil
}

func validZone(z *Zone) error {
	if err := field("zone", z.Zone, true); err != nil {
		return err
	}
	if err := protocol.ValidateID(z.Gateway); err != nil {
		return fmt.Errorf("%w: gateway: %v", ErrInvalid, err)
	}
	return nil
}

func validThreshold(t *protocol.Threshold) error {
	t.Deleted = false
	if err := field("sku", t.SKU, true); err != nil {
		return err
	}
	if t.ReorderPoint < 0 || t.ReorderQty < 0 || t.Max < 0 || t.SafetyStock < 0 {
		return fmt.Errorf("%w: reorder_point, reorder_qty, max and safety_stock must not be negative", ErrInvalid)
	}
	for i, s := range t.Seasonal {
		f, err1 := time.Parse(time.DateOnly, s.From)
		to, err2 := time.Parse(time.DateOnly, s.To)
		if err1 != nil || err2 != nil || to.Before(f) {
			return fmt.Errorf("%w: seasonal[%d]: from and to must be YYYY-MM-DD with from ≤ to", ErrInvalid, i)
		}
		if s.ReorderPoint < 0 || s.ReorderQty < 0 || s.Max < 0 {
			return fmt.Errorf("%w: seasonal[%d]: figures must not be negative", ErrInvalid, i)
		}
	}
	return nil
}

func validPO(p *protocol.PurchaseOrder) error {
	p.Deleted = false
	if err := field("id", p.ID, true); err != nil {
		return err
	}
	if err := field("supplier", truncate(p.Supplier), false); err != nil {
		return err
	}
	if err := field("dock", p.Dock, false); err != nil {
		return err
	}
	switch p.Status {
	case "":
		p.Status = "open"
	case "open", "closed", "cancelled":
	default:
		return fmt.Errorf("%w: status %q: want open, closed or cancelled", ErrInvalid, p.Status)
	}
	if len(p.Lines) == 0 {
		return fmt.Errorf("%w: lines: at least one line is required", ErrInvalid)
	}
	seen := map[uint32]bool{}
	for i := range p.Lines {
		l := &p.Lines[i]
		if l.Line == 0 {
			l.Line = uint32(i + 1)
		}
		if seen[l.Line] {
			return fmt.Errorf("%w: lines[%d]: line %d appears twice", ErrInvalid, i, l.Line)
		}
		seen[l.Line] = true
		if err := field(fmt.Sprintf("lines[%d].sku", i), l.SKU, true); err != nil {
			return err
		}
		if err := field(fmt.Sprintf("lines[%d].lot", i), l.Lot, false); err != nil {
			return err
		}
		if l.Qty <= 0 {
			return fmt.Errorf("%w: lines[%d].qty %d must be positive", ErrInvalid, i, l.Qty)
		}
	}
	return nil
}
