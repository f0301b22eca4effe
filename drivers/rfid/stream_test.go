package rfid

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type frameDecoder interface {
	Write([]byte) (int, error)
	Next() ([]byte, bool)
	Garbage() int64
}

// decodeChunks feeds stream to d in chunks of the given sizes (cycled) and
// returns copies of the frames it yields.
func decodeChunks(d frameDecoder, stream []byte, sizes []int) [][]byte {
	var out [][]byte
	for i, k := 0, 0; i < len(stream); k++ {
		n := min(sizes[k%len(sizes)], len(stream)-i)
		_, _ = d.Write(stream[i : i+n])
		i += n
		for f, ok := d.Next(); ok; f, ok = d.Next() {
			out = append(out, bytes.Clone(f))
		}
	}
	return out
}

func uhf18Frames(t testing.TB) [][]byte {
	var frames [][]byte
	for i := range 5 {
		f, err := AppendUHF18Inventory(nil, 0, [][]byte{bytes.Repeat([]byte{byte(i + 1)}, 12)}, UHF18StatusDone)
		require.NoError(t, err)
		frames = append(frames, f)
	}
	return frames
}

func mercuryFrames(t testing.TB) [][]byte {
	var frames [][]byte
	for i := range 5 {
		data := AppendMercuryTag(nil, MercuryTag{RSSI: -50 - i, TxAntenna: 1, RxAntenna: 1, FrequencyKHz: 915250,
			EPC: bytes.Repeat([]byte{byte(i + 1)}, 12)})
		f, err := AppendMercuryResponse(nil, MercuryOpReadMultiple, 0, data)
		require.NoError(t, err)
		frames = append(frames, f)
	}
	return frames
}

func TestDecodersResync(t *testing.T) {
	for _, proto := range []struct {
		name   string
		frames func(testing.TB) [][]byte
		dec    func() frameDecoder
	}{
		{"uhf18", uhf18Frames, func() frameDecoder { return &UHF18Decoder{} }},
		{"mercury", mercuryFrames, func() frameDecoder { return &MercuryDecoder{FromReader: true} }},
	} {
		t.Run(proto.name, func(t *testing.T) {
			frames := proto.frames(t)
			corrupt := bytes.Clone(frames[2])
			corrupt[len(corrupt)/2] ^= 0x40
			garbage := []byte{0xFF, 0x00, 0x13, 0xFF, 0x7E, 0x05, 0xFF}

			var stream []byte
			stream = append(stream, garbage...)
			stream = append(stream, frames[0]...)
			stream = append(stream, frames[1]...)
			stream = append(stream, corrupt...)
			stream = append(stream, garbage...)
			stream = append(stream, frames[3]...)
			stream = append(stream, frames[4]...)
			want := [][]byte{frames[0], frames[1], frames[3], frames[4]}

			for _, sizes := range [][]int{{len(stream)}, {1}, {2, 3, 5, 7}, {17}, {64, 1}} {
				d := proto.dec()
				got := decodeChunks(d, stream, sizes)
				assert.Equal(t, want, got, "chunk sizes %v", sizes)
				assert.Equal(t, int64(len(stream)-len(bytes.Join(want, nil))), d.Garbage(), "chunk sizes %v", sizes)
			}
		})
	}
}

// A garbage byte that reads as a large length must not stall decoding
// when no more bytes follow the next valid frame.
func TestDecoderDoesNotStall(t *testing.T) {
	f := uhf18Frames(t)[0]
	d := &UHF18Decoder{}
	_, _ = d.Write(append([]byte{0xF0}, f...))
	got, ok := d.Next()
	require.True(t, ok)
	assert.Equal(t, f, got)
	assert.Equal(t, int64(1), d.Garbage())

	m := mercuryFrames(t)[0]
	md := &MercuryDecoder{FromReader: true}
	_, _ = md.Write(append([]byte{0xFF, 0xF0, 0x22}, m...))
	got, ok = md.Next()
	require.True(t, ok)
	assert.Equal(t, m, got)
}

func TestDecoderBoundsMemory(t *testing.T) {
	d := &MercuryDecoder{FromReader: true}
	noise := make([]byte, 10_000)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		for i := range noise {
			noise[i] = byte(rng.UintN(256))
		}
		_, _ = d.Write(noise)
		for _, ok := d.Next(); ok; _, ok = d.Next() {
		}
		assert.LessOrEqual(t, d.Buffered(), maxPending)
	}
	d.Reset()
	assert.Zero(t, d.Buffered())
}

// fuzzDecoder checks that whatever the bytes and chunking, a decoder never
// panics, every frame it yields is well formed, and its buffer stays
// bounded.
func fuzzDecoder(t *testing.T, d frameDecoder, stream []byte, chunk uint8, valid func([]byte) error) {
	sizes := []int{int(chunk%32) + 1, int(chunk/32) + 1}
	for _, f := range decodeChunks(d, stream, sizes) {
		if err := valid(f); err != nil {
			t.Fatalf("decoder yielded a bad frame % X: %v", f, err)
		}
	}
}

func FuzzUHF18Decoder(f *testing.F) {
	for _, fr := range uhf18Frames(f) {
		f.Add(fr, uint8(3))
	}
	f.Add(unhex("F0 04 00 01 DB 4B 05 00 01 FB F2 3D"), uint8(0))
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8) {
		fuzzDecoder(t, &UHF18Decoder{}, stream, chunk, func(fr []byte) error {
			r, err := ParseUHF18Response(fr)
			if err == nil && r.Cmd == UHF18CmdInventory && r.Status != UHF18StatusNoTag {
				_, _ = ForEachUHF18Tag(r.Data, func([]byte) {})
			}
			return err
		})
	})
}

func FuzzMercuryDecoder(f *testing.F) {
	for _, fr := range mercuryFrames(f) {
		f.Add(fr, uint8(5))
	}
	f.Add(sparkfunTagRecord, uint8(0))
	f.Add(unhex("FF FF 00 03 1D 0C FF 00 91 00 00 17 58"), uint8(1))
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8) {
		fuzzDecoder(t, &MercuryDecoder{FromReader: true}, stream, chunk, func(fr []byte) error {
			m, err := ParseMercury(fr, true)
			if err == nil && m.Op == MercuryOpReadMultiple && len(m.Data) > 0 {
				_, _ = ParseMercuryTag(m.Data)
			}
			return err
		})
	})
}
