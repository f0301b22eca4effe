package ingest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := Limits{Rate: 10, Burst: 5, MaxPending: 3, MaxMessageBytes: 100}
	l.defaults(64)
	lim := newLimiter(l, func() time.Time { return now })
	a, b := "shelfsync/v1/WH1/a", "shelfsync/v1/WH1/b"

	require.Equal(t, reasonTooLarge, lim.admit(a, 101))
	// Backlog: 3 pending at most, per gateway.
	for i := 0; i < 3; i++ {
		require.Equal(t, "", lim.admit(a, 10))
	}
	require.Equal(t, reasonBacklog, lim.admit(a, 10))
	require.Equal(t, "", lim.admit(b, 10), "another gateway is not affected")
	lim.release(a)
	lim.release(a)
	lim.release(a)
	// Burst 5: 3 tokens were used, 2 left.
	require.Equal(t, "", lim.admit(a, 10))
	require.Equal(t, "", lim.admit(a, 10))
	lim.release(a)
	lim.release(a)
	require.Equal(t, reasonRate, lim.admit(a, 10))
	now = now.Add(100 * time.Millisecond) // one token at 10/s
	require.Equal(t, "", lim.admit(a, 10))
	lim.release(a)
	require.Equal(t, reasonRate, lim.admit(a, 10))

	// Throttled logs and error acks.
	require.True(t, lim.shouldLog(a, "decode"))
	require.False(t, lim.shouldLog(a, "decode"))
	require.True(t, lim.shouldLog(a, "spoofed"))
	require.True(t, lim.allowErrorAck(a))
	require.False(t, lim.allowErrorAck(a))
	now = now.Add(errorAckEvery)
	require.True(t, lim.allowErrorAck(a))
	now = now.Add(logEvery)
	require.True(t, lim.shouldLog(a, "decode"))

	// Idle gateways are forgotten.
	lim.release(b)
	now = now.Add(3 * sweepEvery)
	require.Equal(t, "", lim.admit("shelfsync/v1/WH1/c", 1))
	lim.mu.Lock()
	_, okA := lim.gws[a]
	lim.mu.Unlock()
	require.False(t, okA)

	require.Equal(t, "shelfsync/v1/WH1/gw", gatewayKey("shelfsync/v1/WH1/gw/up"))
	require.Equal(t, "shelfsync/v1/WH1/gw", gatewayKey("shelfsync/v1/WH1/gw/status"))
}
