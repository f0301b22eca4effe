// Package scan classifies the text of one barcode scan according to the
// shelfsync scan vocabulary (docs/DESIGN.md, "Scan vocabulary"): command labels
// (CMD:RECEIVE …), operator, location, purchase order, order, task,
// quantity, lot, reason and owner labels, and items — EAN/UPC/GTIN digits, GS1
// element strings, GS1 Digital Link URIs and SKU: labels. GS1 data with
// AI 414 is a location, AI 00 (an SSCC) a pallet and AI 400 an order. AIM symbology identifiers are
// recognised and stripped. It also renders scans and EPCs as the JSON that
// `shelfsync-agent decode` prints.
//
// The package does no I/O and keeps no state: session rules live in the
// agent.
package scan

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shelfsync/shelfsync/drivers/aim"
	"github.com/shelfsync/shelfsync/drivers/epc"
	"github.com/shelfsync/shelfsync/drivers/gs1"
)

// Kind is what a scan means.
type Kind string

// Kinds of scans.
const (
	KindCommand  Kind = "command"
	KindOperator Kind = "operator"
	KindLocation Kind = "location"
	KindPO       Kind = "po"
	KindOrder    Kind = "order"
	KindTask     Kind = "task"
	KindQty      Kind = "qty"
	KindLot      Kind = "lot"
	KindReason   Kind = "reason"
	KindItem     Kind = "item"
	KindPallet   Kind = "pallet" // a logistic unit named by its SSCC (GS1 AI 00)
	KindOwner    Kind = "owner"  // OWNER:<id>: whose units the next items are (a 3PL's client)
)

// Command is the verb of a CMD: label.
type Command string

// Commands of CMD: labels.
const (
	Receive Command = "RECEIVE"
	Putaway Command = "PUTAWAY"
	Pick    Command = "PICK"
	Count   Command = "COUNT"
	Move    Command = "MOVE"
	Adjust  Command = "ADJUST"
	Hold    Command = "HOLD"    // put units on hold (quality control)
	Release Command = "RELEASE" // release held units to available
	Damage  Command = "DAMAGE"  // mark units damaged
	Pack    Command = "PACK"    // check an order's picked units and ship it
	Done    Command = "DONE"
	Cancel  Command = "CANCEL"
)

var commands = map[string]Command{
	"RECEIVE": Receive, "PUTAWAY": Putaway, "PICK": Pick, "COUNT": Count,
	"MOVE": Move, "ADJUST": Adjust, "HOLD": Hold, "RELEASE": Release, "DAMAGE": Damage, "PACK": Pack, "DONE": Done, "CANCEL": Cancel,
}

// MaxValueLen is the longest label value accepted, in bytes (skus,
// locations and lots are at most 64 bytes).
const MaxValueLen = 64

// Scan is one classified scan.
type Scan struct {
	Raw     string  // the text as received, without a trailing CR/LF
	Kind    Kind    // what it means
	Command Command // for KindCommand

	// Value is the label's value: operator id, location code, PO, order,
	// task, lot, reason (upper-cased), owner or, for SKU: items, the sku. A GS1
	// location (414) is the GLN, or "GLN/extension" with AI 254; a GS1
	// order (400) is the order number.
	Value string

	// Qty is the QTY: value (signed) or the item's AI 30/37 count; HasQty
	// says whether one was given (items default to 1 in the agent).
	Qty    int
	HasQty bool

	// Item fields.
	Symbology string            // AIM symbology name, or the data format when no AIM id
	AIM       string            // AIM identifier as received, e.g. "]C1"
	GTIN      string            // GTIN-14
	SKU       string            // from SKU: labels
	Lot       string            // AI 10
	Serial    string            // AI 21
	Expiry    string            // AI 17 as YYYY-MM-DD
	AIs       map[string]string // every AI of GS1 data

	// SSCC is the 18-digit Serial Shipping Container Code of a pallet
	// label (AI 00), check digit verified.
	SSCC string
}

