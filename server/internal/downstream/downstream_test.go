package downstream

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
)

// recorder is a Publisher that keeps every downstream batch sent.
type recorder struct {
	mu   sync.Mutex
	sent []*protocol.DownBatch
}

func (r *recorder) Publish(_, _ string, payload []byte) error {
	m, err := protocol.Decode(payload)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, m.(*protocol.DownBatch))
	return nil
}

// take returns the batches sent since the last take.
func (r *recorder) take() []*protocol.DownBatch {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.sent
	r.sent = nil
	return out
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) add(d time.Duration)     { c.t = c.t.Add(d) }
func stockItems(b *protocol.DownBatch) int   { return len(b.Items) }
func lastOf(bs []*protocol.DownBatch) uint64 { return bs[len(bs)-1].Last }

// appendStock logs a value for each of n keys (the log keeps each key's
// latest entry).
func appendStock(t *testing.T, st *badger.Store, n int, onHand int64) {
	t.Helper()
	for i := range n {
		v := protocol.StockValue{Location: "L", SKU: fmt.Sprintf("S%d", i), OnHand: onHand}
		require.NoError(t, st.AppendDown(context.Background(), "w", "", protocol.DownStock, "L/"+v.SKU, v))
	}
}

// TestCatchingUpGatewayGetsRounds: a gateway that stated a last seq far
// beyond its watermark gets the log up to the head at once, then nothing
// until CatchUpEvery has passed — when the keys changed meanwhile come as
// one entry each, in order after what it has; a gateway within
// CatchUpOps of its watermark gets every change at once.
func TestCatchingUpGatewayGetsRounds(t *testing.T) {
	ctx := context.Background()
	st, err := badger.Open(badger.Options{InMemory: true})
	require.NoError(t, err)
	defer st.Close()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	s := New(Config{Now: clock.now, CatchUpOps: 100, CatchUpEvery: time.Second}, st)
	pub := &recorder{}
	ack := func(bs []*protocol.DownBatch) {
		s.Acked("w", "g", &protocol.DownAck{DownWM: lastOf(bs), Epoch: st.Epoch()})
	}

	appendStock(t, st, 10, 1)
	s.Hello("w", "g", &protocol.Hello{LastSeq: 1000, Epoch: st.Epoch()}) // watermark 0: 1,000 behind
	s.sendAll(ctx, pub)
	first := pub.take()
	require.Len(t, first, 1)
	require.Equal(t, uint64(1), first[0].First)
	require.Equal(t, uint64(10), first[0].Last)
	ack(first)

	for v := int64(2); v <= 5; v++ { // four commits changing the same keys
		appendStock(t, st, 10, v)
		clock.add(100 * time.Millisecond)
		s.sendAll(ctx, pub)
		require.Empty(t, pub.take(), "within the round's CatchUpEvery nothing new is sent")
	}
	clock.add(700 * time.Millisecond)
	s.sendAll(ctx, pub)
	next := pub.take()
	require.Len(t, next, 1)
	require.Equal(t, uint64(11), next[0].First, "the next round starts after what was sent")
	require.Equal(t, uint64(50), next[0].Last)
	require.Equal(t, 10, stockItems(next[0]), "each key once, its latest value")
	var v protocol.StockValue
	require.NoError(t, protocol.Unmarshal(next[0].Items[0].Body, &v))
	require.Equal(t, int64(5), v.OnHand)
	ack(next)

	// Caught up (as its status says): every change goes at once.
	s.Reported("w", "g", 50)
	appendStock(t, st, 10, 6)
	s.sendAll(ctx, pub)
	now := pub.take()
	require.Len(t, now, 1)
	require.Equal(t, uint64(51), now[0].First)
	require.Equal(t, uint64(60), now[0].Last)
}

// TestRoundsOff: CatchUpOps < 0 sends every change at once, however far
// behind the gateway is.
func TestRoundsOff(t *testing.T) {
	ctx := context.Background()
	st, err := badger.Open(badger.Options{InMemory: true})
	require.NoError(t, err)
	defer st.Close()
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	s := New(Config{Now: clock.now, CatchUpOps: -1}, st)
	pub := &recorder{}
	s.Hello("w", "g", &protocol.Hello{LastSeq: 1_000_000, Epoch: st.Epoch()})
	for v := int64(1); v <= 3; v++ {
		appendStock(t, st, 5, v)
		s.sendAll(ctx, pub)
		bs := pub.take()
		require.Len(t, bs, 1, "commit %d", v)
		s.Acked("w", "g", &protocol.DownAck{DownWM: lastOf(bs), Epoch: st.Epoch()})
	}
}

// TestRoundReachesTheHeadOfASparseLog: the compacted log's live entries
// span more seqs than the window; a catching-up gateway's round still
// reaches the head without waiting for down-acks (at most catchUpBatches
// batches in flight), while a gateway that is not behind waits for them.
func TestRoundReachesTheHeadOfASparseLog(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name     string
		lastSeq  uint64
		batches  int
		lastSent uint64
	}{
		{"catching up", 1000, 5, 30},
		{"not behind", 50, 1, 22},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, err := badger.Open(badger.Options{InMemory: true})
			require.NoError(t, err)
			defer st.Close()
			clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
			s := New(Config{Now: clock.now, Window: 4, MaxItems: 2, CatchUpOps: 100}, st)
			pub := &recorder{}
			for v := int64(1); v <= 3; v++ {
				appendStock(t, st, 10, v) // live entries: seqs 21..30
			}
			s.Hello("w", "g", &protocol.Hello{LastSeq: c.lastSeq, Epoch: st.Epoch()})
			s.sendAll(ctx, pub)
			sent := pub.take()
			require.Len(t, sent, c.batches)
			require.Equal(t, c.lastSent, lastOf(sent))
			require.Equal(t, uint64(22), sent[0].Last, "the first batch spans the compacted seqs 1..20")
		})
	}
}
