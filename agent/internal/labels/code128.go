// Package labels prints the barcodes operators scan: an encoder of the
// Code 128 symbology written from its specification (ISO/IEC 15417:2007,
// "Information technology — Automatic identification and data capture
// techniques — Code 128 bar code symbology specification"), and a
// printable sheet of shelfsync labels (commands, quantities, reasons,
// locations, operators …) as SVG or as an HTML page of SVGs.
//
// The encoder uses code sets B (ASCII 32–126) and C (digit pairs), picking
// the shorter per run as Annex E of the standard recommends, and appends
// the modulo-103 check character. It does no I/O.
package labels

import (
	"errors"
	"fmt"
)

// patterns are the element widths, in modules, of the symbol characters
// 0–106 (ISO/IEC 15417, Table 1): bar, space, bar, space, bar, space.
// Every character is 11 modules wide; the stop character (106) has a
// seventh element, the 2-module termination bar, and is 13 modules wide.
var patterns = [107]string{
	"212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212", "221213", // 0–9
	"221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221", "223211", "221132", // 10–19
	"221231", "213212", "223112", "312131", "311222", "321122", "321221", "312212", "322112", "322211", // 20–29
	"212123", "212321", "232121", "111323", "131123", "131321", "112313", "132113", "132311", "211313", // 30–39
	"231113", "231311", "112133", "112331", "132131", "113123", "113321", "133121", "313121", "211331", // 40–49
	"231131", "213113", "213311", "213131", "311123", "311321", "331121", "312113", "312311", "332111", // 50–59
	"314111", "221411", "431111", "111224", "111422", "121124", "121421", "141122", "141221", "112214", // 60–69
	"112412", "122114", "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111", // 70–79
	"111242", "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141", // 80–89
	"214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311", "113141", // 90–99
	"114131", "311141", "411131", // 100–102
	"211412",  // 103 Start A
	"211214",  // 104 Start B
	"211232",  // 105 Start C
	"2331112", // 106 Stop (with termination bar)
}

// Symbol character values with a special meaning.
const (
	codeC  = 99  // in code set B: switch to C
	codeB  = 100 // in code set C: switch to B
	fnc1   = 102 // FNC1 (both sets): GS1-128 marker, or GS separator
	startB = 104
	startC = 105
	stop   = 106
)

// QuietZone is the light margin each side of a symbol, in modules (the
// standard's minimum is 10).
const QuietZone = 10

// ErrUnencodable reports text with a character Code 128 sets B and C
// cannot carry (controls, non-ASCII).
var ErrUnencodable = errors.New("code128: text must be printable ASCII (32-126)")

// FNC1 marks, in text given to Encode, a function 1 character: at the
// start it makes a GS1-128 symbol, elsewhere it separates variable-length
// GS1 element strings (scanners transmit it as GS, 0x1D).
const FNC1 = '\x1d'

// Encode returns the symbol character values of text: start character,
// data (with code set switches), check character and stop.
func Encode(text string) ([]int, error) {
	if text == "" {
		return nil, errors.New("code128: empty text")
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		if (c < 32 || c > 126) && c != FNC1 {
			return nil, fmt.Errorf("%w: byte %#x at %d", ErrUnencodable, c, i)
		}
	}
	var vals []int
	set := byte('B')
	if digitRun(text, 0) >= 4 || (len(text) == 2 && digitRun(text, 0) == 2) {
		set = 'C'
		vals = append(vals, startC)
	} else {
		vals = append(vals, startB)
	}
	for i := 0; i < len(text); {
		c := text[i]
		if set == 'B' {
			if n := digitRun(text, i); n >= 6 || (n >= 4 && i+n == len(text)) {
				if n%2 == 1 { // an odd run: one digit in B first
					vals = append(vals, int(c)-32)
					i++
				}
				vals = append(vals, codeC)
				set = 'C'
				continue
			}
			if c == FNC1 {
				vals = append(vals, fnc1)
			} else {
				vals = append(vals, int(c)-32)
			}
			i++
			continue
		}
		// Code set C: digit pairs and FNC1.
		switch {
		case c == FNC1:
			vals = append(vals, fnc1)
			i++
		case digitRun(text, i) >= 2:
			vals = append(vals, int(c-'0')*10+int(text[i+1]-'0'))
			i += 2
		default:
			vals = append(vals, codeB)
			set = 'B'
		}
	}
	sum := vals[0]
	for i, v := range vals[1:] {
		sum += (i + 1) * v
	}
	vals = append(vals, sum%103, stop)
	return vals, nil
}

// digitRun counts the digits from text[i] on.
func digitRun(s string, i int) int {
	n := 0
	for ; i+n < len(s) && s[i+n] >= '0' && s[i+n] <= '9'; n++ {
	}
	return n
}

// Widths returns the element widths of a symbol, in modules, bar first,
// without quiet zones.
func Widths(vals []int) []int {
	var out []int
	for _, v := range vals {
		for _, c := range patterns[v] {
			out = append(out, int(c-'0'))
		}
	}
	return out
}

// Modules returns the width of the widths in modules.
func Modules(widths []int) int {
	n := 0
	for _, w := range widths {
		n += w
	}
	return n
}
