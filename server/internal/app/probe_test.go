package app

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
)

// TestServerAnswersAProbeAfterWhatCameBefore: the server announces probes,
// and answers a hello's probe (SPEC.md §6) in order: the batches the
// gateway published before the hello are applied before the answer, whose
// watermark therefore covers them; a seq range the server never got shows
// as the answer's watermark below it.
func TestServerAnswersAProbeAfterWhatCameBefore(t *testing.T) {
	s := startServer(t, t.TempDir())
	g := newFakeGateway(t, s.MQTTAddr(), "wh1", "g1")
	encode := func(m protocol.Message) []byte {
		raw, err := protocol.Encode(m)
		require.NoError(t, err)
		return raw
	}
	hello := func(probe uint64) []byte {
		return encode(&protocol.Hello{Header: protocol.Header{WH: "wh1", GW: "g1"}, HLC: protocol.MakeHLC(time.Now().UnixMilli(), 0), Probe: probe})
	}
	batch := func(first uint64) []byte {
		ops := shiftOps(first)
		return encode(&protocol.OpBatch{Header: protocol.Header{WH: "wh1", GW: "g1"}, First: first, Last: ops[len(ops)-1].Seq, Ops: ops, HLC: ops[0].HLC})
	}
	a := g.waitAck(g.send(hello(0)))
	require.True(t, a.Features.Has(protocol.FeatureProbes), "acks announce probes")
	require.Zero(t, a.Answers, "a hello without a probe is answered without one")

	// Two batches then a probe, published back to back: the answer comes
	// after both batches' acks and covers them.
	n := g.send(batch(1))
	last := shiftOps(1)[len(shiftOps(1))-1].Seq
	g.send(batch(last + 1))
	end := shiftOps(last + 1)[len(shiftOps(last+1))-1].Seq
	g.send(hello(41))
	answer := g.waitAck(n + 2)
	require.Equal(t, uint64(41), answer.Answers)
	require.Equal(t, end, answer.WM, "the probe is answered after the batches before it")
	require.Zero(t, g.waitAck(n).Answers)
	require.Zero(t, g.waitAck(n+1).Answers)

	// A batch lost on the way (never published), then one after it and a
	// probe: the gap is answered, and the probe's answer shows the range
	// missing.
	n = g.send(batch(end + 1 + 100))
	g.send(hello(42))
	answer = g.waitAck(n + 1)
	require.Equal(t, uint64(42), answer.Answers)
	require.Equal(t, end, answer.WM)
}
