package protocol

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// OpKind is the kind of an operation.
type OpKind uint8

// Operation kinds (docs/DESIGN.md, "Operations").
const (
	OpReceive   OpKind = 1 // +qty at Location
	OpPutaway   OpKind = 2 // −qty at Location, +qty at To
	OpMove      OpKind = 3 // −qty at Location, +qty at To
	OpPick      OpKind = 4 // −qty at Location
	OpAdjust    OpKind = 5 // ±qty at Location with Reason
	OpCount     OpKind = 6 // sets the observed quantity (Scope)
	OpRFIDSweep OpKind = 7 // location count from the unique EPCs seen
	OpStatus    OpKind = 8 // −qty at Location in Status, +qty there in ToStatus
)

var opNames = map[OpKind]string{
	OpReceive: "receive", OpPutaway: "putaway", OpMove: "move", OpPick: "pick",
	OpAdjust: "adjust", OpCount: "count", OpRFIDSweep: "rfid-sweep", OpStatus: "status",
}

// String names the kind as docs/DESIGN.md does.
func (k OpKind) String() string {
	if s, ok := opNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseOpKind is the inverse of OpKind.String.
func ParseOpKind(s string) (OpKind, bool) {
	for k, n := range opNames {
		if n == s {
			return k, true
		}
	}
	return 0, false
}

// IsCount reports whether the kind sets quantities rather than adding them.
func (k OpKind) IsCount() bool { return k == OpCount || k == OpRFIDSweep }

// CountScope says what a count covers.
type CountScope uint8

// Count scopes.
const (
	ScopeKey      CountScope = 0 // one stock key: Location, SKU, Lot, Qty
	ScopeLocation CountScope = 1 // a whole location: Lines; keys not listed are observed as 0
)

// Op is one committed unit of work, stamped at its origin with (GW, Seq) and
// an HLC. In an OpBatch GW is empty (the batch header names the gateway);
// server-origin ops carry GW = ServerOrigin.
type Op struct {
	Seq      uint64      `cbor:"1,keyasint"`
	HLC      HLC         `cbor:"2,keyasint"`
	Kind     OpKind      `cbor:"3,keyasint"`
	Location string      `cbor:"4,keyasint,omitempty"`
	To       string      `cbor:"5,keyasint,omitempty"`
	SKU      string      `cbor:"6,keyasint,omitempty"`
	Lot      string      `cbor:"7,keyasint,omitempty"`
	Qty      int64       `cbor:"8,keyasint,omitempty"`
	Scope    CountScope  `cbor:"9,keyasint,omitempty"`
	Lines    []CountLine `cbor:"10,keyasint,omitempty"`
	Device   string      `cbor:"11,keyasint,omitempty"`
	Operator string      `cbor:"12,keyasint,omitempty"`
	Raw      []string    `cbor:"13,keyasint,omitempty"`
	Refs     *Refs       `cbor:"14,keyasint,omitempty"`
	Reason   string      `cbor:"15,keyasint,omitempty"`
	Expiry   string      `cbor:"16,keyasint,omitempty"` // YYYY-MM-DD
	EPCs     [][]byte    `cbor:"17,keyasint,omitempty"`
	GW       string      `cbor:"18,keyasint,omitempty"`
	Flags    uint32      `cbor:"19,keyasint,omitempty"`
	// Owner is the owner (a 3PL's client) of the units; "" when the
	// warehouse has no owners. Status is the stock status of the key the
	// op acts on (a receive lands its units in it, a move keeps it on
	// both sides); ToStatus is where a status op moves them.
	Owner    string      `cbor:"20,keyasint,omitempty"`
	Status   StockStatus `cbor:"21,keyasint,omitempty"`
	ToStatus StockStatus `cbor:"22,keyasint,omitempty"`
	// SSCC names the pallet (GS1 AI 00, 18 digits) the op's units came
	// with: a receive against the pallet's advance ship notice, or a
	// put-away or move of the whole pallet. It changes nothing in the
	// merge; it is the pallet in the stock history.
	SSCC string `cbor:"24,keyasint,omitempty"`
}

// StockStatus is part of the stock key: whether units may be sold. The
// zero value is available, so ops and keys of a version without statuses
// are available stock.
type StockStatus uint8

// Stock statuses (docs/DESIGN.md, "Words").
const (
	StatusAvailable StockStatus = 0 // sellable
	StatusHold      StockStatus = 1 // quality control, receiving discrepancy
	StatusDamaged   StockStatus = 2
	StatusExpired   StockStatus = 3
	maxStatus                   = StatusExpired
)

var statusNames = [...]string{"available", "hold", "damaged", "expired"}

// String names the status ("available", "hold", "damaged", "expired").
func (s StockStatus) String() string {
	if s <= maxStatus {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Valid reports whether s is a known status.
func (s StockStatus) Valid() bool { return s <= maxStatus }

// ParseStockStatus is the inverse of StockStatus.String; "" is available.
func ParseStockStatus(v string) (StockStatus, error) {
	if v == "" {
		return StatusAvailable, nil
	}
	for i, n := range statusNames {
		if n == v {
			return StockStatus(i), nil
		}
	}
	return 0, fmt.Errorf("unknown stock status %q: use one of %s", v, strings.Join(statusNames[:], ", "))
}

// MarshalText writes the status's name (JSON).
func (s StockStatus) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a status's name (JSON).
func (s *StockStatus) UnmarshalText(b []byte) error {
	v, err := ParseStockStatus(string(b))
	*s = v
	return err
}

// CountLine is one counted key of a location-scope count.
type CountLine struct {
	SKU    string      `cbor:"1,keyasint"`
	Lot    string      `cbor:"2,keyasint,omitempty"`
	Qty    int64       `cbor:"3,keyasint"`
	Owner  string      `cbor:"4,keyasint,omitempty"`
	Status StockStatus `cbor:"5,keyasint,omitempty"`
}

// Refs links an op to the documents it works against.
type Refs struct {
	PO        string `cbor:"1,keyasint,omitempty"`
	POLine    uint32 `cbor:"2,keyasint,omitempty"`
	Order     string `cbor:"3,keyasint,omitempty"`
	OrderLine uint32 `cbor:"4,keyasint,omitempty"`
	Task      string `cbor:"5,keyasint,omitempty"`
	Conflict  string `cbor:"6,keyasint,omitempty"`
}

// Receipt discrepancy flags carried in Op.Flags of a receive.
const (
	FlagOverReceipt uint32 = 1 << iota
	FlagUnexpected
	FlagLotMismatch
	FlagExpired
	FlagShortShelfLife // expires within the item's minimum remaining shelf life
)

// MaxRawLen bounds each raw evidence string.
const MaxRawLen = 4096

// MaxOpQty bounds the quantity of one op (and of each line of a count):
// |qty| ≤ 1,000,000,000 units. With it no sum of ops a key could ever see
// comes near int64's limits; ledger.MaxKeyQty bounds a key's on-hand.
const MaxOpQty = 1_000_000_000

// CheckField reports whether v is a valid code (sku, location, lot, order
// id): at most MaxFieldLen bytes of UTF-8, without NUL, control or
// bidirectional formatting characters; empty only when not required. The
// error names the field.
func CheckField(name, v string, required bool) error { return checkField(name, v, required) }

func checkField(name, v string, required bool) error {
	if v == "" {
		if required {
			return fmt.Errorf("%s is required", name)
		}
		return nil
	}
	if len(v) > MaxFieldLen {
		return fmt.Errorf("%s is %d bytes; at most %d", name, len(v), MaxFieldLen)
	}
	if printableASCII(v) {
		return nil // UTF-8, no NUL, no control or formatting character: the checks below, in one pass
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s is not UTF-8", name)
	}
	if strings.IndexByte(v, 0) >= 0 {
		return fmt.Errorf("%s contains a NUL byte", name)
	}
	if i, r := invisibleRune(v); i >= 0 {
		return fmt.Errorf("%s has the control character %U at byte %d (print and scan the code without it)", name, r, i)
	}
	return nil
}

// printableASCII reports whether every byte of v is printable ASCII
// (0x20-0x7E), the common case checkField answers in one pass.
func printableASCII(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c > 0x7E {
			return false
		}
	}
	return true
}

// invisibleRune returns the byte offset and value of the first control
// character (C0, DEL, C1) or bidirectional formatting character (U+200E,
// U+200F, U+202A-U+202E, U+2066-U+2069) in v, or -1: they make a code
// print differently from what it is.
func invisibleRune(v string) (int, rune) {
	for i, r := range v {
		if unicode.IsControl(r) || r == 0x200E || r == 0x200F || (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) {
			return i, r
		}
	}
	return -1, 0
}

// Validate reports whether the op is well formed: the fields its kind needs
// are present and within limits. It does not check master data.
func (o *Op) Validate() error {
	if o.Seq == 0 {
		return fmt.Errorf("op seq must be ≥ 1")
	}
	if _, ok := opNames[o.Kind]; !ok {
		return fmt.Errorf("op %d: unknown kind %d", o.Seq, o.Kind)
	}
	wrap := func(err error) error { return fmt.Errorf("op %d (%s): %w", o.Seq, o.Kind, err) }
	if err := checkField("location", o.Location, true); err != nil {
		return wrap(err)
	}
	if err := checkField("lot", o.Lot, false); err != nil {
		return wrap(err)
	}
	if err := checkField("owner", o.Owner, false); err != nil {
		return wrap(err)
	}
	if !o.Status.Valid() || !o.ToStatus.Valid() {
		return wrap(fmt.Errorf("unknown stock status %d/%d (0 available, 1 hold, 2 damaged, 3 expired)", o.Status, o.ToStatus))
	}
	if o.ToStatus != StatusAvailable && o.Kind != OpStatus {
		return wrap(fmt.Errorf("to-status is for status ops only"))
	}
	for i, r := range o.Raw {
		if len(r) > MaxRawLen {
			return wrap(fmt.Errorf("raw[%d] is %d bytes; at most %d", i, len(r), MaxRawLen))
		}
	}
	if o.Qty > MaxOpQty || o.Qty < -MaxOpQty {
		return wrap(fmt.Errorf("qty %d is beyond ±%d", o.Qty, MaxOpQty))
	}
	if o.SSCC != "" {
		if err := CheckSSCC(o.SSCC); err != nil {
			return wrap(err)
		}
	}
	switch o.Kind {
	case OpStatus:
		if o.Qty <= 0 {
			return wrap(fmt.Errorf("qty must be > 0, got %d", o.Qty))
		}
		if o.Status == o.ToStatus {
			return wrap(fmt.Errorf("status and to-status are both %s", o.Status))
		}
	case OpReceive, OpPick:
		if o.Qty <= 0 {
			return wrap(fmt.Errorf("qty must be > 0, got %d", o.Qty))
		}
	case OpPutaway, OpMove:
		if o.Qty <= 0 {
			return wrap(fmt.Errorf("qty must be > 0, got %d", o.Qty))
		}
		if err := checkField("to", o.To, true); err != nil {
			return wrap(err)
		}
		if o.To == o.Location {
			return wrap(fmt.Errorf("to %q is the same location as from", o.To))
		}
	case OpAdjust:
		if o.Qty == 0 {
			return wrap(fmt.Errorf("adjust qty must not be 0"))
		}
	case OpCount, OpRFIDSweep:
		switch o.Scope {
		case ScopeKey:
			if o.Qty < 0 {
				return wrap(fmt.Errorf("count qty must be ≥ 0, got %d", o.Qty))
			}
			return wrap2(checkField("sku", o.SKU, true), wrap)
		case ScopeLocation:
			if o.Owner != "" || o.Status != StatusAvailable {
				return wrap(fmt.Errorf("a location count names owner and status per line, not on the op"))
			}
			for i, l := range o.Lines {
				if err := checkField(fmt.Sprintf("lines[%d].sku", i), l.SKU, true); err != nil {
					return wrap(err)
				}
				if err := checkField(fmt.Sprintf("lines[%d].lot", i), l.Lot, false); err != nil {
					return wrap(err)
				}
				if err := checkField(fmt.Sprintf("lines[%d].owner", i), l.Owner, false); err != nil {
					return wrap(err)
				}
				if !l.Status.Valid() {
					return wrap(fmt.Errorf("lines[%d]: unknown stock status %d", i, l.Status))
				}
				if l.Qty < 0 || l.Qty > MaxOpQty {
					return wrap(fmt.Errorf("lines[%d].qty must be 0..%d", i, MaxOpQty))
				}
			}
			return nil
		default:
			return wrap(fmt.Errorf("unknown count scope %d", o.Scope))
		}
	}
	return wrap2(checkField("sku", o.SKU, true), wrap)
}

func wrap2(err error, wrap func(error) error) error {
	if err == nil {
		return nil
	}
	return wrap(err)
}
