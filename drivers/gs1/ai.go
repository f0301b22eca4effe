package gs1

import (
	"fmt"
	"strconv"
	"strings"
)

// charset is the set of characters an AI value part may use
// (GS1 General Specifications 7.11, figures 7.11-1 and 7.11-2).
type charset uint8

const (
	csetN  charset = iota // digits 0-9
	cset82                // GS1 AI encodable character set 82
	cset39                // GS1 AI encodable character set 39
)

// kind says how a value is interpreted beyond its character set.
type kind uint8

const (
	kindPlain    kind = iota
	kindDate          // YYMMDD, day 00 allowed (end of month)
	kindDateTime      // YYMMDDHHMM
	kindMeasure       // implied decimal point: the AI's last digit
	kindCount         // integer quantity
)

// part is one component of an AI value, e.g. the N13 and the X..17 of
// AI 253.
type part struct {
	cset     charset
	min, max int
	check    bool // ends with a GS1 check digit over the whole part
}

// spec is one application identifier of the table.
type spec struct {
	code     string
	title    string
	parts    []part
	kind     kind
	decimals int // for kindMeasure
}

// AIInfo describes an application identifier this package knows.
type AIInfo struct {
	Code       string // the AI, e.g. "3103"
	Title      string // data title, e.g. "NET WEIGHT (kg)"
	Format     string // GS1 format notation, e.g. "N6", "X..20", "N13+X..17"
	MinLen     int    // shortest value
	MaxLen     int    // longest value
	Predefined bool   // in the predefined-length table: no FNC1 needed after it
	CheckDigit bool   // the value (or its first part) ends with a check digit
	Decimals   int    // implied decimals of a measure; -1 when not a measure
}

// LookupAI returns what the table knows of an AI.
func LookupAI(code string) (AIInfo, bool) {
	sp, ok := table[code]
	if !ok {
		return AIInfo{}, false
	}
	info := AIInfo{Code: sp.code, Title: sp.title, Decimals: -1}
	formats := make([]string, len(sp.parts))
	for i, p := range sp.parts {
		info.MinLen += p.min
		info.MaxLen += p.max
		info.CheckDigit = info.CheckDigit || p.check
		letter := "N"
		if p.cset != csetN {
			letter = "X" // sets 82 and 39 are both written X
		}
		if p.min == p.max {
			formats[i] = fmt.Sprintf("%s%d", letter, p.max)
		} else {
			formats[i] = fmt.Sprintf("%s..%d", letter, p.max)
		}
	}
	info.Format = strings.Join(formats, "+")
	_, info.Predefined = predefinedLength(code)
	if sp.kind == kindMeasure {
		info.Decimals = sp.decimals
	}
	return info, true
}

// predefinedLength returns the value length of AIs whose first two digits
// are in the GS1 predefined-length table (General Specifications,
// "element strings with predefined length"): these need no FNC1 separator
// after them.
func predefinedLength(code string) (int, bool) {
	if len(code) < 2 {
		return 0, false
	}
	switch p := code[:2]; {
	case p == "00":
		return 18, true
	case p >= "01" && p <= "03":
		return 14, true
	case p == "04":
		return 16, true
	case p >= "11" && p <= "19":
		return 6, true
	case p == "20":
		return 2, true
	case p >= "31" && p <= "36":
		return 6, true
	case p == "41":
		return 13, true
	}
	return 0, false
}

var (
	table    = map[string]*spec{}
	prefixes = map[string]bool{} // every proper prefix of a known AI
)

func n(l int) part         { return part{cset: csetN, min: l, max: l} }
func nCheck(l int) part    { return part{cset: csetN, min: l, max: l, check: true} }
func nVar(lo, hi int) part { return part{cset: csetN, min: lo, max: hi} }
func x(hi int) part        { return part{cset: cset82, min: 1, max: hi} }
func xOpt(hi int) part     { return part{cset: cset82, min: 0, max: hi} }
func c39(hi int) part      { return part{cset: cset39, min: 1, max: hi} }

