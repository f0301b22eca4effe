package protocol

import (
	"encoding/hex"
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
