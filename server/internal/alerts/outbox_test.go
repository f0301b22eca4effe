package alerts

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
)

// TestOutboxPublishesQueuedMessagesOnceInOrder: messages written in
// transactions are published in the order of their alert IDs, kept while
// the broker refuses, published only while the replica is active, and
// removed once published; a transaction that fails queues nothing.
func TestOutboxPublishesQueuedMessagesOnceInOrder(t *testing.T) {
	st, err := badger.Open(badger.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	var mu sync.Mutex
	var got []string
	var refuse atomic.Int32
	refuse.Store(2)
	pub := func(topic string, retained bool, payload []byte) error {
		require.False(t, retained)
		if refuse.Add(-1) >= 0 {
			return errors.New("broker away")
		}
		mu.Lock()
		got = append(got, topic+" "+string(payload))
		mu.Unlock()
		return nil
	}
	var active atomic.Bool
	o := NewOutbox(st, active.Load, slog.New(slog.DiscardHandler))
	queue := func(id, status string) {
		require.NoError(t, st.Update(func(tx store.Tx) error { return o.Queue(tx, id, status, "shelfsync/w/alerts", []byte(id+"/"+status)) }))
	}
	queue("0002", "open")
	queue("0001", "open")
	queue("0001", "acknowledged") // after its raise
	require.Error(t, st.Update(func(tx store.Tx) error {
		if err := o.Queue(tx, "0003", "open", "shelfsync/w/alerts", []byte("x")); err != nil {
			return err
		}
		return errors.New("the alert's transaction failed")
	}))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); o.Run(ctx, pubFunc(pub)) }()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(3 * outboxPoll) // passive: publishes nothing
	mu.Lock()
	require.Empty(t, got, "a passive replica leaves the messages to the leader")
	mu.Unlock()

	active.Store(true)
	o.Poke()
	want := []string{"shelfsync/w/alerts 0001/open", "shelfsync/w/alerts 0001/acknowledged", "shelfsync/w/alerts 0002/open"}
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 3 }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(2 * outboxPoll) // negative window: a repeated publish would come by now
	mu.Lock()
	require.Equal(t, want, got, "each once, by alert ID then as queued, after the broker came back")
	mu.Unlock()
	var left int
	require.NoError(t, st.View(func(tx store.Tx) error {
		return tx.Scan([]byte(pfxOutbox), store.ScanOptions{KeysOnly: true}, func(_, _ []byte) error { left++; return nil })
	}))
	require.Zero(t, left, "published messages are removed")
}

// pubFunc is a function as a Publisher.
type pubFunc func(topic string, retained bool, payload []byte) error

func (f pubFunc) PublishTopic(topic string, retained bool, payload []byte) error {
	return f(topic, retained, payload)
}
