// Package ssi encodes and decodes Zebra (Symbol) Simple Serial Interface
// packets, the binary framing of Zebra scanners in SSI mode, and holds the
// host side of its handshake: every DECODE_DATA must be ACKed, a packet with
// a bad checksum is NAKed so that the scanner resends it. It does no I/O.
//
// A packet is
//
//	Length Opcode Source Status Data… ChecksumHi ChecksumLo
//
// where Length counts every byte but the checksum (so it is 4+len(Data))
// and the checksum is the two's complement of the 16-bit sum of those
// bytes, sent MSB first: adding it to the sum gives 0 mod 2^16.
package ssi

import (
	"errors"
	"fmt"
)

// Opcodes used by shelfsync. Host-to-decoder unless noted.
const (
	OpStartDecode  byte = 0xE4
	OpStopDecode   byte = 0xE5
	OpBeep         byte = 0xE6
	OpLEDOn        byte = 0xE7
	OpLEDOff       byte = 0xE8
	OpScanEnable   byte = 0xE9
	OpScanDisable  byte = 0xEA
	OpSleep        byte = 0xEB
	OpDecodeData   byte = 0xF3 // decoder to host: barcode type byte, then data
	OpEvent        byte = 0xF6 // decoder to host: event code
	OpAck          byte = 0xD0 // both ways
	OpNak          byte = 0xD1 // both ways
	OpParamSend    byte = 0xC6
	OpParamRequest byte = 0xC7
	OpRequestRev   byte = 0xA3
	OpReplyRev     byte = 0xA4
)

// Sources: who sent a packet.
const (
	SourceDecoder byte = 0
	SourceHost    byte = 4
)

// Status bits.
const (
	StatusRetransmit   byte = 0x01 // the packet is a resend
	StatusContinuation byte = 0x02 // more packets of the same message follow
	StatusPermanent    byte = 0x08 // PARAM_SEND: change type permanent
)

// NAK reasons, the single data byte of a NAK.
const (
	NakResend     byte = 0x01 // checksum failure: resend the packet
	NakBadContext byte = 0x02 // unexpected or unknown message
	NakDenied     byte = 0x06 // good message, cannot be honoured
)

// Size limits.
const (
	headerLen = 4 // Length, Opcode, Source, Status
	// MaxData is the most data one packet holds (Length is one byte).
	MaxData = 0xFF - headerLen
	// MaxPacket is the longest encoded packet, checksum included.
	MaxPacket = 0xFF + 2
)

// Errors from Decode.
var (
	// ErrShort: fewer bytes than the packet's Length byte announces.
	ErrShort = errors.New("ssi: short packet")
	// ErrLength: a Length byte below the 4-byte header.
	ErrLength = errors.New("ssi: bad length")
	// ErrChecksum: the checksum does not match the packet.
	ErrChecksum = errors.New("ssi: bad checksum")
	// ErrTooLong: data longer than MaxData for Encode.
	ErrTooLong = errors.New("ssi: data too long for one packet")
)

// Packet is one SSI packet.
type Packet struct {
	Opcode byte
	Source byte
	Status byte
	Data   []byte
}

// Retransmit reports whether p is marked as a resend.
func (p Packet) Retransmit() bool { return p.Status&StatusRetransmit != 0 }

// Continued reports whether more packets of p's message follow.
func (p Packet) Continued() bool { return p.Status&StatusContinuation != 0 }

// Checksum returns the SSI checksum of b: the two's complement of the
// 16-bit sum of its bytes.
func Checksum(b []byte) uint16 {
	var sum uint16
	for _, c := range b {
		sum += uint16(c)
	}
	return -sum
}

// Append appends p's encoding to dst.
func Append(dst []byte, p Packet) ([]byte, error) {
	if len(p.Data) > MaxData {
		return dst, fmt.Errorf("%w: %d bytes, max %d", ErrTooLong, len(p.Data), MaxData)
	}
	start := len(dst)
	dst = append(dst, byte(headerLen+len(p.Data)), p.Opcode, p.Source, p.Status)
	dst = append(dst, p.Data...)
	sum := Checksum(dst[start:])
	return append(dst, byte(sum>>8), byte(sum)), nil
}

// Encode returns p's encoding.
func Encode(p Packet) ([]byte, error) {
	return Append(make([]byte, 0, headerLen+len(p.Data)+2), p)
}

// MustEncode is Encode for packets known to fit, such as those built by
// this package's helpers; it panics on ErrTooLong.
func MustEncode(p Packet) []byte {
	b, err := Encode(p)
	if err != nil {
		panic(err)
	}
	return b
}

// Decode decodes the packet at the start of b and returns it with the
// number of bytes it used. Data aliases b.
func Decode(b []byte) (Packet, int, error) {
	if len(b) < 1 {
		return Packet{}, 0, ErrShort
	}
	n := int(b[0])
	if n < headerLen {
		return Packet{}, 0, fmt.Errorf("%w: %d", ErrLength, n)
	}
	if len(b) < n+2 {
		return Packet{}, 0, fmt.Errorf("%w: have %d bytes, need %d", ErrShort, len(b), n+2)
	}
	got := uint16(b[n])<<8 | uint16(b[n+1])
	if want := Checksum(b[:n]); got != want {
		return Packet{}, 0, fmt.Errorf("%w: got %04X, want %04X", ErrChecksum, got, want)
	}
	return Packet{Opcode: b[1], Source: b[2], Status: b[3], Data: b[headerLen:n:n]}, n + 2, nil
}

// Ack returns the ACK a host sends.
func Ack() Packet { return Packet{Opcode: OpAck, Source: SourceHost} }

// Nak returns a host NAK with the given reason.
func Nak(reason byte) Packet {
	return Packet{Opcode: OpNak, Source: SourceHost, Data: []byte{reason}}
}

// Beep returns a host BEEP command for the given beep code.
func Beep(code byte) Packet {
	return Packet{Opcode: OpBeep, Source: SourceHost, Data: []byte{code}}
}

// DecodeData returns a decoder DECODE_DATA packet for a barcode of the
// given type.
func DecodeData(codeType byte, data []byte) Packet {
	return Packet{Opcode: OpDecodeData, Source: SourceDecoder, Data: append([]byte{codeType}, data...)}
}

// knownOpcode reports whether op is one the stream decoder accepts as the
// start of a packet.
func knownOpcode(op byte) bool {
	switch op {
	case OpStartDecode, OpStopDecode, OpBeep, OpLEDOn, OpLEDOff, OpScanEnable, OpScanDisable,
		OpSleep, OpDecodeData, OpEvent, OpAck, OpNak, OpParamSend, OpParamRequest, OpRequestRev, OpReplyRev:
		return true
	}
	return false
}
