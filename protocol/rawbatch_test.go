package protocol

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// rawOf frames b's ops as a gateway's outbox keeps them (Marshal of each).
func rawOf(t require.TestingT, b *OpBatch) *RawOpBatch {
	r := &RawOpBatch{Header: b.Header, First: b.First, Last: b.Last, HLC: b.HLC, Deflate: b.Deflate}
	for i := range b.Ops {
		enc, err := Marshal(&b.Ops[i])
		require.NoError(t, err)
		r.Ops = append(r.Ops, RawOp(enc))
	}
	return r
}

// TestRawOpBatchIsTheGoldenOps: the ops examples of SPEC.md, framed from
// their ops' stored bytes, are the golden bytes exactly (plain and
// ops-deflate): a gateway that sends its ops as it committed them speaks
// the same wire as before, to servers old and new.
func TestRawOpBatchIsTheGoldenOps(t *testing.T) {
	spec := specHex(t)
	for _, tc := range goldenCases {
		b, ok := tc.msg.(*OpBatch)
		if !ok {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			got, err := Encode(rawOf(t, b))
			require.NoError(t, err)
			require.Equal(t, spec[tc.name], hex.EncodeToString(got))
		})
	}
}

// TestRawOpBatchEncodesAsOpBatch: for random batches (every op field in
// play), framing the stored op bytes gives the bytes Encode gives for the
// decoded batch, in both wire forms, and Decode returns the same ops.
func TestRawOpBatchEncodesAsOpBatch(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 20).Draw(t, "n")
		first := rapid.Uint64Range(1, 1<<40).Draw(t, "first")
		b := &OpBatch{Header: Header{WH: "wh1", GW: "g1"}, First: first, Last: first + uint64(n) - 1, HLC: genHLC(t, "batch_hlc"),
			Deflate: rapid.Bool().Draw(t, "deflate")}
		for i := 0; i < n; i++ {
			b.Ops = append(b.Ops, genOp(t, first+uint64(i)))
		}
		raw := rawOf(t, b)
		want, err := Encode(b)
		require.NoError(t, err)
		got, err := Encode(raw)
		require.NoError(t, err)
		require.Equal(t, want, got)
		m, err := Decode(got)
		require.NoError(t, err)
		require.Equal(t, b.Ops, m.(*OpBatch).Ops)
	})
}

// requireReceived checks what Decode kept of a batch's ops: one data item
// per op, each decoding (alone) to that op, framing together (RawOpBatch)
// a message that decodes to the same ops. It then clears Received, so that
// b compares equal to a batch built in memory.
func requireReceived(t require.TestingT, c *Codec, b *OpBatch) {
	require.Len(t, b.Received, len(b.Ops), "one received item per op")
	if b.Ops == nil {
		require.Nil(t, b.Received)
	}
	for i := range b.Ops {
		var op Op
		rest, err := c.dec.UnmarshalFirst(b.Received[i], &op)
		require.NoError(t, err, "op %d", i)
		require.Empty(t, rest, "op %d: one data item, nothing after it", i)
		require.Equal(t, b.Ops[i], op, "op %d: the received bytes are the op", i)
	}
	if len(b.Ops) > 0 {
		raw := &RawOpBatch{Header: b.Header, First: b.First, Last: b.Last, Ops: b.Received, HLC: b.HLC}
		enc, err := c.Encode(raw)
		require.NoError(t, err)
		m, err := c.Decode(enc)
		require.NoError(t, err)
		require.Equal(t, b.Ops, m.(*OpBatch).Ops, "the received ops frame the same batch")
	}
	b.Received = nil
}

// oddOp is an op encoded otherwise than deterministically: {3: 1, 1: 9
// (as a 2-byte int), 2: 5, 4: "A", 6: "S", 8: 1, 99: "x"}; oddOpsMessage
// is an ops message of wh1/dock1 carrying it.
const (
	oddOp         = "a7" + "0301" + "01190009" + "0205" + "046141" + "066153" + "0801" + "18636178"
	oddOpsMessage = "a8" + "0001" + "0102" + "0263776831" + "0365646f636b31" + "0409" + "0509" + "0681" + oddOp + "0705"
)

// TestDecodeKeepsOpsAsReceived: Decode keeps each op's bytes as the sender
// encoded them, even where they are not the deterministic encoding (keys
// out of order, an int not in its shortest form, a key this build does not
// know), in both wire forms; the bytes are the batch's own, not the
// caller's buffer.
func TestDecodeKeepsOpsAsReceived(t *testing.T) {
	odd := mustHex(oddOp)
	plain := mustHex(oddOpsMessage)
	for name, msg := range map[string][]byte{
		"ops":         plain,
		"ops-deflate": envelope(t, deflateRaw(t, plain, 6)),
	} {
		t.Run(name, func(t *testing.T) {
			in := bytes.Clone(msg)
			m, err := Decode(in)
			require.NoError(t, err)
			b := m.(*OpBatch)
			require.Equal(t, []Op{{Seq: 9, HLC: 5, Kind: OpReceive, Location: "A", SKU: "S", Qty: 1}}, b.Ops)
			require.Equal(t, []RawOp{RawOp(odd)}, b.Received)
			for i := range in {
				in[i] = 0
			}
			require.Equal(t, []RawOp{RawOp(odd)}, b.Received, "the received bytes do not alias the decoded buffer")
			enc, err := Marshal(&b.Ops[0])
			require.NoError(t, err)
			require.NotEqual(t, odd, enc, "the case is not already deterministic")
		})
	}
}

