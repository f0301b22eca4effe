package uplink

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/agent/internal/store"
	"github.com/shelfsync/shelfsync/protocol"
)

// serverBroker is a minimal MQTT 3.1.1 broker with a shelfsync server
// behind it, speaking to one agent: it applies op batches with the sequence
// rule and answers hellos and batches with acks on the down topic. With
// deflate false it behaves as a server that predates ops-deflate: its acks
// announce no features, and it cannot read a compressed batch (it answers
// one with the error ack an old server's decoder gives, applying nothing).
type serverBroker struct {
	ln      net.Listener
	topics  protocol.Topics
	deflate atomic.Bool
	// probes: announce FeatureProbes and name a hello's probe in its
	// answer; hold: handle nothing while set (a slow server); drop: lose
	// this many of the next batches without a word.
	probes atomic.Bool
	hold   atomic.Bool
	drop   atomic.Int32
	wg     sync.WaitGroup

	mu      sync.Mutex
	wm      uint64
	ops     []protocol.Op // applied, in order
	forms   []bool        // Deflate of every batch received, in order
	refused int           // compressed batches refused (old server)
	dups    int           // batches received that were already applied
	// epoch is the server state's identity ("e1" unless restored);
	// lostOps makes it record the seqs a hello's first_seq says are no
	// longer held (lost, in order) and move its watermark past them.
	epoch   string
	lostOps bool
	lost    [][2]uint64
	conns   map[net.Conn]bool
}

// serveFake accepts connections on ln and serves each on its own
// goroutine until the test ends (then closes ln and waits for them).
func serveFake(t *testing.T, ln net.Listener, wg *sync.WaitGroup, serve func(net.Conn)) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
}

func startServerBroker(t *testing.T, deflate bool) *serverBroker {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &serverBroker{ln: ln, topics: protocol.NewTopics(""), epoch: "e1", conns: map[net.Conn]bool{}}
	b.deflate.Store(deflate)
	serveFake(t, ln, &b.wg, b.serve)
	return b
}

func (b *serverBroker) serve(c net.Conn) {
	b.mu.Lock()
	b.conns[c] = true
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.conns, c)
		b.mu.Unlock()
		c.Close()
	}()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-stop:
		case <-time.After(time.Minute):
			c.Close()
		}
	}()
	for {
		cp, err := packets.ReadPacket(c)
		if err != nil {
			return
		}
		switch p := cp.(type) {
		case *packets.ConnectPacket:
			if packets.NewControlPacket(packets.Connack).Write(c) != nil {
				return
			}
		case *packets.SubscribePacket:
			sa := packets.NewControlPacket(packets.Suback).(*packets.SubackPacket)
			sa.MessageID = p.MessageID
			sa.ReturnCodes = []byte{1}
			if sa.Write(c) != nil {
				return
			}
		case *packets.PublishPacket:
			if p.Qos == 1 {
				pa := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
				pa.MessageID = p.MessageID
				if pa.Write(c) != nil {
					return
				}
			}
			t, err := b.topics.Parse(p.TopicName)
			if err != nil || t.Kind != protocol.TopicUp {
				continue
			}
			for b.hold.Load() {
				time.Sleep(10 * time.Millisecond)
			}
			if ack := b.answer(t.Warehouse, t.Gateway, p.Payload); ack != nil {
				raw, err := protocol.Encode(ack)
				if err != nil {
					return
				}
				pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
				pub.TopicName = b.topics.Down(t.Warehouse, t.Gateway)
				pub.Payload = raw
				if pub.Write(c) != nil {
					return
				}
			}
		case *packets.PingreqPacket:
			if packets.NewControlPacket(packets.Pingresp).Write(c) != nil {
				return
			}
		case *packets.DisconnectPacket:
			return
		}
	}
}

// answer handles one up message and returns the ack to send, if any.
func (b *serverBroker) answer(wh, gw string, payload []byte) *protocol.Ack {
	b.mu.Lock()
	defer b.mu.Unlock()
	deflate := b.deflate.Load()
	ack := &protocol.Ack{Header: protocol.Header{WH: wh, GW: gw}, Epoch: b.epoch, HLC: protocol.MakeHLC(time.Now().UnixMilli(), 0)}
	if deflate {
		ack.Features = protocol.FeatureOpsDeflate
	}
	if b.probes.Load() {
		ack.Features |= protocol.FeatureProbes
	}
	msg, err := protocol.Decode(payload)
	if err != nil {
		ack.WM, ack.Error = b.wm, err.Error()
		return ack
	}
	switch m := msg.(type) {
	case *protocol.Hello:
		if b.probes.Load() {
			ack.Answers = m.Probe
		}
		if b.lostOps && m.FirstSeq > b.wm+1 {
			b.lost = append(b.lost, [2]uint64{b.wm + 1, m.FirstSeq - 1})
			b.wm = m.FirstSeq - 1
		}
	case *protocol.OpBatch:
		if b.drop.Load() > 0 {
			b.drop.Add(-1)
			return nil
		}
		b.forms = append(b.forms, m.Deflate)
		if m.Last <= b.wm {
			b.dups++
		}
		if m.Deflate && !deflate {
			b.refused++ // what a server without ops-deflate answers: type 7 is unknown to it
			ack.WM, ack.Error = b.wm, fmt.Sprintf("%v: %d", protocol.ErrUnknownType, protocol.TypeOpsDeflate)
			return ack
		}
		if err := protocol.CheckBatch(m); err != nil {
			ack.WM, ack.Error = b.wm, err.Error()
			return ack
		}
		switch protocol.Judge(b.wm, m.First, m.Last) {
		case protocol.Apply:
			for _, o := range m.Ops {
				if o.Seq > b.wm {
					b.ops = append(b.ops, o)
				}
			}
			b.wm = m.Last
		case protocol.Gap:
			ack.Error = fmt.Sprintf("gap: expected seq %d", b.wm+1)
		}
	default:
		return nil
	}
	ack.WM = b.wm
	return ack
}

