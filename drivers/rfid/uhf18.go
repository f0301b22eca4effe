package rfid

import (
	"errors"
	"fmt"
)

// UHFReader18 / CF-RU5102 family serial protocol (UHFReader18 User's
// Manual V2.0, sections 3 and 4): 57600 8N1, host-initiated.
//
//	command:  Len Adr Cmd Data… CRC-LSB CRC-MSB          Len = len(Data)+4
//	response: Len Adr reCmd Status Data… CRC-LSB CRC-MSB  Len = len(Data)+5
//
// The CRC (crcUHF18) covers Len through Data. Frames have no start byte:
// a decoder finds them by their length byte and CRC.
const (
	UHF18CmdInventory  = 0x01 // EPC C1G2 inventory
	UHF18CmdReaderInfo = 0x21 // get reader information

	UHF18Broadcast = 0xFF // address every reader answers

	// Inventory status values.
	UHF18StatusDone       = 0x01 // inventory finished, all tags reported
	UHF18StatusTimeout    = 0x02 // inventory time ran out; tags so far reported
	UHF18StatusMoreFrames = 0x03 // more response frames follow
	UHF18StatusMemoryFull = 0x04 // reader memory full; tags so far reported
	UHF18StatusNoTag      = 0xFB // no tag in the field

	uhf18MaxFrame = 256 // Len is one byte: at most 255 bytes follow it
)

// ErrFrame is wrapped by errors about a frame that is structurally wrong
// (length, CRC, contents).
var ErrFrame = errors.New("malformed frame")

// AppendUHF18Command appends a host command frame to dst.
func AppendUHF18Command(dst []byte, adr, cmd byte, data []byte) ([]byte, error) {
	if len(data) > uhf18MaxFrame-5 {
		return dst, fmt.Errorf("uhf18: command data of %d bytes exceeds %d", len(data), uhf18MaxFrame-5)
	}
	start := len(dst)
	dst = append(dst, byte(len(data)+4), adr, cmd)
	dst = append(dst, data...)
	return appendCRC16LE(dst, start), nil
}

// AppendUHF18Response appends a reader response frame to dst.
func AppendUHF18Response(dst []byte, adr, cmd, status byte, data []byte) ([]byte, error) {
	if len(data) > uhf18MaxFrame-6 {
		return dst, fmt.Errorf("uhf18: response data of %d bytes exceeds %d", len(data), uhf18MaxFrame-6)
	}
	start := len(dst)
	dst = append(dst, byte(len(data)+5), adr, cmd, status)
	dst = append(dst, data...)
	return appendCRC16LE(dst, start), nil
}

func appendCRC16LE(dst []byte, start int) []byte {
	crc := crcUHF18(dst[start:])
	return append(dst, byte(crc), byte(crc>>8))
}

// UHF18Frame is a decoded frame. Data aliases the frame bytes.
type UHF18Frame struct {
	Adr    byte
	Cmd    byte
	Status byte // responses only
	Data   []byte
}

// ParseUHF18Command splits a complete, CRC-checked command frame.
func ParseUHF18Command(frame []byte) (UHF18Frame, error) {
	if err := checkUHF18(frame, 5); err != nil {
		return UHF18Frame{}, err
	}
	return UHF18Frame{Adr: frame[1], Cmd: frame[2], Data: frame[3 : len(frame)-2]}, nil
}

// ParseUHF18Response splits a complete, CRC-checked response frame.
func ParseUHF18Response(frame []byte) (UHF18Frame, error) {
	if err := checkUHF18(frame, 6); err != nil {
		return UHF18Frame{}, err
	}
	return UHF18Frame{Adr: frame[1], Cmd: frame[2], Status: frame[3], Data: frame[4 : len(frame)-2]}, nil
}

func checkUHF18(frame []byte, min int) error {
	switch {
	case len(frame) < min:
		return fmt.Errorf("uhf18: frame of %d bytes, want at least %d: %w", len(frame), min, ErrFrame)
	case int(frame[0])+1 != len(frame):
		return fmt.Errorf("uhf18: length byte %d does not match frame of %d bytes: %w", frame[0], len(frame), ErrFrame)
	case crcUHF18(frame) != 0:
		return fmt.Errorf("uhf18: CRC mismatch in frame % X: %w", frame, ErrFrame)
	}
	return nil
}

