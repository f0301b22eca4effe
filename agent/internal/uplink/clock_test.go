package uplink

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
)

// TestServerClockFarAheadIsRefused: an ack whose clock runs years ahead of
// the gateway's is not merged (the gateway's stamps stay true), is counted
// and shows as the uplink's error; the measured skew is exported.
func TestServerClockFarAheadIsRefused(t *testing.T) {
	wall := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	c := protocol.NewClock(func() time.Time { return wall })
	u := &Uplink{clock: c, log: slog.New(slog.DiscardHandler)}

	u.observeClock(protocol.MakeHLC(wall.AddDate(10, 0, 0).UnixMilli(), 0)) // what handle does first with every ack and downstream batch
	st := u.State()
	require.Equal(t, uint64(1), st.ClockRefused)
	require.Contains(t, st.LastError, "clock ahead")
	require.Greater(t, st.ClockSkewMS, int64(300*24*3600*1000))
	require.Equal(t, wall.UnixMilli(), c.Now().Millis(), "the gateway keeps stamping true time")

	u.observeClock(protocol.MakeHLC(wall.Add(1500*time.Millisecond).UnixMilli(), 0))
	st = u.State()
	require.Equal(t, uint64(1), st.ClockRefused)
	require.Equal(t, int64(1500), st.ClockSkewMS)
	require.Greater(t, c.Now().Millis(), wall.UnixMilli(), "a clock within the offset is merged")
}
