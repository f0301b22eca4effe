package ssi

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// goldens pairs packets with their bytes, each checksum worked by hand:
// checksum = 0x10000 - (sum of the bytes before it).
var goldens = []struct {
	name string
	pkt  Packet
	raw  []byte
}{
	// 04+D0+04+00 = 0xD8; 0x10000-0xD8 = 0xFF28 (the ACK every SSI guide shows).
	{"host ack", Ack(), []byte{0x04, 0xD0, 0x04, 0x00, 0xFF, 0x28}},
	// 04+D0+00+00 = 0xD4; 0x10000-0xD4 = 0xFF2C.
	{"decoder ack", Packet{Opcode: OpAck, Source: SourceDecoder}, []byte{0x04, 0xD0, 0x00, 0x00, 0xFF, 0x2C}},
	// 05+D1+04+00+01 = 0xDB; 0x10000-0xDB = 0xFF25.
	{"nak resend", Nak(NakResend), []byte{0x05, 0xD1, 0x04, 0x00, 0x01, 0xFF, 0x25}},
	// 05+E6+04+00+00 = 0xEF; 0x10000-0xEF = 0xFF11.
	{"beep 0", Beep(0x00), []byte{0x05, 0xE6, 0x04, 0x00, 0x00, 0xFF, 0x11}},
	// 04+E9+04+00 = 0xF1; 0x10000-0xF1 = 0xFF0F.
	{"scan enable", Packet{Opcode: OpScanEnable, Source: SourceHost}, []byte{0x04, 0xE9, 0x04, 0x00, 0xFF, 0x0F}},
	// 04+E4+04+00 = 0xEC; 0x10000-0xEC = 0xFF14.
	{"start decode", Packet{Opcode: OpStartDecode, Source: SourceHost}, []byte{0x04, 0xE4, 0x04, 0x00, 0xFF, 0x14}},
	// 08+F3+00+00+0B+31+32+33 = 8+243+11+49+50+51 = 412 = 0x19C;
	// 0x10000-0x19C = 0xFE64.
	{"decode data ean-13 123", DecodeData(0x0B, []byte("123")),
		[]byte{0x08, 0xF3, 0x00, 0x00, 0x0B, '1', '2', '3', 0xFE, 0x64}},
	// 06+F3+00+02+03+41 = 6+243+2+3+65 = 319 = 0x13F; 0x10000-0x13F = 0xFEC1.
	{"decode data continued", Packet{Opcode: OpDecodeData, Status: StatusContinuation, Data: []byte{0x03, 'A'}},
		[]byte{0x06, 0xF3, 0x00, 0x02, 0x03, 'A', 0xFE, 0xC1}},
}

func TestGoldens(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			got, err := Encode(g.pkt)
			require.NoError(t, err)
			assert.Equal(t, g.raw, got, "encode")

			p, n, err := Decode(append(g.raw, 0x99)) // trailing byte ignored
			require.NoError(t, err)
			assert.Equal(t, len(g.raw), n)
			assert.Equal(t, g.pkt.Opcode, p.Opcode)
			assert.Equal(t, g.pkt.Source, p.Source)
			assert.Equal(t, g.pkt.Status, p.Status)
			assert.Equal(t, string(g.pkt.Data), string(p.Data))

			var sum uint16
			for _, b := range g.raw[:n-2] {
				sum += uint16(b)
			}
			assert.Zero(t, sum+uint16(g.raw[n-2])<<8+uint16(g.raw[n-1]), "sum plus checksum is 0")
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"length below header", []byte{0x03, 0xD0, 0x04, 0x00, 0xFF, 0x28}, ErrLength},
		{"short", []byte{0x04, 0xD0, 0x04, 0x00, 0xFF}, ErrShort},
		{"bad checksum", []byte{0x04, 0xD0, 0x04, 0x00, 0xFF, 0x29}, ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Decode(tt.in)
			require.ErrorIs(t, err, tt.want)
		})
	}
	_, err := Encode(Packet{Data: make([]byte, MaxData+1)})
	require.ErrorIs(t, err, ErrTooLong)
}

