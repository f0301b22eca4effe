package protocol

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWindowGoBackN(t *testing.T) {
	t0 := time.Unix(0, 0)
	w := Window{Size: 10, Timeout: time.Second}
	w.Reset(0, t0)
	require.True(t, w.Room(5))
	w.Sent(4, t0)
	require.Equal(t, uint64(5), w.Next)
	require.False(t, w.Expired(t0.Add(500*time.Millisecond)))
	require.True(t, w.Expired(t0.Add(2*time.Second)))
	require.True(t, w.OnAck(2, t0.Add(2*time.Second)))
	require.False(t, w.OnAck(1, t0), "acks never move backwards")
	w.Rewind(t0)
	require.Equal(t, uint64(3), w.Next)
	w.Sent(12, t0)
	require.False(t, w.Room(20), "window of 10 beyond ack 2 is full")
	require.True(t, w.OnAck(12, t0))
	require.True(t, w.Room(13))
	require.False(t, w.Room(12), "nothing left to send")
}
