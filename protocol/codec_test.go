package protocol

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecodeRejectsHostileInput(t *testing.T) {
	good, err := Encode(goldenCases[1].msg)
	require.NoError(t, err)
	deep := bytes.Repeat([]byte{0x81}, 20) // 20 nested arrays
	deep = append(deep, 0x00)
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"truncated", good[:len(good)-3], ErrMalformed},
		{"trailing bytes", append(append([]byte{}, good...), 0x00), ErrMalformed},
		{"oversized", make([]byte, DefaultLimits.MaxMessageSize+1), ErrTooLarge},
		{"deeply nested", deep, ErrMalformed},
		{"duplicate key", mustHex("a3000100010101"), ErrMalformed},    // {0:1, 0:1, 1:1}
		{"indefinite map", mustHex("bf00010101ff"), ErrMalformed},     // {_ 0:1, 1:1}
		{"tag", mustHex("c1a200010101"), ErrMalformed},                // 1({0:1,1:1})
		{"wrong version", mustHex("a200020101"), ErrVersion},          // {0:2, 1:1}
		{"unknown type", mustHex("a20001011863"), ErrUnknownType},     // {0:1, 1:99}
		{"not a map", mustHex("83010203"), ErrMalformed},              // [1,2,3]
		{"wrong field type", mustHex("a30001010202f5"), ErrMalformed}, // {0:1,1:2,2:true}
		{"invalid utf8", mustHex("a3000101010262fffe"), ErrMalformed},
		{"huge array claim", mustHex("a3000101020a9a7fffffff"), ErrMalformed}, // 2^31 elements claimed
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode(tc.in)
			require.Error(t, err)
			require.Nil(t, m)
			require.True(t, errors.Is(err, tc.want), "got %v, want %v", err, tc.want)
		})
	}
}

func TestDecodeIgnoresUnknownKeys(t *testing.T) {
	// {0:1, 1:5, 2:"w", 3:"g", 4:9, 5:"e", 99:"future"}
	b := mustHex("a7000101050261770361670409056165186366667574757265")
	m, err := Decode(b)
	require.NoError(t, err)
	require.Equal(t, &DownAck{Header: Header{V: 1, T: TypeDownAck, WH: "w", GW: "g"}, DownWM: 9, Epoch: "e"}, m)
}

func TestEncodeIsDeterministicAndCapped(t *testing.T) {
	a, err := Encode(goldenCases[0].msg)
	require.NoError(t, err)
	b, err := Encode(goldenCases[0].msg)
	require.NoError(t, err)
	require.Equal(t, a, b)

	c, err := NewCodec(Limits{MaxMessageSize: 64})
	require.NoError(t, err)
	_, err = c.Encode(goldenCases[1].msg)
	require.ErrorIs(t, err, ErrTooLarge)
}

func TestJudge(t *testing.T) {
	tests := []struct {
		wm, first, last uint64
		want            Verdict
	}{
		{0, 1, 5, Apply}, {5, 1, 5, Duplicate}, {5, 3, 4, Duplicate}, {5, 3, 9, Apply},
		{5, 6, 6, Apply}, {5, 7, 9, Gap}, {0, 2, 2, Gap},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, Judge(tc.wm, tc.first, tc.last), "%+v", tc)
	}
}

func TestCheckBatch(t *testing.T) {
	ok := &OpBatch{First: 3, Last: 4, Ops: []Op{{Seq: 3}, {Seq: 4}}}
	require.NoError(t, CheckBatch(ok))
	require.Error(t, CheckBatch(&OpBatch{First: 3, Last: 4, Ops: []Op{{Seq: 3}}}))
	require.Error(t, CheckBatch(&OpBatch{First: 3, Last: 4, Ops: []Op{{Seq: 4}, {Seq: 3}}}))
	require.Error(t, CheckBatch(&OpBatch{First: 0, Last: 0}))
	require.NoError(t, CheckDown(&DownBatch{First: 8, Last: 9, Items: []DownItem{{Seq: 9}}}))
	require.Error(t, CheckDown(&DownBatch{First: 8, Last: 9, Items: []DownItem{{Seq: 10}}}))
}

func FuzzDecode(f *testing.F) {
	for _, tc := range goldenCases {
		b, err := Encode(tc.msg)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add(mustHex("a3000100010101"))
	f.Add(mustHex(oddOpsMessage))
	far, err := Encode(&Hello{Header: Header{WH: "w", GW: "g"}, HLC: HLC(1<<64 - 2)})
	require.NoError(f, err)
	f.Add(far)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		requireAsDecodedWhole(t, std, b, m, err)
		if err != nil {
			require.Nil(t, m)
			return
		}
		require.NoError(t, checkClocks(m), "a decoded message's clocks are in range")
		if ob, ok := m.(*OpBatch); ok {
			requireReceived(t, std, ob)
		}
		// Whatever decodes re-encodes, and the re-encoding is a fixed point:
		// decoding and encoding it again gives the same bytes.
		again, err := Encode(m)
		require.NoError(t, err)
		m2, err := Decode(again)
		require.NoError(t, err, "input %s", hex.EncodeToString(b))
		third, err := Encode(m2)
		require.NoError(t, err)
		require.Equal(t, again, third, "input %s", hex.EncodeToString(b))
	})
}

// requireAsDecodedWhole: for an ops message (plain or ops-deflate), what
// Decode made of b (m, err) is what decoding the message whole into an
// OpBatch makes of it, as Decode did before it kept each op's bytes: the
// same batch, or an error for the same bytes.
func requireAsDecodedWhole(t *testing.T, c *Codec, b []byte, m Message, err error) {
	var h Header
	if len(b) > c.limits.MaxMessageSize || c.dec.Unmarshal(b, &h) != nil || h.V != Version {
		return
	}
	inner, deflate := b, false
	switch h.T {
	case TypeOps:
	case TypeOpsDeflate:
		var env opsDeflate
		if c.dec.Unmarshal(b, &env) != nil || len(env.Data) == 0 {
			return
		}
		raw, ierr := c.inflate(env.Data)
		var ih Header
		if ierr != nil || c.dec.Unmarshal(raw, &ih) != nil || ih.V != Version || ih.T != TypeOps || ih.WH != env.WH || ih.GW != env.GW {
			return
		}
		inner, deflate = raw, true
	default:
		return
	}
	whole := &OpBatch{}
	werr := c.dec.Unmarshal(inner, whole)
	if werr == nil {
		werr = checkClocks(whole)
	}
	if werr != nil {
		require.Error(t, err, "decoded whole: %v; input %s", werr, hex.EncodeToString(b))
		require.ErrorIs(t, err, ErrMalformed)
		return
	}
	require.NoError(t, err, "input %s", hex.EncodeToString(b))
	got := *m.(*OpBatch)
	got.Received = nil
	whole.Deflate = deflate
	require.Equal(t, whole, &got, "input %s", hex.EncodeToString(b))
}
