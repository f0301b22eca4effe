// Package aim parses AIM symbology identifiers: the three-character prefix
// "]" + code character + modifier that a scanner configured to transmit them
// puts in front of the decoded data (ISO/IEC 15424). The identifier tells
// which symbology was read and, through the modifier, whether the symbol
// carries a GS1 element string (FNC1 in first position), so callers can
// decide how to interpret the rest of the text.
//
// The package does no I/O and has no dependencies.
package aim

import "fmt"

// Prefix is the flag character that starts every AIM symbology identifier.
const Prefix = ']'

// ID is one AIM symbology identifier: a code character naming the
// symbology family and a modifier character giving options.
type ID struct {
	Code     byte // symbology code character, e.g. 'C' for Code 128
	Modifier byte // option character, e.g. '1' for FNC1 in first position
}

// String returns the identifier as transmitted, e.g. "]C1". The zero ID
// returns "".
func (id ID) String() string {
	if id.IsZero() {
		return ""
	}
	return string([]byte{Prefix, id.Code, id.Modifier})
}

// IsZero reports whether id is the zero ID (no identifier was present).
func (id ID) IsZero() bool { return id.Code == 0 && id.Modifier == 0 }

// Parse parses a three-character identifier such as "]d2". It returns an
// error saying what is wrong when s is not one.
func Parse(s string) (ID, error) {
	if len(s) != 3 {
		return ID{}, fmt.Errorf("aim: identifier %q must be 3 characters, got %d", s, len(s))
	}
	id, rest, ok := Split(s)
	if !ok || rest != "" {
		return ID{}, fmt.Errorf("aim: %q is not an AIM identifier (want ']' + letter + digit or letter)", s)
	}
	return id, nil
}

// Split removes a leading AIM symbology identifier from text. It returns the
// identifier, the remaining data and true when text starts with a
// syntactically valid one ("]", an ASCII letter, an ASCII letter or digit);
// otherwise it returns the zero ID, text unchanged and false. Unknown but
// well-formed identifiers are accepted: their Symbology says so.
func Split(text string) (id ID, rest string, ok bool) {
	if len(text) < 3 || text[0] != Prefix {
		return ID{}, text, false
	}
	code, mod := text[1], text[2]
	if !isLetter(code) || !(isLetter(mod) || isDigit(mod)) {
		return ID{}, text, false
	}
	return ID{Code: code, Modifier: mod}, text[3:], true
}

// GS1 reports whether the identifier announces a GS1 element string, that
// is a symbol with FNC1 in the first position: ]C1 GS1-128, ]e0 GS1 DataBar,
// ]d2 and ]d5 GS1 DataMatrix, ]Q3 and ]Q4 GS1 QR Code, ]J1 GS1 DotCode.
func (id ID) GS1() bool {
	switch id {
	case ID{'C', '1'}, ID{'e', '0'}, ID{'d', '2'}, ID{'d', '5'},
		ID{'Q', '3'}, ID{'Q', '4'}, ID{'J', '1'}:
		return true
	}
	return false
}

// EANUPC reports whether the identifier is one of the EAN/UPC family
// (]E0 EAN-13, UPC-A or UPC-E; ]E4 EAN-8; ]E1, ]E2, ]E3 add-on forms), whose
// data is a bare GTIN.
func (id ID) EANUPC() bool { return id.Code == 'E' }

// Symbology returns a human-readable name of the symbology and option the
// identifier stands for, e.g. "GS1-128" for ]C1. Identifiers the table does
// not know are named by their family, or "unknown" with the identifier.
func (id ID) Symbology() string {
	if name, ok := exact[id]; ok {
		return name
	}
	if name, ok := family[id.Code]; ok {
		return name
	}
	if id.IsZero() {
		return "unknown"
	}
	return "unknown " + id.String()
}

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// exact names the identifiers whose modifier changes what the data means
// (ISO/IEC 15424 and the GS1 General Specifications' symbology
// identifier table).
var exact = map[ID]string{
	{'A', '0'}: "Code 39",
	{'A', '1'}: "Code 39 (check digit validated, transmitted)",
	{'A', '3'}: "Code 39 (check digit validated, stripped)",
	{'A', '4'}: "Code 39 Full ASCII",
	{'A', '5'}: "Code 39 Full ASCII (check digit validated, transmitted)",
	{'A', '7'}: "Code 39 Full ASCII (check digit validated, stripped)",
	{'C', '0'}: "Code 128",
	{'C', '1'}: "GS1-128",
	{'C', '2'}: "Code 128 (FNC1 in second position)",
	{'C', '4'}: "Code 128 (ISBT 128 concatenation)",
	{'d', '0'}: "Data Matrix ECC 000-140",
	{'d', '1'}: "Data Matrix",
	{'d', '2'}: "GS1 DataMatrix",
	{'d', '3'}: "Data Matrix (FNC1 in second position)",
	{'d', '4'}: "Data Matrix (ECI)",
	{'d', '5'}: "GS1 DataMatrix (ECI)",
	{'d', '6'}: "Data Matrix (ECI, FNC1 in second position)",
	{'E', '0'}: "EAN-13/UPC-A/UPC-E",
	{'E', '1'}: "EAN/UPC 2-digit add-on",
	{'E', '2'}: "EAN/UPC 5-digit add-on",
	{'E', '3'}: "EAN-13/UPC-A/UPC-E with add-on",
	{'E', '4'}: "EAN-8",
	{'e', '0'}: "GS1 DataBar",
	{'I', '0'}: "ITF",
	{'I', '1'}: "ITF (check digit validated, transmitted)",
	{'I', '3'}: "ITF (check digit validated, stripped)",
	{'J', '0'}: "DotCode",
	{'J', '1'}: "GS1 DotCode",
	{'J', '2'}: "DotCode (FNC1 in second position)",
	{'L', '0'}: "PDF417",
	{'L', '1'}: "PDF417 (ECI)",
	{'L', '2'}: "MicroPDF417",
	{'Q', '0'}: "QR Code Model 1",
	{'Q', '1'}: "QR Code",
	{'Q', '2'}: "QR Code (ECI)",
	{'Q', '3'}: "GS1 QR Code",
	{'Q', '4'}: "GS1 QR Code (ECI)",
	{'Q', '5'}: "QR Code (FNC1 in second position)",
	{'Q', '6'}: "QR Code (ECI, FNC1 in second position)",
	{'z', '0'}: "Aztec",
}

// family names a symbology by its code character alone, for modifiers the
// exact table does not list.
var family = map[byte]string{
	'A': "Code 39",
	'B': "Telepen",
	'C': "Code 128",
	'D': "Code One",
	'E': "EAN/UPC",
	'F': "Codabar",
	'G': "Code 93",
	'H': "Code 11",
	'I': "ITF",
	'J': "DotCode",
	'K': "Code 16K",
	'L': "PDF417",
	'M': "MSI",
	'N': "Anker",
	'O': "Codablock",
	'P': "Plessey",
	'Q': "QR Code",
	'R': "Straight 2 of 5 (two-bar start/stop)",
	'S': "Straight 2 of 5 (three-bar start/stop)",
	'T': "Code 49",
	'U': "MaxiCode",
	'X': "other",
	'Y': "system expansion",
	'Z': "non-barcode",
	'd': "Data Matrix",
	'e': "GS1 DataBar",
	'g': "Grid Matrix",
	'h': "Han Xin",
	'o': "OCR",
	'p': "PosiCode",
	's': "SuperCode",
	'z': "Aztec",
}
