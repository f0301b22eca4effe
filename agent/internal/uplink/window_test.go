package uplink

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWindowGrowsWhileFarBehind: with at least four windows of ops
// unacknowledged the uplink keeps four windows in flight (a server that
// commits queued batches together finds several queued); with less, one.
// The server here reads every batch and answers none, so what it saw is
// what the window let out before the first resend.
func TestWindowGrowsWhileFarBehind(t *testing.T) {
	const window = 8192 // Config.Window's default
	for _, c := range []struct {
		name     string
		ops      int
		inFlight uint64
	}{
		{"far behind", 5 * window, behindFactor * window},
		{"within four windows", 3 * window, window},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := startServerBroker(t, true)
			b.drop.Store(1 << 30)
			u, st := agentOn(t, b)
			commitScans(t, st, c.ops)
			waitFor(t, 30*time.Second, "a resend after the window filled", func() bool { return u.State().Resends > 0 })
			b.mu.Lock()
			seen := b.maxLast
			b.mu.Unlock()
			// The window is checked before each batch: the last one sent
			// may reach past it by less than a batch (at most 4 × 256
			// ops while behind).
			require.GreaterOrEqual(t, seen, c.inFlight)
			require.Less(t, seen, c.inFlight+behindFactor*256)
		})
	}
}