// TestDecodeOpsKeepsErrorsAndShapes: what the ops decoding refuses or
// accepts did not change with keeping the ops' bytes: an empty ops array
// is an empty (not nil) slice, an absent one nil, a null op the zero op;
// an op that is not a map, a duplicate key inside an op, ops nested past
// the limit and too many ops are malformed.
func TestDecodeOpsKeepsErrorsAndShapes(t *testing.T) {
	head := "0001" + "0102" + "0263776831" + "0365646f636b31" + "0401" + "0501" + "0705"
	dec := func(ops string, pairs int) (*OpBatch, error) {
		m, err := Decode(mustHex(fmt.Sprintf("a%x", 7+pairs) + head + ops))
		if err != nil {
			return nil, err
		}
		return m.(*OpBatch), nil
	}
	b, err := dec("", 0)
	require.NoError(t, err)
	require.Nil(t, b.Ops)
	require.Nil(t, b.Received)
	b, err = dec("0680", 1)
	require.NoError(t, err)
	require.NotNil(t, b.Ops)
	require.Empty(t, b.Ops)
	require.NotNil(t, b.Received)
	b, err = dec("0681f6", 1)
	require.NoError(t, err)
	require.Equal(t, []Op{{}}, b.Ops)
	require.Equal(t, []RawOp{{0xf6}}, b.Received)
	for name, ops := range map[string]string{
		"op not a map":     "068101",
		"duplicate key":    "0681a201010101",
		"ops not an array": "06a0",
		"bad utf-8":        "0681a10462ffff",
		"nested too deep":  "0681a10a81a10181818181818101",
	} {
		_, err := dec(ops, 1)
		require.ErrorIs(t, err, ErrMalformed, name)
	}
	small, err := NewCodec(Limits{MaxArrayElements: 16})
	require.NoError(t, err)
	_, err = small.Decode(mustHex("a8" + head + "0691" + strings.Repeat("f6", 17)))
	require.ErrorIs(t, err, ErrMalformed, "too many ops")
}

// TestDecodeFindsTheOpsTheDecoderRead: the ops' items are those of the
// key the decoder reads as Ops (unsigned 6, in any integer form), not of a
// text key "6" or of a 6 nested in another key's value, wherever key 6
// stands in the map.
func TestDecodeFindsTheOpsTheDecoderRead(t *testing.T) {
	op1 := "a3010102010301" // {1: 1, 2: 1, 3: 1}
	op2 := "a3010202010302" // {1: 2, 2: 1, 3: 2}
	head := "0001" + "0102" + "0263776831" + "0365646f636b31" + "0401" + "0502" + "0705"
	for name, msg := range map[string]string{
		"key 6 first":           "a8" + "06" + "82" + op1 + op2 + head,
		"key 6 as 0x18 0x06":    "a8" + head + "1806" + "82" + op1 + op2,
		"text key 6 before":     "a9" + "6136" + "81" + op2 + head + "06" + "82" + op1 + op2,
		"nested 6 in a key 9":   "a9" + "09" + "a106" + "81" + op2 + head + "06" + "82" + op1 + op2,
		"nested array of ops":   "a9" + "0a" + "82" + "81" + op1 + "a0" + head + "06" + "82" + op1 + op2,
		"bytes that look alike": "a9" + "0b" + "47" + op1 + head + "06" + "82" + op1 + op2,
	} {
		t.Run(name, func(t *testing.T) {
			m, err := Decode(mustHex(msg))
			require.NoError(t, err)
			b := m.(*OpBatch)
			require.Equal(t, []Op{{Seq: 1, HLC: 1, Kind: 1}, {Seq: 2, HLC: 1, Kind: 2}}, b.Ops)
			require.Equal(t, []RawOp{mustHex(op1), mustHex(op2)}, b.Received)
			requireReceived(t, std, b)
		})
	}
}

// BenchmarkDecodeOps decodes a batch of 256 ops of a scanning gateway
// (compare: the same batch decoded whole, as Decode did before it kept
// each op's bytes).
func BenchmarkDecodeOps(b *testing.B) {
	batch := &OpBatch{Header: Header{WH: "wh1", GW: "dock1"}, First: 1, Last: 256, HLC: MakeHLC(1_700_000_000_000, 0)}
	for i := range 256 {
		batch.Ops = append(batch.Ops, Op{Seq: uint64(i + 1), HLC: MakeHLC(1_700_000_000_000+int64(i), 0), Kind: OpPick, Location: "A-01-03",
			SKU: "04012345678901", Qty: 1, Device: "scanner-1", Operator: "op7", Raw: []string{"]C10104012345678901"}, Refs: &Refs{Order: "SO-1", OrderLine: 2}})
	}
	enc, err := Encode(batch)
	require.NoError(b, err)
	b.Run("keeping", func(b *testing.B) {
		for b.Loop() {
			if _, err := Decode(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("whole", func(b *testing.B) {
		for b.Loop() {
			var h Header
			if err := std.dec.Unmarshal(enc, &h); err != nil {
				b.Fatal(err)
			}
			if err := std.dec.Unmarshal(enc, &OpBatch{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