func add(code, title string, k kind, parts ...part) {
	sp := &spec{code: code, title: title, parts: parts, kind: k}
	if k == kindMeasure {
		sp.decimals = int(code[len(code)-1] - '0')
	}
	table[code] = sp
	for i := 1; i < len(code); i++ {
		prefixes[code[:i]] = true
	}
}

// measures lists the three-digit stems of the 3nnn measure AIs with their
// titles (General Specifications 3.6); the fourth digit is the number of
// implied decimals, 0 to 5.
var measures = []struct{ stem, title string }{
	{"310", "NET WEIGHT (kg)"}, {"311", "LENGTH (m)"}, {"312", "WIDTH (m)"},
	{"313", "HEIGHT (m)"}, {"314", "AREA (m²)"}, {"315", "NET VOLUME (l)"},
	{"316", "NET VOLUME (m³)"},
	{"320", "NET WEIGHT (lb)"}, {"321", "LENGTH (in)"}, {"322", "LENGTH (ft)"},
	{"323", "LENGTH (yd)"}, {"324", "WIDTH (in)"}, {"325", "WIDTH (ft)"},
	{"326", "WIDTH (yd)"}, {"327", "HEIGHT (in)"}, {"328", "HEIGHT (ft)"},
	{"329", "HEIGHT (yd)"}, {"330", "GROSS WEIGHT (kg)"}, {"331", "LENGTH (m), log"},
	{"332", "WIDTH (m), log"}, {"333", "HEIGHT (m), log"}, {"334", "AREA (m²), log"},
	{"335", "VOLUME (l), log"}, {"336", "VOLUME (m³), log"}, {"337", "KG PER m²"},
	{"340", "GROSS WEIGHT (lb)"}, {"341", "LENGTH (in), log"}, {"342", "LENGTH (ft), log"},
	{"343", "LENGTH (yd), log"}, {"344", "WIDTH (in), log"}, {"345", "WIDTH (ft), log"},
	{"346", "WIDTH (yd), log"}, {"347", "HEIGHT (in), log"}, {"348", "HEIGHT (ft), log"},
	{"349", "HEIGHT (yd), log"}, {"350", "AREA (in²)"}, {"351", "AREA (ft²)"},
	{"352", "AREA (yd²)"}, {"353", "AREA (in²), log"}, {"354", "AREA (ft²), log"},
	{"355", "AREA (yd²), log"}, {"356", "NET WEIGHT (troy oz)"}, {"357", "NET VOLUME (oz)"},
	{"360", "NET VOLUME (qt)"}, {"361", "NET VOLUME (gal.)"}, {"362", "VOLUME (qt), log"},
	{"363", "VOLUME (gal.), log"}, {"364", "VOLUME (in³)"}, {"365", "VOLUME (ft³)"},
	{"366", "VOLUME (yd³)"}, {"367", "VOLUME (in³), log"}, {"368", "VOLUME (ft³), log"},
	{"369", "VOLUME (yd³), log"},
}

