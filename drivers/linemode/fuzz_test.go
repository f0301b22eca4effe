package linemode

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func FuzzReader(f *testing.F) {
	f.Add([]byte("4006381333931\r\nLOC:A-01\r\n"), "", uint8(16), uint8(3))
	f.Add([]byte("\x02one\x03\r\n\r\n"), "\r\n", uint8(4), uint8(1))
	f.Add([]byte("abc\x00\xff\tdef\t"), "\t", uint8(2), uint8(5))
	f.Fuzz(func(t *testing.T, data []byte, term string, maxLine, chunk uint8) {
		cfg := Config{Terminator: term, MaxLine: int(maxLine%64) + 1}
		if cfg.Validate() != nil {
			return
		}
		cfg = cfg.EnsureDefaults()
		r := NewReader(&chunkReader{data: data, n: int(chunk%16) + 1}, cfg)
		lines := 0
		for {
			l, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				if !errors.Is(err, ErrLineTooLong) {
					t.Fatalf("unexpected error %v", err)
				}
				continue
			}
			lines++
			if len(l.Raw) > cfg.MaxLine {
				t.Fatalf("line of %d bytes > MaxLine %d", len(l.Raw), cfg.MaxLine)
			}
			if l.Text == "" {
				t.Fatal("empty line returned")
			}
			if cfg.Terminator == AutoTerminator && bytes.ContainsAny(l.Raw, "\r\n") {
				t.Fatalf("line %q holds a terminator", l.Raw)
			}
			if cfg.Terminator != AutoTerminator && bytes.Contains(l.Raw, []byte(cfg.Terminator)) {
				t.Fatalf("line %q holds terminator %q", l.Raw, cfg.Terminator)
			}
			if cap(r.f.buf) > cfg.MaxLine+len(cfg.Terminator) && cap(r.f.buf) > 256 {
				t.Fatalf("buffer grew to %d", cap(r.f.buf))
			}
		}
		if lines > len(data) {
			t.Fatalf("%d lines from %d bytes", lines, len(data))
		}
	})
}
