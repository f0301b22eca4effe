package csvcell

import (
	"bytes"
	"encoding/csv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCell(t *testing.T) {
	for in, want := range map[string]string{
		"":                     "",
		"SKU-1":                "SKU-1",
		"=HYPERLINK(\"x\")":    "'=HYPERLINK(\"x\")",
		"+1+cmd|' /C calc'!A0": "'+1+cmd|' /C calc'!A0",
		"-2+3":                 "'-2+3",
		"@SUM(A1:A2)":          "'@SUM(A1:A2)",
		"\tx":                  "'\tx",
		"\rx":                  "'\rx",
		"-5":                   "-5",
		"+3":                   "+3",
		"-1.5":                 "-1.5",
		"a=b":                  "a=b",
	} {
		require.Equal(t, want, Cell(in), "Cell(%q)", in)
	}
}

func TestWriterNeutralisesEveryCell(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	require.NoError(t, w.Write([]string{"=1+1", "ok", "-7"}))
	require.NoError(t, w.Flush())
	recs, err := csv.NewReader(&b).ReadAll()
	require.NoError(t, err)
	require.Equal(t, [][]string{{"'=1+1", "ok", "-7"}}, recs)
}

func TestPlainUndoesCell(t *testing.T) {
	for _, s := range []string{"", "x", "=1", "-2+3", "@a", "-5", "'plain", "'=kept?"} {
		require.Equal(t, s, Plain(Cell(s)), "Plain(Cell(%q))", s)
	}
	require.Equal(t, "'x", Plain("'x"), "a quote the export did not add stays")
}
