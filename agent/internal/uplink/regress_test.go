package uplink

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/agent/internal/store"
	"github.com/shelfsync/shelfsync/protocol"
)

// TestUplinkResendsToARestoredServer: the server's state goes back to a
// backup that applied ops up to 200 of 500, with the same identity (a
// restore that did not roll it) and then to a brand-new empty state
// (another identity). Each time the agent resends what the server lacks
// from its retention by itself: the server ends with every op exactly
// once, in order, and the agent reports both regressions.
func TestUplinkResendsToARestoredServer(t *testing.T) {
	b := startServerBroker(t, true)
	u, st := agentOn(t, b)
	want := commitScans(t, st, 500)
	waitWM(t, b, 500)

	b.restore(200, "e1")
	want = append(want, commitScans(t, st, 100)...)
	waitWM(t, b, 600)
	_, ops, _, _ := b.snapshot()
	require.Equal(t, want, ops, "ops 201..600 resent once each")
	s := u.State()
	require.Equal(t, uint64(1), s.Regressions)
	require.Equal(t, RegressionInfo{At: s.LastRegression.At, EpochBefore: "e1", Epoch: "e1", AckedBefore: 500, ServerWM: 200, ResendFrom: 201}, *s.LastRegression)

	b.restore(0, "e2")
	waitWM(t, b, 600)
	_, ops, _, _ = b.snapshot()
	require.Equal(t, want, ops, "a new, empty server gets every op again")
	require.Equal(t, uint64(2), u.State().Regressions)
	require.Equal(t, "e2", u.State().LastRegression.Epoch)
	waitFor(t, 10*time.Second, "the agent's acked position back at 600 under e2", func() bool {
		p, err := st.Positions()
		return err == nil && p.Acked == 600 && p.Epoch == "e2"
	})
}

// TestUplinkLostOpsBeyondRetention: with a retention of 100 acknowledged
// ops, a server restored to watermark 150 of 500 lacks 151..400 for ever:
// the agent's hello states first_seq 401, the server records exactly
// 151..400 as lost, and replication resumes with 401 onwards.
func TestUplinkLostOpsBeyondRetention(t *testing.T) {
	b := startServerBroker(t, true)
	b.lostOps = true
	u, st := agentRetaining(t, b, store.Retention{MaxOps: 100})
	want := commitScans(t, st, 500)
	waitWM(t, b, 500)
	waitFor(t, 10*time.Second, "retention trimmed to 100 ops", func() bool {
		f, err := st.FirstHeld()
		return err == nil && f == 401
	})

	b.restore(150, "e1")
	want = append(want, commitScans(t, st, 50)...)
	waitWM(t, b, 550)
	wm, ops, _, _ := b.snapshot()
	require.Equal(t, uint64(550), wm)
	require.Equal(t, append(append([]protocol.Op(nil), want[:150]...), want[400:]...), ops, "the retained ops once each; nothing else")
	b.mu.Lock()
	require.Equal(t, [][2]uint64{{151, 400}}, b.lost, "the exact range recorded once")
	b.mu.Unlock()
	// The agent learns of the regression from whichever answer comes
	// first: the answer to its reconnect's hello (first_seq 401, so the
	// server has recorded the loss and answers 400), or an ack of a batch
	// it sent meanwhile, still at the restored 150. Either way the range
	// is recorded once (above) and nothing is resent twice.
	require.Contains(t, []uint64{150, 400}, u.State().LastRegression.ServerWM)
	waitFor(t, 10*time.Second, "lost range settled", func() bool { return u.State().Lost == nil })
}

// TestUplinkReportsLostOpsToAnOlderServer: a server that predates lost-ops
// ignores first_seq and keeps answering with a gap; the agent does not
// skip ahead (it would make a permanent gap of its own) and shows the range
// it can no longer send in its status.
func TestUplinkReportsLostOpsToAnOlderServer(t *testing.T) {
	b := startServerBroker(t, true)
	u, st := agentRetaining(t, b, store.Retention{MaxOps: -1})
	commitScans(t, st, 100)
	waitWM(t, b, 100)
	b.restore(40, "e1")
	waitFor(t, 10*time.Second, "lost range reported", func() bool { return u.State().Lost != nil })
	require.Equal(t, &SeqRange{From: 41, To: 100}, u.State().Lost)
	commitScans(t, st, 10)
	wm, _, _, _ := b.snapshot()
	require.Equal(t, uint64(40), wm)
}