// ErrUnknownLabel is wrapped by Decode's error for text that is none of
// the vocabulary.
var ErrUnknownLabel = errors.New("not a shelfsync label, GTIN, GS1 element string or Digital Link")

// Options tune decoding. The zero value is ready to use.
type Options struct {
	// Now resolves the century of GS1 dates; default time.Now.
	Now func() time.Time
}

// Decode classifies raw with the default options.
func Decode(raw string) (Scan, error) { return Options{}.Decode(raw) }

// Decode classifies raw. Errors say what is wrong and where, e.g.
// `scan: gs1: GTIN-13 "4006381333932": check digit mismatch: last digit 2,
// want 1` or "scan: gs1: unknown AI 23 at position 19".
func (o Options) Decode(raw string) (Scan, error) {
	text := strings.TrimRight(raw, "\r\n")
	s := Scan{Raw: text}
	if id, rest, ok := aim.Split(text); ok {
		s.AIM, s.Symbology = id.String(), id.Symbology()
		switch {
		case id.GS1():
			return o.gs1Elements(s, text) // positions in errors count the AIM id
		case id.EANUPC():
			return eanUPC(s, id, rest)
		}
		text = rest
	}
	if text == "" {
		return s, errors.New("scan: empty scan")
	}
	if prefix, value, ok := strings.Cut(text, ":"); ok && isLabelPrefix(prefix) {
		return label(s, strings.ToUpper(prefix), value)
	}
	switch {
	case gs1.IsDigitalLink(text):
		els, err := gs1.ParseDigitalLink(text, gs1.Options{Now: o.Now})
		if err != nil {
			return s, fmt.Errorf("scan: %w", err)
		}
		s.Symbology = or(s.Symbology, "GS1 Digital Link")
		return fromElements(s, els)
	case text[0] == gs1.GS || text[0] == '(':
		return o.gs1Elements(s, text)
	case allDigits(text) && (len(text) == 8 || len(text) == 12 || len(text) == 13 || len(text) == 14):
		return gtinDigits(s, text)
	case text[0] >= '0' && text[0] <= '9':
		return o.gs1Elements(s, text) // element string without AIM id or FNC1
	}
	return s, fmt.Errorf("scan: %q: %w", clip(text), ErrUnknownLabel)
}

func (o Options) gs1Elements(s Scan, text string) (Scan, error) {
	els, err := gs1.ParseElementString(text, gs1.Options{Now: o.Now})
	if err != nil {
		return s, fmt.Errorf("scan: %w", err)
	}
	s.Symbology = or(s.Symbology, "GS1 element string")
	return fromElements(s, els)
}

// fromElements classifies GS1 data: 414 → location, 00 → pallet (a
// logistic label's 02/37/10 stay in AIs and the item fields, for the
// record), 01/02 → item, 400 → order, else 10 → lot, 30/37 → qty.
func fromElements(s Scan, els gs1.Elements) (Scan, error) {
	s.AIs = els.Map()
	s.Qty, s.HasQty = els.Qty()
	if sscc := els.SSCC(); sscc != "" {
		// The element parser has checked the length and check digit
		// (GS1 General Specifications 2.2.1, AI 00).
		s.Kind, s.SSCC, s.Value = KindPallet, sscc, sscc
		s.GTIN, _ = els.Get("02")
		s.Lot, s.Expiry = els.Lot(), els.ExpiryDate()
		return s, nil
	}
	if gln, ext, ok := els.Location(); ok {
		s.Kind, s.Value = KindLocation, gln
		if ext != "" {
			s.Value += "/" + ext
		}
		return s, nil
	}
	gtin := els.GTIN()
	if gtin == "" {
		gtin, _ = els.Get("02")
	}
	switch {
	case gtin != "":
		s.Kind, s.GTIN = KindItem, gtin
		s.Lot, s.Serial, s.Expiry = els.Lot(), els.Serial(), els.ExpiryDate()
	case els.Order() != "":
		s.Kind, s.Value = KindOrder, els.Order()
	case els.Lot() != "":
		s.Kind, s.Value, s.Lot = KindLot, els.Lot(), els.Lot()
	case s.HasQty:
		s.Kind = KindQty
	default:
		return s, fmt.Errorf("scan: GS1 data %s has no AI shelfsync uses (00, 01, 02, 414, 400, 10, 30, 37)", els)
	}
	return s, nil
}

