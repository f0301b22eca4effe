package dashboard

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSeriesBucketsPerMinuteOverTheLastHour(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 30, 15, 0, time.UTC)
	s := NewSeries(60, func() time.Time { return now })
	s.Applied("wh1", "dock-1", 5, 1)
	s.Applied("wh1", "dock-1", 3, 0)
	s.Backlog("wh1", "dock-1", 7)
	s.Backlog("wh1", "dock-1", 4) // a minute keeps its largest sample
	now = now.Add(2 * time.Minute)
	s.Applied("wh1", "dock-1", 2, 0)
	s.Applied("wh2", "pick-1", 9, 0)

	all := s.Window("")
	require.Len(t, all, 2)
	g := s.Window("wh1")
	require.Len(t, g, 1)
	require.Equal(t, "dock-1", g[0].Gateway)
	pts := g[0].Points
	require.Len(t, pts, 60, "one point per minute of the hour")
	last := now.Truncate(time.Minute)
	require.Equal(t, last.UnixMilli(), pts[59].AtMS, "the window ends at the current minute")
	require.Equal(t, last.Add(-59*time.Minute).UnixMilli(), pts[0].AtMS)
	require.EqualValues(t, 2, pts[59].Applied)
	require.Nil(t, pts[59].Backlog, "no sample this minute")
	require.EqualValues(t, 8, pts[57].Applied)
	require.EqualValues(t, 1, pts[57].Quarantined)
	require.NotNil(t, pts[57].Backlog)
	require.EqualValues(t, 7, *pts[57].Backlog)

	// an hour later the old minutes are gone, and the slot reused by the
	// same minute-of-hour starts from zero
	now = now.Add(58 * time.Minute) // 10:30 + 60 min: the 10:30 bucket left the window
	s.Applied("wh1", "dock-1", 1, 0)
	pts = s.Window("wh1")[0].Points
	var sum int64
	for _, p := range pts {
		sum += p.Applied
	}
	require.EqualValues(t, 3, sum, "10:32's 2 and this minute's 1; 10:30 fell out")
	require.EqualValues(t, 1, pts[59].Applied)

	now = now.Add(2 * time.Hour)
	require.Empty(t, s.Window(""), "a gateway silent for the whole window is not listed")
}

func TestSeriesForgetsTheLongestSilentGatewayPastTheBound(t *testing.T) {
	now := time.Unix(1_000_000_000, 0)
	s := NewSeries(10, func() time.Time { return now })
	s.maxGateways = 2
	s.Applied("wh", "a", 1, 0)
	now = now.Add(time.Minute)
	s.Applied("wh", "b", 1, 0)
	now = now.Add(time.Minute)
	s.Applied("wh", "c", 1, 0)
	var names []string
	for _, g := range s.Window("") {
		names = append(names, g.Gateway)
	}
	require.Equal(t, []string{"b", "c"}, names)
}
