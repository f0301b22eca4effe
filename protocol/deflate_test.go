package protocol

import (
	"bytes"
	"compress/flate"
	"encoding/hex"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// deflateRaw compresses b as a raw DEFLATE stream at level.
func deflateRaw(t testing.TB, b []byte, level int) []byte {
	var z bytes.Buffer
	w, err := flate.NewWriter(&z, level)
	require.NoError(t, err)
	_, err = w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return z.Bytes()
}

// envelope wraps data, as is, in an ops-deflate message of wh1/dock1.
func envelope(t testing.TB, data []byte) []byte {
	b, err := std.enc.Marshal(&opsDeflate{Header: Header{V: Version, T: TypeOpsDeflate, WH: "wh1", GW: "dock1"}, Data: data})
	require.NoError(t, err)
	return b
}

func plainOps(t testing.TB) []byte { return mustHex(specHex(t)["ops"]) }

func TestOpsDeflateRejectsHostileInput(t *testing.T) {
	ops := plainOps(t)
	good := deflateRaw(t, ops, flate.BestCompression)
	hello, err := Encode(&Hello{Header: Header{WH: "wh1", GW: "dock1"}, LastSeq: 1})
	require.NoError(t, err)
	nested, err := Encode(&OpBatch{Header: Header{WH: "wh1", GW: "dock1"}, First: 1, Last: 1, Ops: []Op{{Seq: 1}}, Deflate: true})
	require.NoError(t, err)
	other, err := Encode(&OpBatch{Header: Header{WH: "wh1", GW: "other"}, First: 1, Last: 1, Ops: []Op{{Seq: 1}}})
	require.NoError(t, err)
	v2 := append([]byte{}, ops...)
	v2[2] = 0x02 // {0: 2, …}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"no data key", mustHex("a40001010702637768310365646f636b31"), ErrMalformed},
		{"empty data", envelope(t, nil), ErrMalformed},
		{"data not bytes", mustHex("a50001010702637768310365646f636b310401"), ErrMalformed},
		{"not deflate", envelope(t, []byte{0xff, 0xff, 0xff, 0xff}), ErrMalformed},
		{"truncated stream", envelope(t, good[:len(good)/2]), ErrMalformed},
		{"bytes after the final block", envelope(t, append(append([]byte{}, good...), 0x00)), ErrMalformed},
		{"bomb: 2 MiB of zeros", envelope(t, deflateRaw(t, make([]byte, 2<<20), flate.BestCompression)), ErrInflatedTooLarge},
		{"inflates to garbage", envelope(t, deflateRaw(t, []byte("not cbor at all"), 6)), ErrMalformed},
		{"inflates to a hello", envelope(t, deflateRaw(t, hello, 6)), ErrMalformed},
		{"inflates to an ops-deflate", envelope(t, deflateRaw(t, nested, 6)), ErrMalformed},
		{"inflates to another gateway's batch", envelope(t, deflateRaw(t, other, 6)), ErrMalformed},
		{"inflates to version 2", envelope(t, deflateRaw(t, v2, 6)), ErrVersion},
		{"inflates with trailing bytes", envelope(t, deflateRaw(t, append(append([]byte{}, ops...), 0x00), 6)), ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode(tc.in)
			require.Error(t, err)
			require.Nil(t, m)
			require.True(t, errors.Is(err, tc.want), "got %v, want %v", err, tc.want)
		})
	}
	m, err := Decode(envelope(t, good))
	require.NoError(t, err, "the control case decodes")
	require.True(t, m.(*OpBatch).Deflate)
}

