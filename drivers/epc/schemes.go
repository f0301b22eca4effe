package epc

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/shelfsync/shelfsync/drivers/gs1"
)

// partition is one row of a partition table: how the bits (and decimal
// digits) after the partition field split between the GS1 Company Prefix
// and the scheme's second field.
type partition struct {
	companyBits, companyDigits int
	refBits, refDigits         int
}

// Partition tables of the TDS binary encodings of SGTIN, SSCC, SGLN, GRAI
// and GIAI, indexed by partition value 0–6. Company prefix bits/digits are
// 40/12, 37/11, 34/10, 30/9, 27/8, 24/7, 20/6 in all of them.
var (
	sgtinPartitions = [7]partition{{40, 12, 4, 1}, {37, 11, 7, 2}, {34, 10, 10, 3}, {30, 9, 14, 4}, {27, 8, 17, 5}, {24, 7, 20, 6}, {20, 6, 24, 7}}
	ssccPartitions  = [7]partition{{40, 12, 18, 5}, {37, 11, 21, 6}, {34, 10, 24, 7}, {30, 9, 28, 8}, {27, 8, 31, 9}, {24, 7, 34, 10}, {20, 6, 38, 11}}
	sglnPartitions  = [7]partition{{40, 12, 1, 0}, {37, 11, 4, 1}, {34, 10, 7, 2}, {30, 9, 11, 3}, {27, 8, 14, 4}, {24, 7, 17, 5}, {20, 6, 21, 6}}
	graiPartitions  = [7]partition{{40, 12, 4, 0}, {37, 11, 7, 1}, {34, 10, 10, 2}, {30, 9, 14, 3}, {27, 8, 17, 4}, {24, 7, 20, 5}, {20, 6, 24, 6}}
	giaiPartitions  = [7]partition{{40, 12, 42, 13}, {37, 11, 45, 14}, {34, 10, 48, 15}, {30, 9, 52, 16}, {27, 8, 55, 17}, {24, 7, 58, 18}, {20, 6, 62, 19}}
)

// layout describes one 96-bit scheme: header (8 bits), filter (3),
// partition (3), company prefix + reference (partition table), then a
// trailing field of tailBits.
type layout struct {
	scheme     string
	partitions *[7]partition
	tailBits   int  // serial / extension bits after the reference; 0 for GIAI
	numericRef bool // the reference is a number without padding (GIAI)
	key        func(e *EPC)
}

var layouts = map[byte]layout{
	HeaderSGTIN96: {scheme: SchemeSGTIN96, partitions: &sgtinPartitions, tailBits: 38, key: func(e *EPC) {
		body := e.Reference[:1] + e.CompanyPrefix + e.Reference[1:]
		e.GTIN = withCheck(body)
	}},
	HeaderSSCC96: {scheme: SchemeSSCC96, partitions: &ssccPartitions, tailBits: 0, key: func(e *EPC) {
		e.SSCC = withCheck(e.Reference[:1] + e.CompanyPrefix + e.Reference[1:])
	}},
	HeaderSGLN96: {scheme: SchemeSGLN96, partitions: &sglnPartitions, tailBits: 41, key: func(e *EPC) {
		e.GLN = withCheck(e.CompanyPrefix + e.Reference)
	}},
	HeaderGRAI96: {scheme: SchemeGRAI96, partitions: &graiPartitions, tailBits: 38, key: func(e *EPC) {
		e.GRAI = "0" + withCheck(e.CompanyPrefix+e.Reference) + e.Serial
	}},
	HeaderGIAI96: {scheme: SchemeGIAI96, partitions: &giaiPartitions, numericRef: true, key: func(e *EPC) {
		e.GIAI = e.CompanyPrefix + e.Reference
	}},
}

func withCheck(body string) string {
	c, _ := gs1.CheckDigit(body)
	return body + string(c)
}

