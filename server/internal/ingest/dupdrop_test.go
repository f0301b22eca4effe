package ingest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/brokerlink"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
)

// fakeLink hands messages to the ingest and records what it publishes.
type fakeLink struct {
	mu   sync.Mutex
	h    brokerlink.Handler
	acks []*protocol.Ack
}

func (l *fakeLink) Start(h brokerlink.Handler) { l.mu.Lock(); l.h = h; l.mu.Unlock() }
func (l *fakeLink) Connected() bool            { return true }
func (l *fakeLink) Close()                     {}
func (l *fakeLink) Publish(_ string, _ bool, payload []byte) error {
	m, err := protocol.Decode(payload)
	if err != nil {
		return err
	}
	if a, ok := m.(*protocol.Ack); ok {
		l.mu.Lock()
		l.acks = append(l.acks, a)
		l.mu.Unlock()
	}
	return nil
}

func (l *fakeLink) deliver(t *testing.T, topic string, m protocol.Message) {
	b, err := protocol.Encode(m)
	require.NoError(t, err)
	l.mu.Lock()
	h := l.h
	l.mu.Unlock()
	h(brokerlink.Message{Topic: topic, Payload: b})
}

func (l *fakeLink) ackCount() int { l.mu.Lock(); defer l.mu.Unlock(); return len(l.acks) }

// TestQueuedDuplicateIsAnsweredWithoutApplying: a batch the worker has
// already applied, arriving again (a resend), is answered with the stored
// watermark and counted as a dropped duplicate; it does not reach the
// store (its ops are not merged twice: stock stays as after the first).
func TestQueuedDuplicateIsAnsweredWithoutApplying(t *testing.T) {
	st, err := badger.Open(badger.Options{InMemory: true})
	require.NoError(t, err)
	defer st.Close()
	link := &fakeLink{}
	in := New(Config{Link: link, Workers: 1}, st)
	in.Start(context.Background())
	defer in.Stop()
	topic := in.Topics().Up("wh1", "g1")
	b := &protocol.OpBatch{Header: protocol.Header{WH: "wh1", GW: "g1"}, First: 1, Last: 3, HLC: protocol.MakeHLC(time.Now().UnixMilli(), 0)}
	for s := uint64(1); s <= 3; s++ {
		b.Ops = append(b.Ops, protocol.Op{Seq: s, HLC: protocol.MakeHLC(time.Now().UnixMilli(), 0), Kind: protocol.OpReceive, Location: "DOCK-01", SKU: "04006381333931", Qty: 1, Device: "s1"})
	}
	link.deliver(t, topic, b)
	require.Eventually(t, func() bool { return link.ackCount() == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Zero(t, testutil.ToFloat64(in.m.DroppedDuplicates))

	link.deliver(t, topic, b) // the resend
	require.Eventually(t, func() bool { return link.ackCount() == 2 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, 1.0, testutil.ToFloat64(in.m.DroppedDuplicates), "answered as a dropped duplicate")
	require.Equal(t, 1.0, testutil.ToFloat64(in.m.Batches.WithLabelValues(protocol.Duplicate.String())))
	require.Equal(t, 1.0, testutil.ToFloat64(in.m.Batches.WithLabelValues(protocol.Apply.String())), "applied once")
	link.mu.Lock()
	require.Equal(t, uint64(3), link.acks[1].WM, "the answer states the watermark")
	link.mu.Unlock()
	rows, err := st.Stock(context.Background(), store.StockQuery{Warehouse: "wh1"})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, int64(3), rows[0].OnHand, "merged once")
}
