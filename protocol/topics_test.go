package protocol

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTopicsRoundTripAndRejectBadIDs(t *testing.T) {
	tp := NewTopics("")
	got, err := tp.Parse(tp.Up("wh-1", "dock_2.a"))
	require.NoError(t, err)
	require.Equal(t, Topic{Kind: TopicUp, Warehouse: "wh-1", Gateway: "dock_2.a"}, got)
	got, err = tp.Parse(tp.Availability("shopify"))
	require.NoError(t, err)
	require.Equal(t, Topic{Kind: TopicAvailability, Channel: "shopify"}, got)
	got, err = tp.Parse(tp.Alerts("wh1"))
	require.NoError(t, err)
	require.Equal(t, Topic{Kind: TopicAlerts, Warehouse: "wh1"}, got)

	for _, bad := range []string{
		"other/wh/gw/up", "shelfsync/v1/wh/gw/sideways", "shelfsync/v1/w h/gw/up",
		"shelfsync/v1/wh/+/up", "shelfsync/v1/wh/#/up", "shelfsync/v1//gw/up",
		"shelfsync/v1/" + strings.Repeat("a", 65) + "/gw/up", "shelfsync/v1/wh/gw/up/extra",
	} {
		_, err := tp.Parse(bad)
		require.Error(t, err, bad)
	}
	require.ErrorIs(t, ValidateID("a/b"), ErrBadID)
	require.ErrorIs(t, ValidateID(""), ErrBadID)
	require.NoError(t, ValidateID(strings.Repeat("Z", 64)))
}

func TestClockMonotonicAndUpdates(t *testing.T) {
	wall := time.UnixMilli(1000)
	c := NewClock(func() time.Time { return wall })
	a := c.Now()
	b := c.Now()
	require.Equal(t, MakeHLC(1000, 0), a)
	require.Equal(t, MakeHLC(1000, 1), b)
	c.Update(MakeHLC(5000, 7))
	require.Equal(t, MakeHLC(5000, 8), c.Now(), "a peer ahead pulls the clock forward")
	wall = time.UnixMilli(9000)
	require.Equal(t, MakeHLC(9000, 0), c.Now())
	require.Equal(t, int64(9000), c.Last().Millis())
}

func TestOpValidate(t *testing.T) {
	good := Op{Seq: 1, Kind: OpReceive, Location: "A", SKU: "s", Qty: 1}
	require.NoError(t, good.Validate())
	bad := []Op{
		{Seq: 0, Kind: OpReceive, Location: "A", SKU: "s", Qty: 1},
		{Seq: 1, Kind: 99, Location: "A", SKU: "s", Qty: 1},
		{Seq: 1, Kind: OpReceive, SKU: "s", Qty: 1},
		{Seq: 1, Kind: OpReceive, Location: "A", SKU: "s", Qty: 0},
		{Seq: 1, Kind: OpMove, Location: "A", SKU: "s", Qty: 1},
		{Seq: 1, Kind: OpAdjust, Location: "A", SKU: "s"},
		{Seq: 1, Kind: OpReceive, Location: "A", SKU: strings.Repeat("x", 65), Qty: 1},
		{Seq: 1, Kind: OpCount, Location: "A", Qty: 1},
		{Seq: 1, Kind: OpCount, Scope: ScopeLocation, Location: "A", Lines: []CountLine{{SKU: "", Qty: 1}}},
	}
	for i, o := range bad {
		require.Error(t, o.Validate(), "case %d", i)
	}
}

func FuzzTopicsParse(f *testing.F) {
	tp := NewTopics("")
	for _, s := range []string{tp.Up("wh", "gw"), tp.Down("w.1", "g_2"), tp.Status("a", "b"), tp.Alerts("wh"), tp.Availability("shop"), "shelfsync/v1/+/#/up", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := tp.Parse(s)
		if err != nil {
			return
		}
		// Whatever parses names valid IDs and rebuilds to the same topic.
		var again string
		switch got.Kind {
		case TopicAvailability:
			require.NoError(t, ValidateID(got.Channel))
			again = tp.Availability(got.Channel)
		case TopicAlerts:
			require.NoError(t, ValidateID(got.Warehouse))
			again = tp.Alerts(got.Warehouse)
		default:
			require.NoError(t, ValidateID(got.Warehouse))
			require.NoError(t, ValidateID(got.Gateway))
			again = tp.Gateway(got.Kind, got.Warehouse, got.Gateway)
		}
		require.Equal(t, s, again)
	})
}

func TestValidateIDRefusesDotsOnly(t *testing.T) {
	for _, id := range []string{".", "..", "...."} {
		if err := ValidateID(id); err == nil {
			t.Errorf("ValidateID(%q) = nil, want an error", id)
		}
	}
	for _, id := range []string{"a.b", ".a", "wh-1", "..x"} {
		if err := ValidateID(id); err != nil {
			t.Errorf("ValidateID(%q) = %v", id, err)
		}
	}
}
