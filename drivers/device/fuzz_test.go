package device

import (
	"testing"
	"time"

	"github.com/shelfsync/shelfsync/drivers/linemode"
)

// FuzzFramers feeds arbitrary bytes through both built-in framers in
// arbitrary chunks: no panic, no frame over MaxLine, replies only from SSI.
func FuzzFramers(f *testing.F) {
	f.Add([]byte("4006381333931\r\n"), uint8(3))
	f.Add([]byte{0x08, 0xF3, 0x00, 0x00, 0x0B, '1', '2', '3', 0xFE, 0x64}, uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		n := int(chunk%16) + 1
		for _, framing := range []string{FramingLine, FramingSSI} {
			fr, err := NewFramer(Config{Framing: framing, IdleFlush: time.Millisecond, Line: linemode.Config{MaxLine: 64}})
			if err != nil {
				t.Fatal(err)
			}
			fr.Reset()
			emit := func(fm Frame) {
				if fm.Err == nil && framing == FramingLine && len(fm.Raw) > 64 {
					t.Fatalf("frame of %d bytes", len(fm.Raw))
				}
			}
			for p := data; len(p) > 0; p = p[min(n, len(p)):] {
				reply := fr.Feed(p[:min(n, len(p))], nil, emit)
				if framing == FramingLine && len(reply) > 0 {
					t.Fatal("line framing replied")
				}
			}
			fr.Idle(time.Second, nil, emit)
		}
	})
}
