package protocol

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestClockRefusesFarFuture: a peer value ten years ahead is refused and
// not merged; one within the offset is merged.
func TestClockRefusesFarFuture(t *testing.T) {
	wall := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	c := NewClock(func() time.Time { return wall })
	before := c.Now()
	far := MakeHLC(wall.AddDate(10, 0, 0).UnixMilli(), 0)
	err := c.Update(far)
	var ahead *ClockAheadError
	require.ErrorAs(t, err, &ahead)
	require.ErrorIs(t, err, ErrClockAhead)
	require.Contains(t, err.Error(), "NTP")
	require.Greater(t, ahead.Ahead(), 9*365*24*time.Hour)
	require.Equal(t, before, c.Last(), "a refused value is not merged")
	require.Less(t, c.Now().Millis(), far.Millis())

	near := MakeHLC(wall.Add(DefaultMaxOffset-time.Second).UnixMilli(), 7)
	require.NoError(t, c.Update(near))
	require.Greater(t, c.Now(), near)

	require.ErrorIs(t, c.Update(HLC(math.MaxUint64-1)), ErrClockRange)
	require.ErrorIs(t, c.Update(MakeHLC(MaxHLCMillis+1, 0)), ErrClockRange)
}

// TestClockBoundProperty: no sequence of peer clocks, interleaved with
// local stamps and a wall clock that moves forward, ever puts the clock
// more than the maximum offset ahead of the wall clock.
func TestClockBoundProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		wall := time.UnixMilli(rapid.Int64Range(0, MaxHLCMillis/2).Draw(t, "start"))
		maxOff := time.Duration(rapid.Int64Range(1, 3600_000).Draw(t, "max_offset_ms")) * time.Millisecond
		c := NewClock(func() time.Time { return wall })
		c.SetMaxOffset(maxOff)
		steps := rapid.IntRange(1, 200).Draw(t, "steps")
		for i := 0; i < steps; i++ {
			switch rapid.IntRange(0, 3).Draw(t, "action") {
			case 0: // a peer value anywhere, often near the bound
				var h HLC
				if rapid.Bool().Draw(t, "near") {
					d := rapid.Int64Range(-2*maxOff.Milliseconds(), 2*maxOff.Milliseconds()).Draw(t, "delta_ms")
					h = MakeHLC(max(wall.UnixMilli()+d, 0), rapid.Uint16().Draw(t, "logical"))
				} else {
					h = HLC(rapid.Uint64().Draw(t, "peer"))
				}
				err := c.Update(h)
				if h.Millis()-wall.UnixMilli() > maxOff.Milliseconds() {
					require.Error(t, err, "value %s must be refused", h)
				}
			case 1:
				c.Now()
			case 2:
				wall = wall.Add(time.Duration(rapid.Int64Range(0, 10_000).Draw(t, "tick_ms")) * time.Millisecond)
			case 3: // a peer value that is exactly at the bound
				require.NoError(t, c.Update(MakeHLC(wall.UnixMilli()+maxOff.Milliseconds(), math.MaxUint16)))
			}
			// The logical counter may carry one ms past a value at the
			// bound (65,536 stamps in one ms); never more.
			require.LessOrEqual(t, c.Last().Millis(), wall.UnixMilli()+maxOff.Milliseconds()+1,
				"clock %s ran more than %s ahead of the wall %d", c.Last(), maxOff, wall.UnixMilli())
		}
	})
}

// TestDecodeRefusesOutOfRangeClocks: a message whose hlc (or one of its
// ops' hlc) is past MaxHLCMillis is malformed.
func TestDecodeRefusesOutOfRangeClocks(t *testing.T) {
	bad := HLC(math.MaxUint64 - 1)
	for _, m := range []Message{
		&Hello{Header: Header{WH: "w", GW: "g"}, HLC: bad},
		&Ack{Header: Header{WH: "w", GW: "g"}, HLC: bad},
		&DownBatch{Header: Header{WH: "w", GW: "g"}, First: 1, Last: 1, HLC: bad},
		&OpBatch{Header: Header{WH: "w", GW: "g"}, First: 1, Last: 1, HLC: MakeHLC(1, 0), Ops: []Op{{Seq: 1, HLC: bad, Kind: OpReceive, Location: "L", SKU: "S", Qty: 1}}},
		&OpBatch{Header: Header{WH: "w", GW: "g"}, First: 1, Last: 1, HLC: bad, Ops: []Op{{Seq: 1, HLC: 1, Kind: OpReceive, Location: "L", SKU: "S", Qty: 1}}},
		&OpBatch{Header: Header{WH: "w", GW: "g"}, First: 1, Last: 1, HLC: bad, Ops: []Op{{Seq: 1, HLC: 1, Kind: OpReceive, Location: "L", SKU: "S", Qty: 1}}, Deflate: true},
	} {
		b, err := Encode(m)
		require.NoError(t, err)
		_, err = Decode(b)
		require.ErrorIs(t, err, ErrMalformed, "%T", m)
		require.ErrorIs(t, err, ErrClockRange, "%T", m)
	}
	ok := &Hello{Header: Header{WH: "w", GW: "g"}, HLC: MakeHLC(MaxHLCMillis, math.MaxUint16)}
	b, err := Encode(ok)
	require.NoError(t, err)
	_, err = Decode(b)
	require.NoError(t, err, "the largest valid value decodes")
}

// FuzzHLCCheck: every value Check accepts has its wall part in range and
// survives a clock's Update without pushing it past the bound.
func FuzzHLCCheck(f *testing.F) {
	for _, v := range []uint64{0, 1, math.MaxUint64, math.MaxUint64 - 1, uint64(MakeHLC(MaxHLCMillis, 0)), uint64(MakeHLC(MaxHLCMillis+1, 0))} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v uint64) {
		h := HLC(v)
		err := h.Check()
		if (h.Millis() > MaxHLCMillis) != (err != nil) {
			t.Fatalf("Check(%d) = %v", v, err)
		}
		wall := time.UnixMilli(1_800_000_000_000)
		c := NewClock(func() time.Time { return wall })
		if err := c.Update(h); err == nil && c.Last().Millis() > wall.Add(DefaultMaxOffset).UnixMilli() {
			t.Fatalf("Update(%d) moved the clock to %s", v, c.Last())
		} else if err != nil && !errors.Is(err, ErrClockRange) && !errors.Is(err, ErrClockAhead) {
			t.Fatalf("Update(%d): unexpected error %v", v, err)
		}
	})
}
