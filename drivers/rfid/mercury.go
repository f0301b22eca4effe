package rfid

import (
	"fmt"
)

// ThingMagic Mercury serial protocol (M5e/M6e/Nano modules; "Mercury
// Embedded Module Developer's Guide", serial protocol chapter):
//
//	host:   FF Len Op Data… CRC-hi CRC-lo            Len = len(Data)
//	reader: FF Len Op Status-hi Status-lo Data… CRC  Len = len(Data)
//
// The CRC (crcMercury) covers everything after the FF header.
const (
	MercuryHeader = 0xFF

	MercuryOpVersion        = 0x03 // get version
	MercuryOpReadMultiple   = 0x22 // read tag ID multiple; also each record of a continuous read
	MercuryOpGetTagBuffer   = 0x29 // get tag ID buffer
	MercuryOpMultiProtocol  = 0x2F // multi-protocol tag operation: starts/stops continuous reading
	MercuryOpSetAntenna     = 0x91 // set antenna port
	MercuryOpSetProtocol    = 0x93 // set current tag protocol
	MercuryOpSetRegion      = 0x97 // set region
	MercuryProtocolGen2     = 0x05 // tag protocol id of EPC Gen2
	MercuryStatusOK         = 0x0000
	MercuryStatusNoTags     = 0x0400 // with Len 0 in a continuous read: keep-alive
	MercuryStatusBadOpcode  = 0x0101 // opcode not supported
	mercuryMaxData          = 255
	mercuryReaderOverhead   = 7 // FF Len Op Status(2) … CRC(2)
	mercuryHostOverhead     = 5 // FF Len Op … CRC(2)
	mercuryTagRecordMinData = 21 + 1 + 2
)

// Continuous-read control: the data of the multi-protocol (0x2F) command
// that starts a continuous Gen2 read (timeout 0, option 1 = continuous,
// sub-command 0x22, search flags, protocol Gen2, …) and the one that stops
// it (option 2), as ThingMagic's Universal Reader Assistant sends them
// (captured in SparkFun's Simultaneous RFID library).
var (
	MercuryStartContinuous = []byte{0x00, 0x00, 0x01, 0x22, 0x00, 0x00, 0x05, 0x07, 0x22, 0x10, 0x00, 0x1B, 0x03, 0xE8, 0x01, 0xFF}
	MercuryStopContinuous  = []byte{0x00, 0x00, 0x02}
)

// AppendMercuryCommand appends a host command frame to dst.
func AppendMercuryCommand(dst []byte, op byte, data []byte) ([]byte, error) {
	if len(data) > mercuryMaxData {
		return dst, fmt.Errorf("mercury: command data of %d bytes exceeds %d", len(data), mercuryMaxData)
	}
	start := len(dst)
	dst = append(dst, MercuryHeader, byte(len(data)), op)
	dst = append(dst, data...)
	return appendCRC16BE(dst, start+1), nil
}

// AppendMercuryResponse appends a reader response frame to dst.
func AppendMercuryResponse(dst []byte, op byte, status uint16, data []byte) ([]byte, error) {
	if len(data) > mercuryMaxData {
		return dst, fmt.Errorf("mercury: response data of %d bytes exceeds %d", len(data), mercuryMaxData)
	}
	start := len(dst)
	dst = append(dst, MercuryHeader, byte(len(data)), op, byte(status>>8), byte(status))
	dst = append(dst, data...)
	return appendCRC16BE(dst, start+1), nil
}

func appendCRC16BE(dst []byte, from int) []byte {
	crc := crcMercury(dst[from:])
	return append(dst, byte(crc>>8), byte(crc))
}

// MercuryFrame is a decoded frame. Data aliases the frame bytes.
type MercuryFrame struct {
	Op     byte
	Status uint16 // reader frames only
	Data   []byte
}

// ParseMercury splits a complete frame; fromReader says whether it has a
// status word.
func ParseMercury(frame []byte, fromReader bool) (MercuryFrame, error) {
	over := mercuryHostOverhead
	if fromReader {
		over = mercuryReaderOverhead
	}
	switch {
	case len(frame) < over || frame[0] != MercuryHeader:
		return MercuryFrame{}, fmt.Errorf("mercury: frame % X is not FF Len Op …: %w", frame, ErrFrame)
	case int(frame[1])+over != len(frame):
		return MercuryFrame{}, fmt.Errorf("mercury: length byte %d does not match frame of %d bytes: %w", frame[1], len(frame), ErrFrame)
	}
	n := len(frame)
	if crc := uint16(frame[n-2])<<8 | uint16(frame[n-1]); crc != crcMercury(frame[1:n-2]) {
		return MercuryFrame{}, fmt.Errorf("mercury: CRC %04X does not match frame % X: %w", crc, frame, ErrFrame)
	}
	if !fromReader {
		return MercuryFrame{Op: frame[2], Data: frame[3 : n-2]}, nil
	}
	return MercuryFrame{Op: frame[2], Status: uint16(frame[3])<<8 | uint16(frame[4]), Data: frame[5 : n-2]}, nil
}

// MercuryDecoder finds frames in a byte stream: it syncs on the FF header,
// checks the length and CRC, and on failure resumes at the next FF, so
// garbage and corrupted frames are skipped. Like UHF18Decoder it also
// skips an incomplete frame at the front when a complete valid one follows
// it in the buffer. It does not allocate once its buffer has grown.
type MercuryDecoder struct {
	streamBuf
	// FromReader selects reader frames (with a status word); false decodes
	// host commands, as a reader (or simulator) does.
	FromReader bool
}

// Next returns the next complete frame, aliasing the decoder's buffer
// until the next call to Write or Next, or ok=false when more bytes are
// needed.
func (d *MercuryDecoder) Next() (frame []byte, ok bool) {
	over := mercuryHostOverhead
	if d.FromReader {
		over = mercuryReaderOverhead
	}
	return d.next(mercuryFraming(over))
}

// mercuryFraming is the framing of Mercury frames with the given overhead
// (header, length, opcode, status, CRC bytes).
type mercuryFraming int

func (over mercuryFraming) at(buf []byte) ([]byte, frameState) {
	if buf[0] != MercuryHeader {
		return nil, frameBad
	}
	if len(buf) < 2 {
		return nil, frameShort
	}
	n := int(buf[1]) + int(over)
	if len(buf) < n {
		return nil, frameShort
	}
	if crc := uint16(buf[n-2])<<8 | uint16(buf[n-1]); crc != crcMercury(buf[1:n-2]) {
		return nil, frameBad
	}
	return buf[:n], frameOK
}

func (over mercuryFraming) end(buf []byte) int {
	switch {
	case buf[0] != MercuryHeader:
		return -1
	case len(buf) < 2:
		return 1 << 30 // length unknown yet: incomplete
	}
	return int(buf[1]) + int(over)
}

// skip drops up to the next FF header.
func (mercuryFraming) skip(buf []byte) int {
	for i := 1; i < len(buf); i++ {
		if buf[i] == MercuryHeader {
			return i
		}
	}
	return len(buf)
}