// TestOpsDeflateBombStopsAtTheLimit: a stream that would inflate to 128 MiB
// is refused after about the limit's worth of work and memory.
func TestOpsDeflateBombStopsAtTheLimit(t *testing.T) {
	// 128 MiB of zeros compress to ~128 KiB: a 1,000:1 bomb.
	var z bytes.Buffer
	w, err := flate.NewWriter(&z, flate.BestSpeed)
	require.NoError(t, err)
	zeros := make([]byte, 1<<20)
	for i := 0; i < 128; i++ {
		_, err = w.Write(zeros)
		require.NoError(t, err)
	}
	require.NoError(t, w.Close())
	in := envelope(t, z.Bytes())
	require.Less(t, len(in), DefaultLimits.MaxMessageSize, "the bomb itself fits in a message")

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m, err := Decode(in)
	runtime.ReadMemStats(&after)
	require.Nil(t, m)
	require.ErrorIs(t, err, ErrInflatedTooLarge)
	require.ErrorIs(t, err, ErrTooLarge)
	require.Contains(t, err.Error(), "decompression bomb")
	allocated := after.TotalAlloc - before.TotalAlloc
	// The allocation bound is what shows inflating stopped at the limit;
	// how long that takes is a benchmark's business, not this test's.
	require.Less(t, allocated, uint64(8<<20), "inflating must stop at the 1 MiB limit, allocated %d bytes", allocated)

	// A lower limit is honoured, also for an honest batch.
	c, err := NewCodec(Limits{MaxInflatedSize: 100})
	require.NoError(t, err)
	_, err = c.Decode(mustHex(specHex(t)["ops-deflate"])) // inflates to 143 bytes
	require.ErrorIs(t, err, ErrInflatedTooLarge)
	_, err = c.Encode(&OpBatch{Header: Header{WH: "wh1", GW: "dock1"}, First: 41, Last: 42, Ops: goldenCases[1].msg.(*OpBatch).Ops, Deflate: true})
	require.ErrorIs(t, err, ErrTooLarge, "a sender does not compress what it would refuse to inflate")
}

// genHLC draws a clock value in range (SPEC.md §4), leaving room for the
// increments the batch generator adds.
func genHLC(t *rapid.T, label string) HLC {
	return HLC(rapid.Uint64Range(0, uint64(MakeHLC(MaxHLCMillis, 0))-1<<30).Draw(t, label))
}

// genOp draws an op with every field in play (not necessarily a valid op:
// the wire form must carry whatever the batch holds).
func genOp(t *rapid.T, seq uint64) Op {
	str := func(label string, maxLen int) string {
		return rapid.StringOfN(rapid.RuneFrom([]rune("LOC-ABCxyz0123456789_é")), 0, maxLen, -1).Draw(t, label)
	}
	o := Op{
		Seq:      seq,
		HLC:      genHLC(t, "hlc"),
		Kind:     OpKind(rapid.IntRange(1, 7).Draw(t, "kind")),
		Location: str("loc", 12),
		To:       str("to", 8),
		SKU:      str("sku", 14),
		Lot:      str("lot", 6),
		Qty:      rapid.Int64().Draw(t, "qty"),
		Scope:    CountScope(rapid.IntRange(0, 1).Draw(t, "scope")),
		Device:   str("device", 6),
		Operator: str("operator", 6),
		Reason:   str("reason", 8),
		Expiry:   str("expiry", 10),
		GW:       str("gw", 8),
		Flags:    uint32(rapid.IntRange(0, 15).Draw(t, "flags")),
	}
	for i, n := 0, rapid.IntRange(0, 3).Draw(t, "nlines"); i < n; i++ {
		o.Lines = append(o.Lines, CountLine{SKU: str("lsku", 14), Lot: str("llot", 4), Qty: rapid.Int64().Draw(t, "lqty")})
	}
	for i, n := 0, rapid.IntRange(0, 2).Draw(t, "nraw"); i < n; i++ {
		o.Raw = append(o.Raw, str("raw", 40))
	}
	for i, n := 0, rapid.IntRange(0, 3).Draw(t, "nepc"); i < n; i++ {
		o.EPCs = append(o.EPCs, rapid.SliceOfN(rapid.Byte(), 1, 12).Draw(t, "epc"))
	}
	if rapid.Bool().Draw(t, "refs") {
		o.Refs = &Refs{PO: str("po", 6), POLine: rapid.Uint32().Draw(t, "poline"), Order: str("ord", 6), Task: str("task", 6)}
	}
	return o
}

