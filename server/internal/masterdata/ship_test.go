package masterdata

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store/storetest"
)

// TestShipNoticeWaitsForItsOpsAndShipsOnce: a ship notice is acted on
// only once the gateway's ops up to its seq are applied (the picks it
// packed); OnShip runs before the notice is marked taken, so a failure
// leaves it for the gateway to repeat, and a notice once taken never
// ships again, on retried transactions too.
func TestShipNoticeWaitsForItsOpsAndShipsOnce(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, false)
	r := &storetest.Retrying{Records: st}
	var calls []protocol.Notice
	fail := errors.New("store busy")
	var next error
	md := New(r, Options{OnShip: func(_ context.Context, wh, gw string, n protocol.Notice) (string, error) {
		require.Equal(t, "w", wh)
		require.Equal(t, "g", gw)
		calls = append(calls, n)
		if next != nil {
			err := next
			next = nil
			return "", err
		}
		return "shipped", nil
	}})
	n := protocol.Notice{ID: "ship/O1/1", Kind: protocol.NoticeShip, Seq: 2, Ref: "O1", Qty: 3, SSCC: "106141412345678908", Device: "s1"}

	grew, err := md.HandleNotices(ctx, "w", "g", []protocol.Notice{n})
	require.NoError(t, err)
	require.False(t, grew)
	require.Empty(t, calls, "the picks before it (seq 2) are not applied yet")

	_, err = st.ApplyBatch(ctx, "w", "g", &protocol.OpBatch{First: 1, Last: 2, Ops: []protocol.Op{
		{Seq: 1, HLC: 1 << 16, Kind: protocol.OpReceive, Location: "A-1", SKU: "X", Qty: 3},
		{Seq: 2, HLC: 2 << 16, Kind: protocol.OpPick, Location: "A-1", SKU: "X", Qty: 3, Refs: &protocol.Refs{Order: "O1"}},
	}})
	require.NoError(t, err)

	next = fail
	grew, err = md.Applied(ctx, "w", "g", 2)
	require.ErrorIs(t, err, fail)
	require.False(t, grew)
	require.Len(t, calls, 1)
	_, taken, err := md.Notices(ctx, "w")
	require.NoError(t, err)
	require.False(t, taken["ship/O1/1"], "a failed ship leaves the notice untaken")

	grew, err = md.HandleNotices(ctx, "w", "g", []protocol.Notice{n}) // the gateway repeats it
	require.NoError(t, err)
	require.True(t, grew, "taken: a notice-ack goes down")
	require.Len(t, calls, 2)
	require.Equal(t, n, calls[1])
	_, taken, err = md.Notices(ctx, "w")
	require.NoError(t, err)
	require.True(t, taken["ship/O1/1"])

	for range 2 {
		grew, err = md.HandleNotices(ctx, "w", "g", []protocol.Notice{n})
		require.NoError(t, err)
		require.False(t, grew)
		grew, err = md.Applied(ctx, "w", "g", 2)
		require.NoError(t, err)
		require.False(t, grew)
	}
	require.Len(t, calls, 2, "a taken ship notice is never acted on again")
}

// TestShipNoticeHandedOverTwiceAtOnceShipsOnce: a gateway's status and
// the batch covering the notice's seq may hand the same ship notice over
// at the same time; OnShip runs once.
func TestShipNoticeHandedOverTwiceAtOnceShipsOnce(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, false)
	var calls atomic.Int32
	md := New(st, Options{OnShip: func(context.Context, string, string, protocol.Notice) (string, error) {
		calls.Add(1)
		time.Sleep(20 * time.Millisecond) // a ship that takes a while: the other hand-over arrives meanwhile
		return "shipped", nil
	}})
	n := protocol.Notice{ID: "ship/O1/1", Kind: protocol.NoticeShip, Ref: "O1"}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if i%2 == 0 {
				_, err = md.HandleNotices(ctx, "w", "g", []protocol.Notice{n})
			} else {
				_, err = md.Applied(ctx, "w", "g", 0)
			}
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	require.Equal(t, int32(1), calls.Load())
}
