package linemode

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// benchInput is 10,000 typical scans: EAN-13, GS1-128 and command labels.
func benchInput() []byte {
	var b bytes.Buffer
	for i := range 10000 {
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, "40063813%05d\r\n", i)
		case 1:
			fmt.Fprintf(&b, "]C10104006381333931\x1d10LOT%04d\x1d21SN%06d\r\n", i, i)
		default:
			fmt.Fprintf(&b, "LOC:A-%02d-%02d\r\n", i%50, i%7)
		}
	}
	return b.Bytes()
}

// BenchmarkReader reports framed scans per second; compare its MB/s with
// BenchmarkRawRead, which only copies the same bytes.
func BenchmarkReader(b *testing.B) {
	in := benchInput()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	scans := 0
	for b.Loop() {
		r := NewReader(bytes.NewReader(in), Config{})
		for {
			if _, err := r.Next(); err != nil {
				break
			}
			scans++
		}
	}
	b.ReportMetric(float64(scans)/b.Elapsed().Seconds(), "scans/s")
}

// BenchmarkFramer is BenchmarkReader without the pull-side queue.
func BenchmarkFramer(b *testing.B) {
	in := benchInput()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	scans := 0
	emit := func(Line, error) { scans++ }
	for b.Loop() {
		f := NewFramer(Config{})
		for p := in; len(p) > 0; p = p[min(len(p), readSize):] {
			f.Feed(p[:min(len(p), readSize)], emit)
		}
	}
	b.ReportMetric(float64(scans)/b.Elapsed().Seconds(), "scans/s")
}

// BenchmarkRawRead is the baseline: reading the same bytes with no framing.
func BenchmarkRawRead(b *testing.B) {
	in := benchInput()
	b.SetBytes(int64(len(in)))
	buf := make([]byte, readSize)
	for b.Loop() {
		r := bytes.NewReader(in)
		for {
			if _, err := r.Read(buf); err == io.EOF {
				break
			}
		}
	}
}
