package rfid

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// Benchmarks report reads/s; the goal is > 200,000 reads/s on one core
// for decode + dedup. BenchmarkRawFrameCopy is the floor: copying the same
// frames without looking inside them.

const benchReads = 4096

func BenchmarkDedup(b *testing.B) {
	for _, tags := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("tags=%d", tags), func(b *testing.B) {
			reads := syntheticReads(1<<16, tags, 4)
			emitted := 0
			d := NewDedup(100*time.Millisecond, func(TagRead) { emitted++ })
			span := reads[len(reads)-1].At.Sub(reads[0].At) + 10*time.Microsecond
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				r := reads[i%len(reads)]
				r.At = r.At.Add(time.Duration(i/len(reads)) * span)
				d.Add(r)
			}
			b.StopTimer()
			reportReads(b, b.N)
		})
	}
}

// benchStream encodes benchReads tag reads of 1000 tags on 4 antennas as a
// reader would send them.
func benchStream(b *testing.B, proto Protocol) (stream []byte, frames [][]byte) {
	reads := syntheticReads(benchReads, 1000, 4)
	switch proto {
	case Mercury:
		for _, r := range reads {
			data := AppendMercuryTag(nil, MercuryTag{RSSI: r.RSSI, TxAntenna: r.Antenna, RxAntenna: r.Antenna,
				FrequencyKHz: 915250, EPC: r.EPC})
			f, err := AppendMercuryResponse(nil, MercuryOpReadMultiple, 0, data)
			if err != nil {
				b.Fatal(err)
			}
			frames = append(frames, f)
		}
	case UHF18:
		for i := 0; i < len(reads); i += 16 {
			var epcs [][]byte
			for _, r := range reads[i : i+16] {
				epcs = append(epcs, r.EPC)
			}
			f, err := AppendUHF18Inventory(nil, 0, epcs, UHF18StatusDone)
			if err != nil {
				b.Fatal(err)
			}
			frames = append(frames, f)
		}
	}
	return bytes.Join(frames, nil), frames
}

func BenchmarkDecodeAndDedup(b *testing.B) {
	for _, proto := range []Protocol{Mercury, UHF18} {
		b.Run(string(proto), func(b *testing.B) {
			stream, _ := benchStream(b, proto)
			d := NewDedup(100*time.Millisecond, func(TagRead) {})
			now := t0
			add := func(epc []byte, antenna, rssi int) {
				now = now.Add(5 * time.Microsecond)
				d.Add(TagRead{EPC: epc, Antenna: antenna, RSSI: rssi, At: now, Count: 1})
			}
			uhf := func(epc []byte) { add(epc, 1, 0) }
			var md MercuryDecoder
			md.FromReader = true
			var ud UHF18Decoder
			b.SetBytes(int64(len(stream)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				for off := 0; off < len(stream); off += 4096 {
					chunk := stream[off:min(off+4096, len(stream))]
					if proto == Mercury {
						_, _ = md.Write(chunk)
						for f, ok := md.Next(); ok; f, ok = md.Next() {
							m, err := ParseMercury(f, true)
							if err != nil {
								b.Fatal(err)
							}
							t, err := ParseMercuryTag(m.Data)
							if err != nil {
								b.Fatal(err)
							}
							add(t.EPC, t.RxAntenna, t.RSSI)
						}
						continue
					}
					_, _ = ud.Write(chunk)
					for f, ok := ud.Next(); ok; f, ok = ud.Next() {
						r, err := ParseUHF18Response(f)
						if err != nil {
							b.Fatal(err)
						}
						if _, err := ForEachUHF18Tag(r.Data, uhf); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			b.StopTimer()
			reportReads(b, b.N*benchReads)
		})
	}
}

func BenchmarkRawFrameCopy(b *testing.B) {
	for _, proto := range []Protocol{Mercury, UHF18} {
		b.Run(string(proto), func(b *testing.B) {
			stream, frames := benchStream(b, proto)
			dst := make([]byte, 0, 512)
			b.SetBytes(int64(len(stream)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				for _, f := range frames {
					dst = append(dst[:0], f...)
				}
			}
			b.StopTimer()
			_ = dst
			reportReads(b, b.N*benchReads)
		})
	}
}

func reportReads(b *testing.B, reads int) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(reads)/s, "reads/s")
	}
}
