package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/config"
)

func startServer(t *testing.T, dir string) *Server {
	t.Helper()
	cfg := config.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", Root: protocol.DefaultRoot, Workers: 2, LogLevel: "info", LogFormat: "text", Shutdown: time.Second}
	return startWith(t, cfg)
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fakeGateway is a raw MQTT client that speaks the protocol by hand, so the
// test controls exactly which batches the server sees.
type fakeGateway struct {
	t      *testing.T
	c      paho.Client
	wh, gw string
	mu     sync.Mutex
	acks   []*protocol.Ack
}

func newFakeGateway(t *testing.T, addr, wh, gw string) *fakeGateway {
	f := &fakeGateway{t: t, wh: wh, gw: gw}
	f.c = paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("fake-" + gw).SetCleanSession(true))
	tok := f.c.Connect()
	require.True(t, tok.WaitTimeout(5*time.Second))
	require.NoError(t, tok.Error())
	tp := protocol.NewTopics("")
	tok = f.c.Subscribe(tp.Down(wh, gw), 1, func(_ paho.Client, m paho.Message) {
		msg, err := protocol.Decode(m.Payload())
		if err != nil {
			return
		}
		if a, ok := msg.(*protocol.Ack); ok {
			f.mu.Lock()
			f.acks = append(f.acks, a)
			f.mu.Unlock()
		}
	})
	require.True(t, tok.WaitTimeout(5*time.Second))
	t.Cleanup(func() { f.c.Disconnect(100) })
	return f
}

func (f *fakeGateway) send(raw []byte) int {
	f.mu.Lock()
	n := len(f.acks)
	f.mu.Unlock()
	tok := f.c.Publish(protocol.NewTopics("").Up(f.wh, f.gw), 1, false, raw)
	require.True(f.t, tok.WaitTimeout(5*time.Second))
	return n
}

// sendBatch publishes and waits for the answering ack.
func (f *fakeGateway) sendBatch(first, last uint64, qty int64) *protocol.Ack {
	b := &protocol.OpBatch{Header: protocol.Header{WH: f.wh, GW: f.gw}, First: first, Last: last}
	for s := first; s <= last; s++ {
		b.Ops = append(b.Ops, protocol.Op{Seq: s, HLC: protocol.MakeHLC(int64(s), 0), Kind: protocol.OpReceive, Location: "L", SKU: "sku1", Qty: qty})
	}
	raw, err := protocol.Encode(b)
	require.NoError(f.t, err)
	return f.waitAck(f.send(raw))
}

func (f *fakeGateway) waitAck(before int) *protocol.Ack {
	var a *protocol.Ack
	waitFor(f.t, 5*time.Second, "ack", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.acks) > before {
			a = f.acks[before]
			return true
		}
		return false
	})
	return a
}

func stock(t *testing.T, s *Server, wh string) map[string]int64 {
	resp, err := http.Get(fmt.Sprintf("http://%s/api/v1/stock?warehouse=%s", s.HTTPAddr(), wh))
	require.NoError(t, err)
	defer resp.Body.Close()
	var body struct {
		Items []struct {
			Location, SKU string
			OnHand        int64 `json:"on_hand"`
		}
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	out := map[string]int64{}
	for _, it := range body.Items {
		out[it.Location+"/"+it.SKU] = it.OnHand
	}
	return out
}

// TestExactlyOnceOverRealBroker delivers batches twice, out of order and
// with a gap through the embedded broker and checks ledger and watermark.
func TestExactlyOnceOverRealBroker(t *testing.T) {
	s := startServer(t, t.TempDir())
	g := newFakeGateway(t, s.MQTTAddr(), "wh1", "g1")

	a := g.sendBatch(1, 3, 1)
	require.Equal(t, uint64(3), a.WM)
	require.Empty(t, a.Error)

	a = g.sendBatch(1, 3, 1) // delivered twice
	require.Equal(t, uint64(3), a.WM)

	a = g.sendBatch(6, 8, 1) // gap: 4..5 missing
	require.Equal(t, uint64(3), a.WM)
	require.Contains(t, a.Error, "gap")

	a = g.sendBatch(2, 5, 1) // overlapping, out of order
	require.Equal(t, uint64(5), a.WM)
	a = g.sendBatch(6, 8, 1)
	require.Equal(t, uint64(8), a.WM)

	require.Equal(t, map[string]int64{"L/sku1": 8}, stock(t, s, "wh1"))
	wm, err := s.st.Watermark(context.Background(), "wh1", "g1")
	require.NoError(t, err)
	require.Equal(t, uint64(8), wm)
}

func TestHostileMessagesAreAnsweredAndChangeNothing(t *testing.T) {
	s := startServer(t, t.TempDir())
	g := newFakeGateway(t, s.MQTTAddr(), "wh1", "g1")
	require.Equal(t, uint64(2), g.sendBatch(1, 2, 5).WM)

	a := g.waitAck(g.send([]byte{0xff, 0x00, 0x13}))
	require.Contains(t, a.Error, "malformed")
	require.Equal(t, uint64(2), a.WM)

	// A batch whose payload names another gateway than its topic.
	spoof := &protocol.OpBatch{Header: protocol.Header{WH: "wh1", GW: "other"}, First: 1, Last: 1,
		Ops: []protocol.Op{{Seq: 1, Kind: protocol.OpReceive, Location: "L", SKU: "sku1", Qty: 100}}}
	raw, err := protocol.Encode(spoof)
	require.NoError(t, err)
	g.send(raw)
	// Still answered correctly afterwards, nothing from the spoof applied.
	require.Equal(t, uint64(3), g.sendBatch(3, 3, 1).WM)
	require.Equal(t, map[string]int64{"L/sku1": 11}, stock(t, s, "wh1"))
	wm, err := s.st.Watermark(context.Background(), "wh1", "other")
	require.NoError(t, err)
	require.Zero(t, wm)
}

func TestStatePersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	func() {
		ctx, cancel := context.WithCancel(context.Background())
		cfg := config.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", Root: protocol.DefaultRoot, Workers: 1, LogLevel: "info", LogFormat: "text", Shutdown: time.Second}
		s, err := New(ctx, cfg, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		done := make(chan struct{})
		go func() { defer close(done); _ = s.Run(ctx) }()
		waitFor(t, 5*time.Second, "ingest connected", s.ingest.Connected)
		g := newFakeGateway(t, s.MQTTAddr(), "wh1", "g1")
		require.Equal(t, uint64(4), g.sendBatch(1, 4, 2).WM)
		g.c.Disconnect(10)
		cancel()
		<-done
	}()
	s := startServer(t, dir)
	require.Equal(t, map[string]int64{"L/sku1": 8}, stock(t, s, "wh1"))
	g := newFakeGateway(t, s.MQTTAddr(), "wh1", "g1")
	require.Equal(t, uint64(4), g.sendBatch(1, 4, 2).WM, "a redelivery after restart is a duplicate")
	require.Equal(t, map[string]int64{"L/sku1": 8}, stock(t, s, "wh1"))
}