// The table follows the GS1 General Specifications section 3 and the GS1
// Barcode Syntax Dictionary: format, check digit and date rules per AI.
func init() {
	add("00", "SSCC", kindPlain, nCheck(18))
	add("01", "GTIN", kindPlain, nCheck(14))
	add("02", "CONTENT", kindPlain, nCheck(14))
	add("10", "BATCH/LOT", kindPlain, x(20))
	add("11", "PROD DATE", kindDate, n(6))
	add("12", "DUE DATE", kindDate, n(6))
	add("13", "PACK DATE", kindDate, n(6))
	add("15", "BEST BEFORE or BEST BY", kindDate, n(6))
	add("16", "SELL BY", kindDate, n(6))
	add("17", "USE BY or EXPIRY", kindDate, n(6))
	add("20", "VARIANT", kindPlain, n(2))
	add("21", "SERIAL", kindPlain, x(20))
	add("22", "CPV", kindPlain, x(20))
	add("30", "VAR. COUNT", kindCount, nVar(1, 8))
	add("37", "COUNT", kindCount, nVar(1, 8))
	add("240", "ADDITIONAL ID", kindPlain, x(30))
	add("241", "CUST. PART No.", kindPlain, x(30))
	add("250", "SECONDARY SERIAL", kindPlain, x(30))
	add("251", "REF. TO SOURCE", kindPlain, x(30))
	add("253", "GDTI", kindPlain, nCheck(13), xOpt(17))
	add("254", "GLN EXTENSION COMPONENT", kindPlain, x(20))
	add("255", "GCN", kindPlain, nCheck(13), nVar(0, 12))
	for _, m := range measures {
		for d := 0; d <= 5; d++ {
			add(m.stem+strconv.Itoa(d), m.title, kindMeasure, n(6))
		}
	}
	for d := 0; d <= 9; d++ {
		add("390"+strconv.Itoa(d), "AMOUNT", kindMeasure, nVar(1, 15))
		add("392"+strconv.Itoa(d), "PRICE", kindMeasure, nVar(1, 15))
	}
	add("400", "ORDER NUMBER", kindPlain, x(30))
	add("401", "GINC", kindPlain, x(30))
	add("402", "GSIN", kindPlain, nCheck(17))
	add("403", "ROUTE", kindPlain, x(30))
	add("410", "SHIP TO LOC", kindPlain, nCheck(13))
	add("411", "BILL TO", kindPlain, nCheck(13))
	add("412", "PURCHASE FROM", kindPlain, nCheck(13))
	add("413", "SHIP FOR LOC", kindPlain, nCheck(13))
	add("414", "LOC No.", kindPlain, nCheck(13))
	add("415", "PAY TO", kindPlain, nCheck(13))
	add("416", "PROD/SERV LOC", kindPlain, nCheck(13))
	add("417", "PARTY", kindPlain, nCheck(13))
	add("420", "SHIP TO POST", kindPlain, x(20))
	add("421", "SHIP TO POST", kindPlain, n(3), x(9))
	add("7003", "EXPIRY TIME", kindDateTime, n(10))
	add("8003", "GRAI", kindPlain, nCheck(14), xOpt(16))
	add("8004", "GIAI", kindPlain, x(30))
	add("8006", "ITIP", kindPlain, nCheck(14), n(2), n(2))
	add("8010", "CPID", kindPlain, c39(30))
	add("8011", "CPID SERIAL", kindPlain, nVar(1, 12))
	add("8017", "GSRN - PROVIDER", kindPlain, nCheck(18))
	add("8018", "GSRN - RECIPIENT", kindPlain, nCheck(18))
	add("8019", "SRIN", kindPlain, nVar(1, 10))
	add("8020", "REF No.", kindPlain, x(25))
	add("90", "INTERNAL", kindPlain, x(30))
	for d := 1; d <= 9; d++ {
		add("9"+strconv.Itoa(d), "INTERNAL", kindPlain, x(90))
	}
}

// fixedLength returns the value length when every part of the AI has a
// fixed length.
func (sp *spec) fixedLength() (int, bool) {
	total := 0
	for _, p := range sp.parts {
		if p.min != p.max {
			return 0, false
		}
		total += p.max
	}
	return total, true
}

// in82 reports whether c is in GS1 AI encodable character set 82:
// ! " % & ' ( ) * + , - . / 0-9 : ; < = > ? A-Z _ a-z.
func in82(c byte) bool {
	switch {
	case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte(`!"%&'()*+,-./:;<=>?_`, c) >= 0
}

// in39 reports whether c is in GS1 AI encodable character set 39:
// # - / 0-9 A-Z.
func in39(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '#' || c == '-' || c == '/'
}
