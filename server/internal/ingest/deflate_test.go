package ingest

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
)

func TestAnnouncesOpsDeflateUnlessDisabled(t *testing.T) {
	require.True(t, New(Config{}, nil).feats.Has(protocol.FeatureOpsDeflate))
	require.False(t, New(Config{NoDeflate: true}, nil).feats.Has(protocol.FeatureOpsDeflate))
	require.True(t, New(Config{NoDeflate: true}, nil).feats.Has(protocol.FeatureProbes), "probes are announced either way")
}

// TestCompressedBatchInflatesWithinTheMessageLimit: a compressed batch may
// inflate to no more than a plain message may be (MaxMessageBytes); past
// that it is refused and counted as inflated_too_large.
func TestCompressedBatchInflatesWithinTheMessageLimit(t *testing.T) {
	in := New(Config{Limits: Limits{MaxMessageBytes: 4096}}, nil)
	b := &protocol.OpBatch{Header: protocol.Header{WH: "wh1", GW: "g1"}, First: 1, Deflate: true}
	for s := uint64(1); s <= 200; s++ {
		b.Ops = append(b.Ops, protocol.Op{Seq: s, Kind: protocol.OpReceive, Location: "DOCK-01", SKU: fmt.Sprintf("0400638133%04d", s%10), Qty: 1, Device: "s1"})
	}
	b.Last = 200
	raw, err := protocol.Encode(b)
	require.NoError(t, err)
	require.Less(t, len(raw), 4096, "small on the wire")
	_, err = in.codec.Decode(raw)
	require.ErrorIs(t, err, protocol.ErrInflatedTooLarge)
	require.Equal(t, "inflated_too_large", reasonOf(err))

	b.Ops, b.Last = b.Ops[:20], 20
	raw, err = protocol.Encode(b)
	require.NoError(t, err)
	m, err := in.codec.Decode(raw)
	require.NoError(t, err)
	require.Equal(t, b.Ops, m.(*protocol.OpBatch).Ops)
}
