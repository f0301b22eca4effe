package rfid

// streamBuf is the byte buffer behind the frame decoders: bytes are
// appended by Write and consumed from the front by the decoder.
type streamBuf struct {
	buf     []byte
	off     int
	garbage int64
	// scanEnd remembers the last look-ahead scan: every candidate frame
	// starting after scanOff (≤ off) and ending at or before scanEnd was
	// complete and invalid, and needs no second CRC.
	scanOff, scanEnd int
}

// maxPending bounds what a decoder keeps: past it the oldest bytes are
// dropped as garbage (a stream that never frames must not grow memory).
const maxPending = 64 << 10

// Write appends stream bytes. It never fails. Frames returned earlier by
// Next are invalid afterwards.
func (s *streamBuf) Write(p []byte) (int, error) {
	if s.off > 0 {
		n := copy(s.buf, s.buf[s.off:])
		s.buf = s.buf[:n]
		s.scanOff -= s.off
		s.scanEnd -= s.off
		s.off = 0
	}
	s.buf = append(s.buf, p...)
	if over := len(s.buf) - maxPending; over > 0 {
		s.skipGarbage(over)
	}
	return len(p), nil
}

// Garbage returns how many bytes were skipped as not part of a valid
// frame so far.
func (s *streamBuf) Garbage() int64 { return s.garbage }

// Buffered returns how many bytes wait for the rest of a frame.
func (s *streamBuf) Buffered() int { return len(s.buf) - s.off }

// Reset drops buffered bytes.
func (s *streamBuf) Reset() { s.buf, s.off, s.scanOff, s.scanEnd = s.buf[:0], 0, 0, 0 }

func (s *streamBuf) pending() []byte { return s.buf[s.off:] }
func (s *streamBuf) consume(n int)   { s.off += n }
func (s *streamBuf) skipGarbage(n int) {
	s.off += n
	s.garbage += int64(n)
}

// framing is what differs between the protocols' stream decoding.
type framing interface {
	// at checks for a frame at the start of buf.
	at(buf []byte) ([]byte, frameState)
	// end returns where a frame starting at buf[0] would end, or -1 when
	// buf[0] cannot start one.
	end(buf []byte) int
	// skip returns how many bytes to drop after a bad frame at buf[0].
	skip(buf []byte) int
}

type frameState int

const (
	frameOK frameState = iota
	frameBad
	frameShort
)

// next returns the next valid frame. A bad candidate at the front is
// skipped; an incomplete one is kept, unless a complete valid frame
// starts later in the buffer, in which case the bytes before it go.
func (s *streamBuf) next(fr framing) ([]byte, bool) {
	for {
		buf := s.pending()
		if len(buf) == 0 {
			return nil, false
		}
		if e := fr.end(buf); e >= 0 && s.off > s.scanOff && s.off+e <= s.scanEnd {
			s.skipGarbage(fr.skip(buf)) // checked by an earlier look-ahead: bad
			continue
		}
		switch f, state := fr.at(buf); state {
		case frameOK:
			s.consume(len(f))
			return f, true
		case frameBad:
			s.skipGarbage(fr.skip(buf))
			continue
		}
		for i := 1; i < len(buf); i++ {
			e := fr.end(buf[i:])
			if e < 0 || s.off+i+e <= s.scanEnd || i+e > len(buf) {
				continue
			}
			if f, state := fr.at(buf[i:]); state == frameOK {
				s.skipGarbage(i)
				s.consume(len(f))
				return f, true
			}
		}
		s.scanOff, s.scanEnd = s.off, s.off+len(buf)
		return nil, false
	}
}

// crcUHF18 is the CRC-16 of the UHFReader18 / CF-RU5102 family: reflected
// polynomial 0x8408 (0x1021 bit-reversed), preset 0xFFFF, no final XOR,
// sent least significant byte first. Over a whole valid frame, CRC
// included, it is 0.
func crcUHF18(p []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, b := range p {
		crc = crc>>8 ^ uhf18Table[byte(crc)^b]
	}
	return crc
}

// crcMercury is the CRC-16 of the ThingMagic Mercury serial protocol:
// preset 0xFFFF, polynomial 0x1021 with the message bits shifted into the
// low end of the register (not CRC-16/CCITT-FALSE, which XORs them in at
// the top), no final XOR, sent most significant byte first. It covers
// everything after the 0xFF header: CRC(00 03) = 0x1D0C, so "get version"
// is FF 00 03 1D 0C.
func crcMercury(p []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, b := range p {
		crc = (crc<<8 | uint16(b)) ^ mercuryTable[crc>>8]
	}
	return crc
}

var uhf18Table, mercuryTable = makeTables()

// makeTables builds byte-at-a-time tables from the bitwise definitions.
func makeTables() (reflected, shiftIn [256]uint16) {
	for i := range 256 {
		r := uint16(i)
		for range 8 {
			if r&1 == 1 {
				r = r>>1 ^ 0x8408
			} else {
				r >>= 1
			}
		}
		reflected[i] = r
		// Shifting eight zero bits through a register whose high byte is
		// i gives the polynomial contribution of that byte.
		s := uint16(i) << 8
		for range 8 {
			top := s & 0x8000
			s <<= 1
			if top != 0 {
				s ^= 0x1021
			}
		}
		shiftIn[i] = s
	}
	return reflected, shiftIn
}