// eanUPC handles the data of an ]E symbology identifier.
func eanUPC(s Scan, id aim.ID, text string) (Scan, error) {
	if !allDigits(text) {
		return s, fmt.Errorf("scan: %s data %q is not all digits", id, clip(text))
	}
	switch {
	case id.Modifier == '0' && len(text) >= 6 && len(text) <= 8:
		upca, err := gs1.ExpandUPCE(text)
		if err != nil {
			return s, fmt.Errorf("scan: %w", err)
		}
		s.Symbology = "UPC-E"
		return gtinDigits(s, upca)
	case id.Modifier == '3' && (len(text) == 15 || len(text) == 18):
		text = text[:13] // EAN-13 with its add-on: the add-on is not part of the GTIN
	}
	return gtinDigits(s, text)
}

// gtinDigits validates bare EAN-8/UPC-A/EAN-13/GTIN-14 digits.
func gtinDigits(s Scan, digits string) (Scan, error) {
	gtin, err := gs1.NormalizeGTIN(digits)
	if err != nil {
		return s, fmt.Errorf("scan: %w", err)
	}
	if s.Symbology == "" {
		s.Symbology = map[int]string{8: "EAN-8", 12: "UPC-A", 13: "EAN-13", 14: "GTIN-14"}[len(digits)]
	}
	s.Kind, s.GTIN = KindItem, gtin
	return s, nil
}

var labelKinds = map[string]Kind{
	"CMD": KindCommand, "OP": KindOperator, "LOC": KindLocation, "PO": KindPO,
	"ORD": KindOrder, "TASK": KindTask, "QTY": KindQty, "LOT": KindLot,
	"REASON": KindReason, "SKU": KindItem, "OWNER": KindOwner,
}

func isLabelPrefix(p string) bool {
	_, ok := labelKinds[strings.ToUpper(p)]
	return ok
}

// label decodes "PREFIX:value".
// MaxQty bounds a QTY: label: |n| ≤ 1,000,000,000 (the protocol's bound
// of one op's quantity).
const MaxQty = 1_000_000_000

func label(s Scan, prefix, value string) (Scan, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return s, fmt.Errorf("scan: %s: label has no value", prefix)
	}
	if len(value) > MaxValueLen {
		return s, fmt.Errorf("scan: %s: value is %d bytes, at most %d allowed", prefix, len(value), MaxValueLen)
	}
	if !utf8.ValidString(value) {
		return s, fmt.Errorf("scan: %s: value is not valid UTF-8", prefix)
	}
	for i, r := range value {
		if r < 0x20 || r == 0x7f {
			return s, fmt.Errorf("scan: %s: control character %U at value position %d", prefix, r, i)
		}
	}
	s.Kind = labelKinds[prefix]
	switch prefix {
	case "CMD":
		cmd, ok := commands[strings.ToUpper(value)]
		if !ok {
			return s, fmt.Errorf("scan: CMD: unknown command %q (want RECEIVE, PUTAWAY, PICK, COUNT, MOVE, ADJUST, HOLD, RELEASE, DAMAGE, PACK, DONE or CANCEL)", value)
		}
		s.Command = cmd
		return s, nil
	case "QTY":
		n, err := strconv.Atoi(strings.TrimPrefix(value, "+"))
		if err != nil || strings.HasPrefix(value, "+-") {
			if errors.Is(err, strconv.ErrRange) {
				return s, fmt.Errorf("scan: QTY: %q is beyond ±%d", value, MaxQty)
			}
			return s, fmt.Errorf("scan: QTY: %q is not a whole number", value)
		}
		if n > MaxQty || n < -MaxQty {
			return s, fmt.Errorf("scan: QTY: %d is beyond ±%d; scan a smaller quantity", n, MaxQty)
		}
		s.Qty, s.HasQty = n, true
		return s, nil
	case "REASON":
		value = strings.ToUpper(value)
	case "SKU":
		s.SKU = value
	case "LOT":
		s.Lot = value
	}
	s.Value = value
	return s, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// clip shortens long input in error messages.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// Output is what `shelfsync-agent decode` prints for one input, as JSON.
