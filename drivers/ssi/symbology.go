package ssi

import "fmt"

// symbologies maps SSI code type bytes (the first data byte of
// DECODE_DATA) to names.
//
// Sources: the 1D entries follow "Code Type IDs", Table B-1 of the Symbol
// CS3000 Series Product Reference Guide (Appendix B, Programming
// Reference). The 2D entries (PDF417, MicroPDF, Data Matrix, QR, Aztec and
// their GS1 forms) follow Zebra's DS-series Product Reference Guides; code
// types are not uniform across every Zebra model, so check a scanner's own
// guide when a name looks wrong. Unknown codes print as "unknown(0xNN)".
var symbologies = map[byte]string{
	0x00: "Not applicable",
	0x01: "Code 39",
	0x02: "Codabar",
	0x03: "Code 128",
	0x04: "Discrete 2 of 5",
	0x05: "IATA 2 of 5",
	0x06: "Interleaved 2 of 5",
	0x07: "Code 93",
	0x08: "UPC-A",
	0x09: "UPC-E0",
	0x0A: "EAN-8",
	0x0B: "EAN-13",
	0x0C: "Code 11",
	0x0E: "MSI",
	0x0F: "GS1-128",
	0x10: "UPC-E1",
	0x11: "PDF417",
	0x15: "Trioptic Code 39",
	0x16: "Bookland EAN",
	0x17: "Coupon Code",
	0x1A: "MicroPDF417",
	0x1B: "Data Matrix",
	0x1C: "QR Code",
	0x23: "GS1 DataBar Limited",
	0x24: "GS1 DataBar-14",
	0x25: "GS1 DataBar Expanded",
	0x2C: "MicroQR",
	0x2D: "Aztec",
	0x48: "UPC-A with 2 Supps.",
	0x49: "UPC-E0 with 2 Supps.",
	0x4A: "EAN-8 with 2 Supps.",
	0x4B: "EAN-13 with 2 Supps.",
	0x50: "UPC-E1 with 2 Supps.",
	0x72: "Chinese 2 of 5",
	0x88: "UPC-A with 5 Supps.",
	0x89: "UPC-E0 with 5 Supps.",
	0x8A: "EAN-8 with 5 Supps.",
	0x8B: "EAN-13 with 5 Supps.",
	0x90: "UPC-E1 with 5 Supps.",
	0xC1: "GS1 Data Matrix",
	0xC2: "GS1 QR",
}

// Symbology returns the name of an SSI code type.
func Symbology(codeType byte) string {
	if s, ok := symbologies[codeType]; ok {
		return s
	}
	return fmt.Sprintf("unknown(0x%02X)", codeType)
}

// CodeType returns the SSI code type for a symbology name as Symbology
// prints it, and whether there is one.
func CodeType(name string) (byte, bool) {
	for c, s := range symbologies {
		if s == name {
			return c, true
		}
	}
	return 0, false
}
