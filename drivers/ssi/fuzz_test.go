package ssi

import "testing"

// FuzzDecoder feeds arbitrary bytes, in arbitrary chunks, through Decoder
// and Host: they must never panic, keep their buffer bounded, and only emit
// packets that re-encode to valid frames.
func FuzzDecoder(f *testing.F) {
	f.Add(MustEncode(DecodeData(0x0B, []byte("4006381333931"))), uint8(3))
	f.Add(append([]byte{0xF0, 0xF3, 0x00}, MustEncode(Ack())...), uint8(1))
	f.Add([]byte{0x04, 0xD0, 0x04, 0x00, 0xFF, 0x29, 0x05, 0xE6}, uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		n := int(chunk%32) + 1
		var d Decoder
		h := NewHost()
		for p := data; len(p) > 0; p = p[min(n, len(p)):] {
			part := p[:min(n, len(p))]
			d.Feed(part, func(pkt Packet, err error) {
				if err != nil {
					return
				}
				raw, encErr := Encode(pkt)
				if encErr != nil {
					t.Fatalf("emitted packet does not re-encode: %v", encErr)
				}
				if _, _, decErr := Decode(raw); decErr != nil {
					t.Fatalf("re-encoded packet does not decode: %v", decErr)
				}
			})
			if d.Pending() > MaxPacket+n {
				t.Fatalf("decoder holds %d bytes", d.Pending())
			}
			h.Feed(part, nil, func(s Scan) {
				if len(s.Data) > MaxMessage {
					t.Fatalf("scan of %d bytes", len(s.Data))
				}
			})
		}
	})
}
