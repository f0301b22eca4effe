// Package csvcell writes the server's CSV exports so that a spreadsheet
// opening them runs nothing: a cell that a spreadsheet would read as a
// formula (one starting with =, +, -, @, a tab or a carriage return) is
// prefixed with a single quote, as OWASP's "CSV injection" guidance says.
// Cells that are plain numbers (-5, +3, 1.5) are left as they are.
package csvcell

import (
	"encoding/csv"
	"io"
	"strconv"
)

// Writer is a csv.Writer that neutralises formula cells.
type Writer struct {
	w   *csv.Writer
	buf []string
}

// NewWriter returns a Writer writing to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: csv.NewWriter(w)} }

// Write writes one record, each cell passed through Cell.
func (w *Writer) Write(rec []string) error {
	w.buf = w.buf[:0]
	for _, c := range rec {
		w.buf = append(w.buf, Cell(c))
	}
	return w.w.Write(w.buf)
}

// Flush writes any buffered data and returns the first write error.
func (w *Writer) Flush() error {
	w.w.Flush()
	return w.w.Error()
}

// Cell returns s, or s prefixed with a single quote when a spreadsheet
// would take it for a formula.
func Cell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
	case '\'':
		if Cell(s[1:]) == s {
			return "'" + s // would read back as a neutralised cell: keep it apart
		}
		return s
	default:
		return s
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil && s[0] != '=' && s[0] != '@' && s[0] != '\t' && s[0] != '\r' {
		return s // a signed number is data, not a formula
	}
	return "'" + s
}

// Plain undoes Cell for an imported cell: a file exported here and
// imported again keeps its values.
func Plain(s string) string {
	if len(s) >= 2 && s[0] == '\'' && Cell(s[1:]) == s {
		return s[1:]
	}
	return s
}
