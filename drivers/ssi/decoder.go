package ssi

// Decoder splits a byte stream into SSI packets. It resynchronises after
// garbage and corrupted packets: bytes that cannot start a packet are
// skipped and counted, and a packet whose checksum fails is reported and
// then rescanned from its second byte. It buffers at most one packet
// (MaxPacket bytes) plus the bytes of the current Feed.
type Decoder struct {
	buf     []byte
	shadow  int // bytes of a bad-checksum packet still to skip without counting as garbage
	garbage uint64
	badSum  uint64
	packets uint64
}

// DecoderStats counts what a Decoder has seen.
type DecoderStats struct {
	Packets     uint64 // good packets emitted
	Garbage     uint64 // bytes skipped while looking for a packet
	BadChecksum uint64 // packets dropped for a checksum mismatch
}

// Stats returns the counters so far.
func (d *Decoder) Stats() DecoderStats {
	return DecoderStats{Packets: d.packets, Garbage: d.garbage, BadChecksum: d.badSum}
}

// Pending reports how many bytes wait for the rest of a packet.
func (d *Decoder) Pending() int { return len(d.buf) }

// Feed consumes p and calls emit for each packet, in order: err is nil for
// a good packet, or wraps ErrChecksum for a packet that looked whole but
// failed its checksum (p then holds its header only). Packet data aliases
// an internal buffer that is reused after emit returns: copy what you keep.
func (d *Decoder) Feed(p []byte, emit func(Packet, error)) {
	d.buf = append(d.buf, p...)
	b := d.buf
	i := 0
	for i < len(b) {
		if !plausible(b[i:]) {
			i++
			d.skipped(1)
			continue
		}
		need := int(b[i]) + 2
		if len(b)-i < need {
			// Incomplete. If a whole packet starts later, the byte at i was
			// garbage that only looked like a header.
			if j := findPacket(b, i+1, len(b)); j >= 0 {
				d.skipped(j - i)
				i = j
				continue
			}
			break
		}
		pkt, n, err := Decode(b[i:])
		if err != nil {
			if j := findPacket(b, i+1, i+need); j >= 0 {
				d.skipped(j - i)
				i = j
				continue
			}
			d.badSum++
			d.shadow = need - 1
			emit(Packet{Opcode: b[i+1], Source: b[i+2], Status: b[i+3]}, err)
			i++
			continue
		}
		d.packets++
		d.shadow = 0
		emit(pkt, nil)
		i += n
	}
	d.buf = d.buf[:copy(d.buf, b[i:])]
	if cap(d.buf) > 4*MaxPacket && len(d.buf) <= MaxPacket {
		d.buf = append(make([]byte, 0, MaxPacket), d.buf...)
	}
}

// skipped counts n bytes skipped as garbage, except those of a packet
// already counted as a bad checksum.
func (d *Decoder) skipped(n int) {
	quiet := min(n, d.shadow)
	d.shadow -= quiet
	d.garbage += uint64(n - quiet)
}

// plausible reports whether b may start a packet, judging by the bytes
// present: a Length of at least 4, a known opcode, a source of decoder or
// host, and no undefined status bits.
func plausible(b []byte) bool {
	if b[0] < headerLen {
		return false
	}
	if len(b) > 1 && !knownOpcode(b[1]) {
		return false
	}
	if len(b) > 2 && b[2] != SourceDecoder && b[2] != SourceHost {
		return false
	}
	if len(b) > 3 && b[3]&0xF0 != 0 {
		return false
	}
	return true
}

// findPacket returns the first position in [from, to) where a whole,
// checksum-valid packet starts within b, or -1.
func findPacket(b []byte, from, to int) int {
	for j := from; j < to; j++ {
		if !plausible(b[j:]) || len(b)-j < int(b[j])+2 {
			continue
		}
		if _, _, err := Decode(b[j:]); err == nil {
			return j
		}
	}
	return -1
}