func (b *serverBroker) snapshot() (wm uint64, ops []protocol.Op, forms []bool, refused int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.wm, append([]protocol.Op(nil), b.ops...), append([]bool(nil), b.forms...), b.refused
}

// restore replaces the server's state by one that applied ops up to wm
// only, under epoch, and drops the agent's connection (a server restart).
func (b *serverBroker) restore(wm uint64, epoch string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	kept := b.ops[:0]
	for _, o := range b.ops {
		if o.Seq <= wm {
			kept = append(kept, o)
		}
	}
	b.ops, b.wm, b.epoch = kept, wm, epoch
	for c := range b.conns {
		c.Close()
	}
}

// agentOn runs an uplink against the broker and returns it with its store.
func agentOn(t *testing.T, b *serverBroker) (*Uplink, *store.Store) {
	return agentRetaining(t, b, store.Retention{})
}

// agentRetaining is agentOn with a retention of acknowledged ops.
func agentRetaining(t *testing.T, b *serverBroker, r store.Retention) (*Uplink, *store.Store) {
	t.Helper()
	st, err := store.Open(store.Options{Dir: t.TempDir(), Small: true, Retention: r})
	require.NoError(t, err)
	clock := protocol.NewClock(nil)
	st.SetClock(clock)
	u := New(Config{Brokers: []string{"tcp://" + b.ln.Addr().String()}, Warehouse: "WH1", Gateway: "gw-1", AckTimeout: time.Second}, st, clock)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = u.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	return u, st
}

// commitScans commits n receive ops the way a dock scanner produces them.
func commitScans(t *testing.T, st *store.Store, n int) []protocol.Op {
	t.Helper()
	var out []protocol.Op
	for i := 0; i < n; i += 50 {
		ops := make([]protocol.Op, min(50, n-i))
		for j := range ops {
			gtin := fmt.Sprintf("040063813%04d", (i+j)%100)
			ops[j] = protocol.Op{Kind: protocol.OpReceive, Location: "DOCK-01", SKU: "0" + gtin, Qty: 1, Device: "s1", Operator: "ann", Raw: []string{gtin}}
		}
		got, err := st.Commit(context.Background(), &store.Commit{Device: "s1", Ops: ops, KeepSession: true})
		require.NoError(t, err)
		out = append(out, got...)
	}
	return out
}

func waitWM(t *testing.T, b *serverBroker, wm uint64) {
	t.Helper()
	waitFor(t, 20*time.Second, fmt.Sprintf("server watermark %d", wm), func() bool { got, _, _, _ := b.snapshot(); return got >= wm })
}

// TestUplinkSendsPlainOpsToServerWithoutDeflate: a server that does not
// announce ops-deflate never receives a compressed batch.
func TestUplinkSendsPlainOpsToServerWithoutDeflate(t *testing.T) {
	b := startServerBroker(t, false)
	u, st := agentOn(t, b)
	want := commitScans(t, st, 700)
	waitWM(t, b, 700)
	_, ops, forms, refused := b.snapshot()
	require.Equal(t, want, ops)
	require.NotContains(t, forms, true, "a compressed batch was sent to a server that did not announce ops-deflate")
	require.Zero(t, refused)
	require.False(t, u.State().OpsDeflate)
}

// TestUplinkCompressesForServerWithDeflate: once the server announced
// ops-deflate, batches go out compressed and carry exactly the committed
// ops.
func TestUplinkCompressesForServerWithDeflate(t *testing.T) {
	b := startServerBroker(t, true)
	u, st := agentOn(t, b)
	waitFor(t, 10*time.Second, "ops-deflate announced", func() bool { return u.State().OpsDeflate })
	want := commitScans(t, st, 700)
	waitWM(t, b, 700)
	_, ops, forms, _ := b.snapshot()
	require.Equal(t, want, ops, "the server sees exactly the committed ops")
	require.NotEmpty(t, forms)
	require.NotContains(t, forms, false, "every batch after the announcement is compressed")
}

// TestUplinkFallsBackWhenServerStopsAnnouncing: a server that stops
// announcing ops-deflate (an older replica took over, a downgrade) refuses
// the compressed batches in flight; its ack without the feature turns
// compression off and the ops arrive plain — none lost, none twice.
func TestUplinkFallsBackWhenServerStopsAnnouncing(t *testing.T) {
	b := startServerBroker(t, true)
	u, st := agentOn(t, b)
	waitFor(t, 10*time.Second, "ops-deflate announced", func() bool { return u.State().OpsDeflate })
	want := commitScans(t, st, 300)
	waitWM(t, b, 300)

	b.deflate.Store(false)
	want = append(want, commitScans(t, st, 400)...)
	waitWM(t, b, 700)
	_, ops, forms, refused := b.snapshot()
	require.Equal(t, want, ops, "every op applied once, in order")
	require.Positive(t, refused, "the first batch after the switch went out compressed and was refused")
	require.False(t, forms[len(forms)-1], "the resend is plain")
	require.False(t, u.State().OpsDeflate)
}
