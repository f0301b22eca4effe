package labels

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/drivers/scan"
)

// TestPatternTable checks the symbol table against the structure ISO/IEC
// 15417 gives every character: 3 bars and 3 spaces of 1–4 modules, 11
// modules in all (the stop 13 with its termination bar), an even number of
// bar modules and an odd number of space modules, and no two alike.
func TestPatternTable(t *testing.T) {
	seen := map[string]int{}
	for v, p := range patterns {
		if prev, ok := seen[p]; ok {
			t.Fatalf("value %d repeats the pattern of %d", v, prev)
		}
		seen[p] = v
		var bars, spaces int
		for i, c := range p {
			w := int(c - '0')
			require.True(t, w >= 1 && w <= 4, "value %d element %d", v, i)
			if i%2 == 0 {
				bars += w
			} else {
				spaces += w
			}
		}
		if v == stop {
			require.Equal(t, 13, bars+spaces)
			continue
		}
		require.Len(t, p, 6, "value %d", v)
		require.Equal(t, 11, bars+spaces, "value %d", v)
		require.Zero(t, bars%2, "value %d: bar modules must be even", v)
		require.Equal(t, 1, spaces%2, "value %d: space modules must be odd", v)
	}
}

// decode reads widths back into text, checking start, check character and
// stop: an independent reader of what Encode writes.
func decode(widths []int) (string, error) {
	rev := map[string]int{}
	for v, p := range patterns {
		rev[p] = v
	}
	var vals []int
	for i := 0; i < len(widths); {
		n := 6
		if len(widths)-i == 7 {
			n = 7
		}
		var b strings.Builder
		for _, w := range widths[i : i+n] {
			b.WriteByte(byte('0' + w))
		}
		v, ok := rev[b.String()]
		if !ok {
			return "", errors.New("unknown pattern " + b.String())
		}
		vals = append(vals, v)
		i += n
	}
	if len(vals) < 3 || vals[len(vals)-1] != stop {
		return "", errors.New("no stop")
	}
	sum := vals[0]
	for i, v := range vals[1 : len(vals)-2] {
		sum += (i + 1) * v
	}
	if sum%103 != vals[len(vals)-2] {
		return "", errors.New("check character mismatch")
	}
	var set byte
	switch vals[0] {
	case startB:
		set = 'B'
	case startC:
		set = 'C'
	default:
		return "", errors.New("bad start")
	}
	var out strings.Builder
	for _, v := range vals[1 : len(vals)-2] {
		switch {
		case v == fnc1:
			out.WriteByte(FNC1)
		case set == 'B' && v == codeC:
			set = 'C'
		case set == 'C' && v == codeB:
			set = 'B'
		case set == 'B':
			out.WriteByte(byte(v + 32))
		default:
			out.WriteString(string([]byte{byte('0' + v/10), byte('0' + v%10)}))
		}
	}
	return out.String(), nil
}

func TestEncodeRoundTripsAndPicksShortSets(t *testing.T) {
	tests := []struct {
		text    string
		symbols int // data characters, switches included
	}{
		{"CMD:RECEIVE", 11},
		{"1234", 2},                  // Start C: two pairs
		{"12", 1},                    // exactly two digits: C
		{"123", 3},                   // B: too short for C
		{"LOC:A-0001", 6 + 1 + 2},    // 4 digits at the end: a switch and two pairs beat four B characters
		{"PO:4500012345", 3 + 1 + 5}, // B for "PO:", switch, five pairs
		{"TASK:98765", 5 + 1 + 1 + 2},
		{"\x1d0104012345678901\x1d10LOT-1", 1 + 8 + 1 + 1 + 1 + 6}, // GS1-128: FNC1, pairs, FNC1, 10, B, LOT-1
	}
	for _, tc := range tests {
		t.Run(strings.ReplaceAll(tc.text, "\x1d", "<GS>"), func(t *testing.T) {
			vals, err := Encode(tc.text)
			require.NoError(t, err)
			got, err := decode(Widths(vals))
			require.NoError(t, err)
			require.Equal(t, tc.text, got)
			require.Equal(t, tc.symbols, len(vals)-3, "symbols %v", vals)
		})
	}
	// A worked check character: Start C (105) + 1×12 + 2×34 = 185 ≡ 82 (mod 103).
	vals, err := Encode("1234")
	require.NoError(t, err)
	require.Equal(t, []int{105, 12, 34, 82, 106}, vals)
	_, err = Encode("LOC:é")
	require.ErrorIs(t, err, ErrUnencodable)
}

func TestStandardLabelsAreTheScanVocabulary(t *testing.T) {
	for _, l := range Standard() {
		s, err := scan.Decode(l.Text)
		require.NoError(t, err, l.Text)
		require.NotEqual(t, scan.KindItem, s.Kind, l.Text)
		vals, err := Encode(l.Text)
		require.NoError(t, err)
		got, err := decode(Widths(vals))
		require.NoError(t, err)
		require.Equal(t, l.Text, got)
	}
}

func TestSheetIsWellFormedSVG(t *testing.T) {
	ls := append(Standard(), Label{"LOC:A-01", "Location A-01"}, Label{"OP:alice", "Operator alice"})
	var b bytes.Buffer
	require.NoError(t, WriteSVG(&b, ls))
	dec := xml.NewDecoder(&b)
	labels := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "g" {
			for _, a := range se.Attr {
				if a.Name.Local == "class" && a.Value == "label" {
					labels++
				}
			}
		}
	}
	require.Equal(t, len(ls), labels)
	b.Reset()
	require.NoError(t, WriteHTML(&b, "labels", ls))
	require.Equal(t, 2, strings.Count(b.String(), "<svg "), "two A4 pages")
	require.Error(t, WriteSVG(io.Discard, []Label{{Text: "LOC:" + strings.Repeat("X", 60)}}), "too long for the label stock")
}