func TestDecoderResync(t *testing.T) {
	good := MustEncode(DecodeData(0x0B, []byte("4006381333931")))
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 0xFF
	tests := []struct {
		name    string
		stream  []byte
		packets int
		badSums [2]int // min, max: a truncated packet counts as a bad
		// checksum when fed slowly, before the next packet is whole
		garbageMin  uint64
		wantPending int
	}{
		{"clean", cat(good, good), 2, [2]int{0, 0}, 0, 0},
		{"leading garbage", cat([]byte{0x00, 0xFF, 0x13, 0x37, 0x02}, good), 1, [2]int{0, 0}, 5, 0},
		{"garbage that looks like a long header", cat([]byte{0xF0, 0xF3, 0x00, 0x00}, good), 1, [2]int{0, 0}, 4, 0},
		{"bad checksum between goods", cat(good, bad, good), 2, [2]int{1, 1}, 0, 0},
		{"truncated then good", cat(good[:5], good), 1, [2]int{0, 1}, 0, 0},
		{"trailing partial waits", cat(good, good[:6]), 1, [2]int{0, 0}, 0, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunk := range []int{1, 3, len(tt.stream)} {
				var d Decoder
				var packets, bads int
				for p := tt.stream; len(p) > 0; p = p[min(chunk, len(p)):] {
					d.Feed(p[:min(chunk, len(p))], func(pkt Packet, err error) {
						if err != nil {
							require.ErrorIs(t, err, ErrChecksum)
							bads++
							return
						}
						assert.Equal(t, "4006381333931", string(pkt.Data[1:]))
						packets++
					})
				}
				assert.Equal(t, tt.packets, packets, "chunk %d", chunk)
				assert.GreaterOrEqual(t, bads, tt.badSums[0], "chunk %d", chunk)
				assert.LessOrEqual(t, bads, tt.badSums[1], "chunk %d", chunk)
				assert.GreaterOrEqual(t, d.Stats().Garbage, tt.garbageMin, "chunk %d", chunk)
				assert.Equal(t, tt.wantPending, d.Pending(), "chunk %d", chunk)
			}
		})
	}
}

func TestHost(t *testing.T) {
	ack := MustEncode(Ack())
	nak := MustEncode(Nak(NakResend))
	scan := MustEncode(DecodeData(0x0B, []byte("4006381333931")))
	bad := bytes.Clone(scan)
	bad[len(bad)-1]++
	resent := MustEncode(Packet{Opcode: OpDecodeData, Status: StatusRetransmit, Data: append([]byte{0x0B}, "4006381333931"...)})
	part1 := MustEncode(Packet{Opcode: OpDecodeData, Status: StatusContinuation, Data: []byte{0x1C, 'A', 'B'}})
	part2 := MustEncode(Packet{Opcode: OpDecodeData, Data: []byte{0x1C, 'C'}})
	event := MustEncode(Packet{Opcode: OpEvent, Data: []byte{0x01}})
	decoderAck := MustEncode(Packet{Opcode: OpAck})

	tests := []struct {
		name      string
		in        []byte
		wantScans []string
		wantReply []byte
		dups      uint64
	}{
		{"scan acked", scan, []string{"EAN-13:4006381333931"}, ack, 0},
		{"bad checksum naked, resend delivered", cat(bad, resent), []string{"EAN-13:4006381333931"}, cat(nak, ack), 0},
		{"lost ack: resend acked not emitted", cat(scan, resent), []string{"EAN-13:4006381333931"}, cat(ack, ack), 1},
		{"same barcode twice without retransmit bit", cat(scan, scan), []string{"EAN-13:4006381333931", "EAN-13:4006381333931"}, cat(ack, ack), 0},
		{"multi-packet", cat(part1, part2), []string{"QR Code:ABC"}, cat(ack, ack), 0},
		{"event acked", event, nil, ack, 0},
		{"decoder ack counted, not answered", decoderAck, nil, nil, 0},
		{"our own echo ignored", ack, nil, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHost()
			var got []string
			reply := h.Feed(tt.in, nil, func(s Scan) { got = append(got, s.Symbology()+":"+string(s.Data)) })
			assert.Equal(t, tt.wantScans, got)
			assert.Equal(t, tt.wantReply, reply)
			assert.Equal(t, tt.dups, h.Stats().Duplicates)
		})
	}
}

func TestHostOversize(t *testing.T) {
	h := NewHost()
	chunk := MustEncode(Packet{Opcode: OpDecodeData, Status: StatusContinuation, Data: append([]byte{0x1B}, make([]byte, MaxData-1)...)})
	for range MaxMessage/(MaxData-1) + 2 {
		h.Feed(chunk, nil, func(Scan) { t.Fatal("no scan expected") })
	}
	h.Feed(MustEncode(Packet{Opcode: OpDecodeData, Data: []byte{0x1B, 'x'}}), nil, func(Scan) { t.Fatal("oversize emitted") })
	assert.Equal(t, uint64(1), h.Stats().Oversize)
	assert.LessOrEqual(t, cap(h.partial), 2*MaxMessage)
}

func TestSymbology(t *testing.T) {
	assert.Equal(t, "EAN-13", Symbology(0x0B))
	assert.Equal(t, "unknown(0xFE)", Symbology(0xFE))
	c, ok := CodeType("GS1-128")
	assert.True(t, ok)
	assert.Equal(t, byte(0x0F), c)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
