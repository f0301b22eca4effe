package uplink

import (
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/shelfsync/shelfsync/protocol"
)

// TestCoalesceKeepsWhatMatters: of the messages queued at once, coalesce
// keeps every message in order except plain acks that a later ack of the
// same identity supersedes (watermark at least as high); it keeps every
// error ack, every probe answer, every non-ack, and the highest watermark
// of each identity.
func TestCoalesceKeepsWhatMatters(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 40).Draw(t, "n")
		var msgs []protocol.Message
		for i := 0; i < n; i++ {
			switch rapid.IntRange(0, 4).Draw(t, "kind") {
			case 0:
				msgs = append(msgs, &protocol.DownBatch{First: uint64(i + 1), Last: uint64(i + 1)})
			default:
				a := &protocol.Ack{WM: uint64(rapid.IntRange(0, 30).Draw(t, "wm")), Epoch: rapid.SampledFrom([]string{"e1", "e2"}).Draw(t, "epoch")}
				if rapid.IntRange(0, 5).Draw(t, "err") == 0 {
					a.Error = "gap"
				}
				if rapid.IntRange(0, 5).Draw(t, "probe") == 0 {
					a.Answers = 7
				}
				msgs = append(msgs, a)
			}
		}
		inbox := make(chan protocol.Message, len(msgs))
		for _, m := range msgs[1:] {
			inbox <- m
		}
		got := coalesce(msgs[0], inbox)
		require.Empty(t, inbox, "everything queued is taken")
		// got is a subsequence of msgs, in order.
		j := 0
		kept := map[protocol.Message]bool{}
		for _, m := range got {
			for j < len(msgs) && msgs[j] != m {
				j++
			}
			require.Less(t, j, len(msgs), "coalesce returned a message out of order or not queued")
			kept[m] = true
			j++
		}
		high := map[string]uint64{}
		for _, m := range msgs {
			if a, ok := m.(*protocol.Ack); ok {
				high[a.Epoch] = max(high[a.Epoch], a.WM)
			}
		}
		for i, m := range msgs {
			a, isAck := m.(*protocol.Ack)
			if !isAck || a.Error != "" || a.Answers != 0 {
				require.True(t, kept[m], "message %d (%T) dropped", i, m)
				continue
			}
			later := false
			for _, l := range msgs[i+1:] {
				if b, ok := l.(*protocol.Ack); ok && b.Epoch == a.Epoch && b.WM >= a.WM {
					later = true
				}
			}
			require.Equal(t, !later, kept[m], "plain ack %d (wm %d, %s): kept exactly when no later ack supersedes it", i, a.WM, a.Epoch)
		}
		for epoch, wm := range high {
			found := false
			for _, m := range got {
				if a, ok := m.(*protocol.Ack); ok && a.Epoch == epoch && a.WM == wm {
					found = true
				}
			}
			require.True(t, found, "the highest watermark of %s is handled", epoch)
		}
	})
}