// TestOpsDeflateRoundTripProperty: for random batches, sending in the
// ops-deflate form and decoding gives back exactly the original batch, the
// same one the plain form gives; and the encoding is deterministic.
func TestOpsDeflateRoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		first := rapid.Uint64Range(1, 1<<40).Draw(t, "first")
		n := rapid.IntRange(1, 300).Draw(t, "n")
		b := OpBatch{Header: Header{WH: "wh1", GW: "gw-" + rapid.StringMatching(`[a-z0-9]{1,8}`).Draw(t, "gw")},
			First: first, Last: first + uint64(n) - 1, HLC: genHLC(t, "bhlc")}
		for i := 0; i < n; i++ {
			if i > 0 && rapid.IntRange(0, 3).Draw(t, "repeat") > 0 {
				o := b.Ops[i-1] // consecutive scans look alike: what compression feeds on
				o.Seq, o.HLC = first+uint64(i), o.HLC+HLC(rapid.IntRange(1, 1<<20).Draw(t, "dhlc"))
				b.Ops = append(b.Ops, o)
				continue
			}
			b.Ops = append(b.Ops, genOp(t, first+uint64(i)))
		}
		want := b // a copy: Encode stamps the header
		want.V, want.T = Version, TypeOps

		plain, err := Encode(&b)
		require.NoError(t, err)
		b.Deflate = true
		z, err := Encode(&b)
		require.NoError(t, err)
		z2, err := Encode(&b)
		require.NoError(t, err)
		require.Equal(t, z, z2, "encoding is deterministic")

		got, err := Decode(z)
		require.NoError(t, err)
		gb := got.(*OpBatch)
		require.True(t, gb.Deflate)
		require.NoError(t, CheckBatch(gb))
		gb.Deflate = false
		gp, err := Decode(plain)
		require.NoError(t, err)
		require.Equal(t, gp, gb, "the two wire forms carry the same batch, received bytes included")
		requireReceived(t, std, gb)
		require.Equal(t, &want, gb, "expanded batch differs from the original")
	})
}

// FuzzOpsDeflate feeds arbitrary bytes as the compressed data of an
// ops-deflate message: the result is an error or a batch of the envelope's
// gateway, never a panic; anything that inflates past the limit is refused.
func FuzzOpsDeflate(f *testing.F) {
	small, err := NewCodec(Limits{MaxInflatedSize: 64 << 10})
	require.NoError(f, err)
	spec := specHex(f)
	ops := mustHex(spec["ops"])
	f.Add(deflateRaw(f, ops, 6))
	f.Add(deflateRaw(f, ops, 0)) // stored blocks
	f.Add(deflateRaw(f, ops, 1)[:20])
	f.Add(deflateRaw(f, make([]byte, 70<<10), 9))                 // bomb for the small codec
	f.Add(deflateRaw(f, append(make([]byte, 0, 200), ops...), 9)) // honest
	f.Add([]byte{0x03, 0x00})                                     // empty final block
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range []*Codec{std, small} {
			in := envelope(t, data)
			m, err := c.Decode(in)
			requireAsDecodedWhole(t, c, in, m, err)
			// Independent count of what the data inflates to, capped.
			n, _ := io.Copy(io.Discard, io.LimitReader(flate.NewReader(bytes.NewReader(data)), int64(c.limits.MaxInflatedSize)+1))
			if n > int64(c.limits.MaxInflatedSize) {
				require.ErrorIs(t, err, ErrInflatedTooLarge, "data %s", hex.EncodeToString(data))
			}
			if err != nil {
				require.Nil(t, m)
				continue
			}
			b := m.(*OpBatch)
			require.True(t, b.Deflate)
			require.Equal(t, "wh1", b.WH)
			require.Equal(t, "dock1", b.GW)
			// The received op bytes decode to the ops and frame a batch
			// of them (requireReceived clears them: the input need not
			// be a deterministic encoding, its re-encoding is).
			requireReceived(t, c, b)
			// Re-encoding is a fixed point, as for any message.
			again, err := c.Encode(b)
			require.NoError(t, err)
			m2, err := c.Decode(again)
			require.NoError(t, err)
			requireReceived(t, c, m2.(*OpBatch))
			require.Equal(t, b, m2)
		}
	})
}
