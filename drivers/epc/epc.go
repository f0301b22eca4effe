// Package epc decodes and encodes 96-bit Electronic Product Codes as the
// GS1 EPC Tag Data Standard (TDS) defines them: SGTIN-96, SSCC-96,
// SGLN-96, GRAI-96 and GIAI-96. It turns the EPC bank bytes an RFID reader
// reports into the GS1 key (GTIN, SSCC, GLN, GRAI, GIAI) with its check
// digit recomputed, the pure-identity URI and the tag URI. EPCs with any
// other header decode to Scheme "raw" carrying the hex, not to an error.
//
// The package does no I/O.
package epc

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Headers of the 96-bit schemes (TDS, EPC binary header values).
const (
	HeaderSGTIN96 = 0x30
	HeaderSSCC96  = 0x31
	HeaderSGLN96  = 0x32
	HeaderGRAI96  = 0x33
	HeaderGIAI96  = 0x34
)

// Scheme names as they appear in tag URIs.
const (
	SchemeSGTIN96 = "sgtin-96"
	SchemeSSCC96  = "sscc-96"
	SchemeSGLN96  = "sgln-96"
	SchemeGRAI96  = "grai-96"
	SchemeGIAI96  = "giai-96"
	SchemeRaw     = "raw"
)

// ErrRange is wrapped by errors about a field whose value does not fit the
// digits its partition gives it, or a partition value 7.
var ErrRange = errors.New("value out of range")

// EPC is one decoded EPC. Fields that do not apply to the scheme are
// empty.
type EPC struct {
	Scheme    string // e.g. "sgtin-96"; "raw" for headers this package does not decode
	Header    byte
	Filter    int // filter value 0–7
	Partition int // partition value 0–6

	// CompanyPrefix is the GS1 Company Prefix with its leading zeros.
	CompanyPrefix string
	// Reference is the scheme's second field as the pure-identity URI shows
	// it: SGTIN indicator digit + item reference, SSCC extension digit +
	// serial reference, SGLN location reference, GRAI asset type, GIAI
	// individual asset reference.
	Reference string
	// Serial is the SGTIN or GRAI serial number or the SGLN extension, in
	// decimal without leading zeros.
	Serial string

	GTIN string // SGTIN: GTIN-14
	SSCC string // SSCC: 18 digits
	GLN  string // SGLN: 13 digits
	GRAI string // GRAI: AI 8003 value, "0" + 13 digits + serial
	GIAI string // GIAI: AI 8004 value

	Hex string // the EPC bank bytes, upper-case hex
}

// DecodeHex decodes an EPC given in hexadecimal (spaces and an optional
// "0x" prefix allowed).
func DecodeHex(s string) (EPC, error) {
	clean := strings.ReplaceAll(strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "0x"), "0X"), " ", "")
	b, err := hex.DecodeString(clean)
	if err != nil {
		return EPC{}, fmt.Errorf("epc: %q is not hexadecimal: %w", s, err)
	}
	return Decode(b)
}

// Decode decodes EPC bank bytes (the EPC proper, without PC or CRC).
// Known 96-bit headers are decoded; any other header gives Scheme "raw".
// An EPC longer than 96 bits with a 96-bit header is decoded when the
// extra bits are zero (word padding), else reported raw.
func Decode(b []byte) (EPC, error) {
	e := EPC{Scheme: SchemeRaw, Hex: strings.ToUpper(hex.EncodeToString(b))}
	if len(b) == 0 {
		return e, errors.New("epc: empty EPC")
	}
	e.Header = b[0]
	layout, known := layouts[b[0]]
	if !known {
		return e, nil
	}
	if len(b) < 12 {
		return e, fmt.Errorf("epc: %s needs 12 bytes, got %d", layout.scheme, len(b))
	}
	for _, extra := range b[12:] {
		if extra != 0 {
			return e, nil
		}
	}
	return layout.decode(e, b[:12])
}

// URI returns the pure-identity EPC URI, e.g.
// "urn:epc:id:sgtin:0614141.812345.6789", or "urn:epc:raw:96.x…" for raw
// EPCs (the TDS raw EPC tag URI).
func (e EPC) URI() string {
	switch e.Scheme {
	case SchemeSGTIN96:
		return "urn:epc:id:sgtin:" + e.CompanyPrefix + "." + e.Reference + "." + e.Serial
	case SchemeSSCC96:
		return "urn:epc:id:sscc:" + e.CompanyPrefix + "." + e.Reference
	case SchemeSGLN96:
		return "urn:epc:id:sgln:" + e.CompanyPrefix + "." + e.Reference + "." + e.Serial
	case SchemeGRAI96:
		return "urn:epc:id:grai:" + e.CompanyPrefix + "." + e.Reference + "." + e.Serial
	case SchemeGIAI96:
		return "urn:epc:id:giai:" + e.CompanyPrefix + "." + e.Reference
	}
	return fmt.Sprintf("urn:epc:raw:%d.x%s", len(e.Hex)*4, e.Hex)
}

// TagURI returns the EPC tag URI, which adds the scheme and filter, e.g.
// "urn:epc:tag:sgtin-96:3.0614141.812345.6789"; raw EPCs return URI().
func (e EPC) TagURI() string {
	if e.Scheme == SchemeRaw {
		return e.URI()
	}
	id := strings.TrimPrefix(e.URI(), "urn:epc:id:")
	_, fields, _ := strings.Cut(id, ":")
	return fmt.Sprintf("urn:epc:tag:%s:%d.%s", e.Scheme, e.Filter, fields)
}
