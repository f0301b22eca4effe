package uplink

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/agent/internal/store"
	"github.com/shelfsync/shelfsync/protocol"
)

// TestAcksFirstOnlyWithinOneIdentity: a turn's acks go before its
// downstream batches only when every message carries the identity the
// gateway records and no ack is below its acknowledged position or beyond
// its last seq — an identity change or a regression is handled in order.
func TestAcksFirstOnlyWithinOneIdentity(t *testing.T) {
	st, err := store.Open(store.Options{Dir: t.TempDir(), Small: true})
	require.NoError(t, err)
	defer st.Close()
	ops := make([]protocol.Op, 10)
	for i := range ops {
		ops[i] = protocol.Op{Kind: protocol.OpReceive, Location: "L", SKU: "S", Qty: 1}
	}
	_, err = st.Commit(context.Background(), &store.Commit{Device: "d", Ops: ops, KeepSession: true})
	require.NoError(t, err)
	u := &Uplink{st: st}
	down := func(epoch string) protocol.Message { return &protocol.DownBatch{First: 1, Last: 1, Epoch: epoch} }
	ack := func(wm uint64, epoch string) protocol.Message { return &protocol.Ack{WM: wm, Epoch: epoch} }

	require.False(t, u.acksFirst([]protocol.Message{down("e1"), ack(5, "e1")}), "no identity recorded yet")
	_, err = st.Ack(4, "e1")
	require.NoError(t, err)

	for _, c := range []struct {
		name string
		msgs []protocol.Message
		want bool
	}{
		{"downstream then acks, one identity", []protocol.Message{down("e1"), down("e1"), ack(6, "e1")}, true},
		{"an error ack of the same identity", []protocol.Message{down("e1"), &protocol.Ack{WM: 4, Epoch: "e1", Error: "gap"}}, true},
		{"no ack", []protocol.Message{down("e1"), down("e1")}, false},
		{"no downstream", []protocol.Message{ack(6, "e1"), ack(7, "e1")}, false},
		{"downstream of another identity", []protocol.Message{down("e2"), ack(6, "e1")}, false},
		{"an ack of another identity", []protocol.Message{down("e1"), ack(6, "e2")}, false},
		{"an ack below the acknowledged position", []protocol.Message{down("e1"), ack(3, "e1")}, false},
		{"an ack beyond the last seq", []protocol.Message{down("e1"), ack(11, "e1")}, false},
	} {
		require.Equal(t, c.want, u.acksFirst(c.msgs), c.name)
	}
}
