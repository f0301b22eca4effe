package main

import (
	"bytes"
	"fmt"
	"io"
	"time"

	"github.com/shelfsync/shelfsync/drivers/epc"
	"github.com/shelfsync/shelfsync/drivers/linemode"
	"github.com/shelfsync/shelfsync/drivers/rfid"
)

// benchRFID feeds a Mercury continuous-read stream (1,000 SGTIN-96 tags on
// 4 antennas, 4 reads of each tag per window) through the reader's frame
// decoder, tag parser and de-dup, and decodes each de-duplicated EPC to a
// GTIN as the agent does; the baseline copies the same frames.
func benchRFID(d time.Duration) (Result, error) {
	const tags, reads = 1000, 16384
	var frames [][]byte
	for i := 0; i < reads; i++ {
		t := i % tags
		e, err := epc.EncodeSGTIN96(3, withCheck(fmt.Sprintf("0%07d%05d", 4006381, t%100)), 7, uint64(t))
		if err != nil {
			return Result{}, err
		}
		data := rfid.AppendMercuryTag(nil, rfid.MercuryTag{RSSI: -50 - i%20, TxAntenna: 1 + i%4, RxAntenna: 1 + i%4, FrequencyKHz: 915250, EPC: e})
		f, err := rfid.AppendMercuryResponse(nil, rfid.MercuryOpReadMultiple, 0, data)
		if err != nil {
			return Result{}, err
		}
		frames = append(frames, f)
	}
	stream := bytes.Join(frames, nil)

	decoded := 0
	dd := rfid.NewDedup(100*time.Millisecond, func(r rfid.TagRead) {
		if _, err := epc.Decode(r.EPC); err == nil {
			decoded++
		}
	})
	var md rfid.MercuryDecoder
	md.FromReader = true
	now := time.Unix(0, 0)
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		for off := 0; off < len(stream); off += 4096 {
			_, _ = md.Write(stream[off:min(off+4096, len(stream))])
			for f, ok := md.Next(); ok; f, ok = md.Next() {
				m, err := rfid.ParseMercury(f, true)
				if err != nil {
					return Result{}, err
				}
				t, err := rfid.ParseMercuryTag(m.Data)
				if err != nil {
					return Result{}, err
				}
				now = now.Add(25 * time.Microsecond) // 40,000 reads/s of reader time
				dd.Add(rfid.TagRead{EPC: t.EPC, Antenna: t.RxAntenna, RSSI: t.RSSI, At: now, Count: 1})
				n++
			}
		}
	}
	dd.FlushAll()
	rate := float64(n) / time.Since(start).Seconds()
	if decoded == 0 {
		return Result{}, fmt.Errorf("no EPC decoded")
	}

	dst := make([]byte, 0, 512)
	copies := 0
	start = time.Now()
	for time.Since(start) < d {
		for _, f := range frames {
			dst = append(dst[:0], f...)
			copies++
		}
	}
	raw := float64(copies) / time.Since(start).Seconds()
	logf("rfid: %.0f reads/s decoded+de-duplicated (%d unique emitted), raw frame copy %.0f frames/s", rate, decoded, raw)
	return result("rfid_reads_per_s", rate, "reads/s", "copying the same Mercury frames (no decode)", raw), nil
}

// benchLine frames 10,000 typical scans (EAN-13, GS1-128 with FNC1, LOC:
// labels; CRLF) with drivers/linemode; the baseline reads the same bytes
// in 4 KiB reads without framing, expressed in the same scans/s.
func benchLine(d time.Duration) Result {
	var b bytes.Buffer
	const scans = 10000
	for i := range scans {
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, "40063813%05d\r\n", i)
		case 1:
			fmt.Fprintf(&b, "]C10104006381333931\x1d10LOT%04d\x1d21SN%06d\r\n", i, i)
		default:
			fmt.Fprintf(&b, "LOC:A-%02d-%02d\r\n", i%50, i%7)
		}
	}
	in := b.Bytes()
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		r := linemode.NewReader(bytes.NewReader(in), linemode.Config{})
		for {
			if _, err := r.Next(); err != nil {
				break
			}
			n++
		}
	}
	rate := float64(n) / time.Since(start).Seconds()

	buf := make([]byte, 4096)
	passes := 0
	start = time.Now()
	for time.Since(start) < d {
		r := bytes.NewReader(in)
		for {
			if _, err := r.Read(buf); err == io.EOF {
				break
			}
		}
		passes++
	}
	raw := float64(passes*scans) / time.Since(start).Seconds()
	logf("line: %.0f scans/s framed, raw read %.0f scans/s", rate, raw)
	return result("line_scans_per_s", rate, "scans/s", "raw 4 KiB reads of the same bytes, no framing", raw)
}

// withCheck appends the GS1 check digit (weights 3,1,3,… from the right).
func withCheck(body string) string {
	sum := 0
	for i := len(body) - 1; i >= 0; i-- {
		d := int(body[i] - '0')
		if (len(body)-1-i)%2 == 0 {
			d *= 3
		}
		sum += d
	}
	return body + fmt.Sprint((10-sum%10)%10)
}