// decode fills e from the 12 bytes b.
func (l layout) decode(e EPC, b []byte) (EPC, error) {
	e.Filter = int(field(b, 8, 3))
	e.Partition = int(field(b, 11, 3))
	if e.Partition > 6 {
		return e, fmt.Errorf("epc: %s: partition %d at bits 11-13: %w (want 0-6)", l.scheme, e.Partition, ErrRange)
	}
	p := l.partitions[e.Partition]
	company := field(b, 14, p.companyBits)
	var err error
	if e.CompanyPrefix, err = digits(company, p.companyDigits, l.scheme, "company prefix", e.Partition); err != nil {
		return e, err
	}
	refOff := 14 + p.companyBits
	if l.numericRef {
		ref := fieldBig(b, refOff, p.refBits)
		if len(ref.String()) > p.refDigits {
			return e, fmt.Errorf("epc: %s: asset reference %s has more than %d digits (partition %d): %w",
				l.scheme, ref, p.refDigits, e.Partition, ErrRange)
		}
		e.Reference = ref.String()
	} else if e.Reference, err = digits(field(b, refOff, p.refBits), p.refDigits, l.scheme, "reference", e.Partition); err != nil {
		return e, err
	}
	if l.tailBits > 0 {
		e.Serial = strconv.FormatUint(field(b, refOff+p.refBits, l.tailBits), 10)
	}
	e.Scheme = l.scheme
	l.key(&e)
	return e, nil
}

// digits formats v with exactly n digits, failing when it does not fit.
func digits(v uint64, n int, scheme, what string, part int) (string, error) {
	s := strconv.FormatUint(v, 10)
	if n == 0 {
		if v != 0 {
			return "", fmt.Errorf("epc: %s: %s %d must be 0 (partition %d): %w", scheme, what, v, part, ErrRange)
		}
		return "", nil
	}
	if len(s) > n {
		return "", fmt.Errorf("epc: %s: %s %s has more than %d digits (partition %d): %w", scheme, what, s, n, part, ErrRange)
	}
	return strings.Repeat("0", n-len(s)) + s, nil
}

// field reads n ≤ 64 bits of b starting at bit off (0 = MSB of b[0]).
func field(b []byte, off, n int) uint64 {
	var v uint64
	for i := off; i < off+n; i++ {
		v = v<<1 | uint64(b[i/8]>>(7-i%8)&1)
	}
	return v
}

// fieldBig reads n bits of b starting at bit off.
func fieldBig(b []byte, off, n int) *big.Int {
	v := new(big.Int)
	for i := off; i < off+n; i++ {
		v.Lsh(v, 1)
		if b[i/8]>>(7-i%8)&1 == 1 {
			v.SetBit(v, 0, 1)
		}
	}
	return v
}

// putField writes the n low bits of v into b at bit off.
func putField(b []byte, off, n int, v uint64) {
	for i := 0; i < n; i++ {
		bit := byte(v>>(n-1-i)) & 1
		pos := off + i
		b[pos/8] |= bit << (7 - pos%8)
	}
}

// MaxSGTIN96Serial is the largest serial number SGTIN-96 can hold (38 bits).
const MaxSGTIN96Serial = 1<<38 - 1

// EncodeSGTIN96 encodes a GTIN-14 and a numeric serial as an SGTIN-96
// (TDS SGTIN-96 binary encoding). companyDigits (6–12) says how many digits after the
// indicator digit are the GS1 Company Prefix; it chooses the partition.
// The GTIN's check digit must be valid; it is not stored on the tag.
func EncodeSGTIN96(filter int, gtin string, companyDigits int, serial uint64) ([]byte, error) {
	if filter < 0 || filter > 7 {
		return nil, fmt.Errorf("epc: sgtin-96 filter %d: %w (want 0-7)", filter, ErrRange)
	}
	if err := gs1.ValidateGTIN(gtin); err != nil || len(gtin) != 14 {
		if err == nil {
			err = fmt.Errorf("want 14 digits, got %d", len(gtin))
		}
		return nil, fmt.Errorf("epc: sgtin-96 GTIN: %w", err)
	}
	if serial > MaxSGTIN96Serial {
		return nil, fmt.Errorf("epc: sgtin-96 serial %d: %w (max %d)", serial, ErrRange, uint64(MaxSGTIN96Serial))
	}
	part := -1
	for i, p := range sgtinPartitions {
		if p.companyDigits == companyDigits {
			part = i
		}
	}
	if part < 0 {
		return nil, fmt.Errorf("epc: sgtin-96 company prefix of %d digits: %w (want 6-12)", companyDigits, ErrRange)
	}
	p := sgtinPartitions[part]
	company, _ := strconv.ParseUint(gtin[1:1+companyDigits], 10, 64)
	ref, _ := strconv.ParseUint(gtin[:1]+gtin[1+companyDigits:13], 10, 64)

	b := make([]byte, 12)
	b[0] = HeaderSGTIN96
	putField(b, 8, 3, uint64(filter))
	putField(b, 11, 3, uint64(part))
	putField(b, 14, p.companyBits, company)
	putField(b, 14+p.companyBits, p.refBits, ref)
	putField(b, 14+p.companyBits+p.refBits, 38, serial)
	return b, nil
}