// ForEachUHF18Tag walks the data of an inventory response — a tag count,
// then for each tag an EPC length byte and the EPC — calling fn with each
// EPC (aliasing data). It returns the number of tags.
func ForEachUHF18Tag(data []byte, fn func(epc []byte)) (int, error) {
	if len(data) == 0 {
		return 0, fmt.Errorf("uhf18: inventory data is empty, want a tag count: %w", ErrFrame)
	}
	n, p := int(data[0]), 1
	for i := range n {
		if p >= len(data) {
			return i, fmt.Errorf("uhf18: inventory data ends before tag %d of %d: %w", i+1, n, ErrFrame)
		}
		l := int(data[p])
		if l == 0 || p+1+l > len(data) {
			return i, fmt.Errorf("uhf18: tag %d EPC length %d at byte %d overruns the %d data bytes: %w", i+1, l, p, len(data), ErrFrame)
		}
		fn(data[p+1 : p+1+l])
		p += 1 + l
	}
	if p != len(data) {
		return n, fmt.Errorf("uhf18: %d bytes after the %d tags of the inventory data: %w", len(data)-p, n, ErrFrame)
	}
	return n, nil
}

// AppendUHF18Inventory appends inventory response frames for epcs to dst:
// as many tags per frame as fit, status UHF18StatusMoreFrames on all but
// the last, which carries final (UHF18StatusDone normally). No tags gives
// one UHF18StatusNoTag frame with no data.
func AppendUHF18Inventory(dst []byte, adr byte, epcs [][]byte, final byte) ([]byte, error) {
	if len(epcs) == 0 {
		return AppendUHF18Response(dst, adr, UHF18CmdInventory, UHF18StatusNoTag, nil)
	}
	var data [uhf18MaxFrame]byte
	for i := 0; i < len(epcs); {
		n, size := 0, 1
		for i+n < len(epcs) && n < 255 && size+1+len(epcs[i+n]) <= uhf18MaxFrame-6 {
			size += 1 + len(epcs[i+n])
			n++
		}
		if n == 0 {
			return dst, fmt.Errorf("uhf18: EPC of %d bytes does not fit a frame", len(epcs[i]))
		}
		buf := append(data[:0], byte(n))
		for _, e := range epcs[i : i+n] {
			buf = append(buf, byte(len(e)))
			buf = append(buf, e...)
		}
		i += n
		status := byte(UHF18StatusMoreFrames)
		if i == len(epcs) {
			status = final
		}
		var err error
		if dst, err = AppendUHF18Response(dst, adr, UHF18CmdInventory, status, buf); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// UHF18Decoder finds frames in a byte stream. Frames have no start marker,
// so it takes the first byte as a length, checks the CRC of that many
// bytes and on failure drops one byte and tries again: garbage and
// corrupted frames are skipped. When a frame at the front is still
// incomplete but a complete valid frame starts later in the buffer, the
// bytes before that one are dropped, so a bad length byte cannot stall it.
// It does not allocate once its buffer has grown to the largest frame.
type UHF18Decoder struct {
	streamBuf
	// MinLen is the smallest length byte accepted: 5 for responses
	// (default), 4 for commands.
	MinLen int
}

// Next returns the next complete frame, aliasing the decoder's buffer
// until the next call to Write or Next, or ok=false when more bytes are
// needed.
func (d *UHF18Decoder) Next() (frame []byte, ok bool) {
	minLen := d.MinLen
	if minLen == 0 {
		minLen = 5
	}
	return d.next(uhf18Framing(minLen))
}

// uhf18Framing is the framing of UHFReader18 frames with the given
// smallest length byte.
type uhf18Framing int

func (m uhf18Framing) at(buf []byte) ([]byte, frameState) {
	l := int(buf[0])
	if l < int(m) {
		return nil, frameBad
	}
	if len(buf) < l+1 {
		return nil, frameShort
	}
	if crcUHF18(buf[:l+1]) != 0 {
		return nil, frameBad
	}
	return buf[:l+1], frameOK
}

func (m uhf18Framing) end(buf []byte) int {
	if int(buf[0]) < int(m) {
		return -1
	}
	return int(buf[0]) + 1
}

func (uhf18Framing) skip([]byte) int { return 1 }
