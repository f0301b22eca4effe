package rfid

import (
	"encoding/binary"
	"fmt"
)

// MercuryTag is one tag record of a continuous read: the data of a reader
// frame with opcode 0x22 and status 0 that streams in after the
// multi-protocol start command. Byte slices alias the frame.
//
// Record layout implemented (offsets into the frame's Data, i.e. after the
// status word), as captured from a ThingMagic M6E Nano and documented in
// SparkFun's Simultaneous RFID Tag Reader library (parseResponse), which
// cites ThingMagic's AutoConfigTool user guide for the breakdown:
//
//	0–6     option flags (0x10), metadata flags (0x001B) and per-read
//	        fields this decoder does not interpret (7 bytes)
//	7       RSSI, dBm, signed
//	8       antenna: transmit port in the high nibble, receive port in the low
//	9–11    frequency, kHz, big-endian
//	12–15   timestamp, ms since the last keep-alive, big-endian
//	16–17   phase, degrees
//	18      tag protocol (0x05 = Gen2)
//	19–20   embedded tag data length M, bits
//	21…     embedded data, ⌈M/8⌉ bytes
//	+0      one reserved byte (0x0F in captures)
//	+1–2    EPC length in bits, counting the PC word and the tag CRC
//	+3–4    PC word
//	+5…     EPC (EPC length/8 − 4 bytes)
//	last 2  tag CRC (Gen2 CRC-16 over PC and EPC)
type MercuryTag struct {
	RSSI         int
	TxAntenna    int
	RxAntenna    int
	FrequencyKHz int
	TimestampMs  uint32
	Phase        uint16
	Protocol     byte
	Embedded     []byte
	PC           uint16
	EPC          []byte
	TagCRC       uint16
}

// mercuryRecordPrefix is the 7-byte head of a tag record as captured.
var mercuryRecordPrefix = [7]byte{0x10, 0x00, 0x1B, 0x01, 0xFF, 0x01, 0x01}

// ParseMercuryTag decodes the data of a continuous-read tag record. It
// checks the record's lengths and the tag CRC.
func ParseMercuryTag(data []byte) (MercuryTag, error) {
	if len(data) < mercuryTagRecordMinData {
		return MercuryTag{}, fmt.Errorf("mercury: tag record of %d bytes, want at least %d: %w", len(data), mercuryTagRecordMinData, ErrFrame)
	}
	t := MercuryTag{
		RSSI:         int(int8(data[7])),
		TxAntenna:    int(data[8] >> 4),
		RxAntenna:    int(data[8] & 0x0F),
		FrequencyKHz: int(data[9])<<16 | int(data[10])<<8 | int(data[11]),
		TimestampMs:  binary.BigEndian.Uint32(data[12:16]),
		Phase:        binary.BigEndian.Uint16(data[16:18]),
		Protocol:     data[18],
	}
	mb := (int(binary.BigEndian.Uint16(data[19:21])) + 7) / 8
	p := 21 + mb
	if p+3 > len(data) {
		return MercuryTag{}, fmt.Errorf("mercury: tag record: %d embedded data bytes overrun the %d-byte record: %w", mb, len(data), ErrFrame)
	}
	t.Embedded = data[21:p]
	bits := int(binary.BigEndian.Uint16(data[p+1 : p+3]))
	p += 3
	if bits%8 != 0 || bits < 32 || p+bits/8 != len(data) {
		return MercuryTag{}, fmt.Errorf("mercury: tag record: EPC length %d bits at byte %d does not fit the %d-byte record: %w", bits, p-2, len(data), ErrFrame)
	}
	t.PC = binary.BigEndian.Uint16(data[p : p+2])
	t.EPC = data[p+2 : len(data)-2]
	t.TagCRC = binary.BigEndian.Uint16(data[len(data)-2:])
	if want := gen2CRC(data[p : len(data)-2]); want != t.TagCRC {
		return MercuryTag{}, fmt.Errorf("mercury: tag record: tag CRC %04X, computed %04X: %w", t.TagCRC, want, ErrFrame)
	}
	return t, nil
}

// AppendMercuryTag appends the data of a tag record (the layout of
// MercuryTag) for t to dst. PC is derived from the EPC length when zero;
// the tag CRC is computed.
func AppendMercuryTag(dst []byte, t MercuryTag) []byte {
	pc := t.PC
	if pc == 0 {
		pc = uint16((len(t.EPC)+1)/2) << 11 // Gen2 PC: EPC length in words, bits 15–11
	}
	dst = append(dst, mercuryRecordPrefix[:]...)
	dst = append(dst, byte(int8(t.RSSI)), byte(t.TxAntenna<<4|t.RxAntenna&0x0F),
		byte(t.FrequencyKHz>>16), byte(t.FrequencyKHz>>8), byte(t.FrequencyKHz))
	dst = binary.BigEndian.AppendUint32(dst, t.TimestampMs)
	dst = binary.BigEndian.AppendUint16(dst, t.Phase)
	proto := t.Protocol
	if proto == 0 {
		proto = MercuryProtocolGen2
	}
	dst = append(dst, proto)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(t.Embedded)*8))
	dst = append(dst, t.Embedded...)
	dst = append(dst, 0x0F)
	dst = binary.BigEndian.AppendUint16(dst, uint16((len(t.EPC)+4)*8))
	start := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, pc)
	dst = append(dst, t.EPC...)
	return binary.BigEndian.AppendUint16(dst, gen2CRC(dst[start:]))
}

// gen2CRC is the EPC Gen2 CRC-16 (ISO/IEC 18000-63): polynomial 0x1021
// MSB first, preset 0xFFFF, ones' complement of the result.
func gen2CRC(p []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, b := range p {
		crc = crc<<8 ^ mercuryTable[byte(crc>>8)^b]
	}
	return ^crc
}