// Barcode fields and EPC fields are never both set; Error is set (and the
// rest empty) when the input is invalid.
type Output struct {
	// Barcodes.
	Symbology string            `json:"symbology,omitempty"`
	AIM       string            `json:"aim,omitempty"`
	Kind      Kind              `json:"kind,omitempty"`
	Command   Command           `json:"command,omitempty"`
	Value     string            `json:"value,omitempty"`
	SKU       string            `json:"sku,omitempty"`
	Lot       string            `json:"lot,omitempty"`
	Expiry    string            `json:"expiry,omitempty"`
	Qty       *int              `json:"qty,omitempty"`
	AIs       map[string]string `json:"ais,omitempty"`

	// EPCs.
	Scheme string `json:"scheme,omitempty"`
	Filter *int   `json:"filter,omitempty"`
	SSCC   string `json:"sscc,omitempty"` // also a pallet label's AI 00
	GLN    string `json:"gln,omitempty"`
	GRAI   string `json:"grai,omitempty"`
	GIAI   string `json:"giai,omitempty"`
	URI    string `json:"uri,omitempty"`
	TagURI string `json:"tag_uri,omitempty"`
	Hex    string `json:"hex,omitempty"`

	// Both.
	GTIN   string `json:"gtin,omitempty"`
	Serial string `json:"serial,omitempty"`

	Error string `json:"error,omitempty"`
}

// JSON decodes raw as a barcode scan, or as an EPC in hex when isEPC, and
// returns the Output to print. On invalid input it returns an Output
// holding only the error message, and the error.
func JSON(raw string, isEPC bool) (Output, error) { return Options{}.JSON(raw, isEPC) }

// JSON is the package-level JSON with these options.
func (o Options) JSON(raw string, isEPC bool) (Output, error) {
	if isEPC {
		return epcOutput(raw)
	}
	s, err := o.Decode(raw)
	if err != nil {
		return Output{Error: err.Error()}, err
	}
	out := Output{
		Symbology: s.Symbology, AIM: s.AIM, Kind: s.Kind, Command: s.Command,
		Value: s.Value, SKU: s.SKU, GTIN: s.GTIN, Lot: s.Lot, Serial: s.Serial,
		Expiry: s.Expiry, AIs: s.AIs, SSCC: s.SSCC,
	}
	if s.HasQty {
		out.Qty = &s.Qty
	}
	return out, nil
}

func epcOutput(raw string) (Output, error) {
	e, err := epc.DecodeHex(raw)
	if err != nil {
		err = fmt.Errorf("scan: %w", err)
		return Output{Error: err.Error()}, err
	}
	out := Output{Scheme: e.Scheme, URI: e.URI()}
	if e.Scheme == epc.SchemeRaw {
		out.Hex = e.Hex
		return out, nil
	}
	out.Filter = &e.Filter
	out.TagURI = e.TagURI()
	out.GTIN, out.SSCC, out.GLN, out.GRAI, out.GIAI = e.GTIN, e.SSCC, e.GLN, e.GRAI, e.GIAI
	out.Serial = e.Serial
	return out, nil
}
