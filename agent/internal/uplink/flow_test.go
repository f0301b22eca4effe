package uplink

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestUplinkAsksASlowServerInsteadOfResending: a server that announces
// probes stops handling messages for several ack timeouts (batches queued
// behind other gateways'), then handles them in order. The agent asks
// (hellos with probes) instead of resending: every op arrives once and no
// batch arrives twice.
func TestUplinkAsksASlowServerInsteadOfResending(t *testing.T) {
	b := startServerBroker(t, true)
	b.probes.Store(true)
	u, st := agentOn(t, b) // ack timeout 1 s
	want := commitScans(t, st, 300)
	waitWM(t, b, 300) // the first acks announce probes
	b.hold.Store(true)
	want = append(want, commitScans(t, st, 700)...)
	waitFor(t, 20*time.Second, "an ack timeout while the server holds", func() bool { return u.State().Timeouts >= 2 })
	b.hold.Store(false)
	waitWM(t, b, 1000)
	_, ops, _, _ := b.snapshot()
	require.Equal(t, want, ops, "every op applied once, in order")
	b.mu.Lock()
	dups := b.dups
	b.mu.Unlock()
	require.Zero(t, dups, "a batch was sent again although the server had only been slow")
	require.Zero(t, u.State().Resends)
}

// TestUplinkResendsWhatTheProbeAnswerShowsMissing: the server loses the
// last batch without a word (no later batch shows a gap). At the ack
// timeout the agent asks; the answer shows the batch missing, and it is
// sent again.
func TestUplinkResendsWhatTheProbeAnswerShowsMissing(t *testing.T) {
	b := startServerBroker(t, true)
	b.probes.Store(true)
	u, st := agentOn(t, b)
	want := commitScans(t, st, 100)
	waitWM(t, b, 100)
	b.drop.Store(1)
	want = append(want, commitScans(t, st, 50)...)
	waitWM(t, b, 150)
	_, ops, _, _ := b.snapshot()
	require.Equal(t, want, ops, "every op applied once, in order")
	require.Positive(t, u.State().Timeouts)
	require.Positive(t, u.State().Resends, "the lost batch was resent after the answer")
}
