package main

import (
	"errors"
	"fmt"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfsync/shelfsync/protocol"
)

// gateway is a simulated agent with a backlog: it sends its ops in
// batches, at most window ops beyond the server's ack, and goes back to
// ack+1 on a gap answer or when no ack comes for a while — the agent's
// uplink rules, without its store. Like the agent, it compresses its
// batches (ops-deflate) once an ack announced that the server accepts them.
type gateway struct {
	wh, gw  string
	ops     []protocol.Op
	batch   int
	window  uint64
	topics  protocol.Topics
	client  paho.Client
	resends int // batches sent again

	mu    sync.Mutex
	acked uint64
	feats protocol.Features // of the latest ack
	any   bool              // an ack arrived
	gap   bool
	wake  chan struct{}
}

func newGateway(wh, gw string, n, batch int) *gateway {
	g := &gateway{wh: wh, gw: gw, batch: batch, window: 8192, topics: protocol.NewTopics(protocol.DefaultRoot), wake: make(chan struct{}, 1)}
	hlc := protocol.HLC(uint64(time.Now().UnixMilli()) << 16)
	g.ops = make([]protocol.Op, n)
	for i := range g.ops {
		sku := fmt.Sprintf("0400638133%04d", i%100)
		g.ops[i] = protocol.Op{Seq: uint64(i + 1), HLC: hlc + protocol.HLC(i), Kind: protocol.OpReceive,
			Location: "DOCK-" + gw, SKU: sku, Qty: 1, Device: "d1", Operator: "op7", Raw: []string{sku[1:]}}
	}
	return g
}

func (g *gateway) connect(broker string) error {
	opts := paho.NewClientOptions().AddBroker(broker).SetClientID("bench-" + g.wh + "-" + g.gw).
		SetCleanSession(true).SetAutoReconnect(true).SetKeepAlive(30 * time.Second).
		SetOnConnectHandler(func(c paho.Client) {
			c.Subscribe(g.topics.Down(g.wh, g.gw), 1, g.onDown).Wait()
			g.publish(&protocol.Hello{Header: g.header(), AgentVersion: "bench"})
		})
	g.client = paho.NewClient(opts)
	tok := g.client.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("%s: connect: %v", g.gw, tok.Error())
	}
	return nil
}

func (g *gateway) header() protocol.Header { return protocol.Header{WH: g.wh, GW: g.gw} }

func (g *gateway) publish(m protocol.Message) {
	b, err := protocol.Encode(m)
	if err != nil {
		panic(err)
	}
	g.client.Publish(g.topics.Up(g.wh, g.gw), 1, false, b)
}

func (g *gateway) onDown(_ paho.Client, m paho.Message) {
	msg, err := protocol.Decode(m.Payload())
	if err != nil {
		return
	}
	switch v := msg.(type) {
	case *protocol.Ack:
		g.mu.Lock()
		g.any, g.feats = true, v.Features
		if v.WM > g.acked {
			g.acked = v.WM
		}
		if v.Error != "" {
			g.gap = true
		}
		g.mu.Unlock()
		select {
		case g.wake <- struct{}{}:
		default:
		}
	case *protocol.DownBatch:
		g.publish(&protocol.DownAck{Header: g.header(), DownWM: v.Last, Epoch: v.Epoch})
	}
}

// waitAck waits until the server acked at least wm (an ack of 0 answers
// the hello).
func (g *gateway) waitAck(wm uint64, d time.Duration) error {
	deadline := time.After(d)
	for {
		g.mu.Lock()
		got := g.any && g.acked >= wm
		g.mu.Unlock()
		if got {
			return nil
		}
		select {
		case <-g.wake:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			return errors.New("timed out")
		}
	}
}

// run sends the backlog until the server acked all of it.
func (g *gateway) run(timeout time.Duration) error {
	n := uint64(len(g.ops))
	next := uint64(1)
	lastProgress := time.Now()
	deadline := time.Now().Add(timeout)
	for {
		g.mu.Lock()
		acked, gap, deflate := g.acked, g.gap, g.feats.Has(protocol.FeatureOpsDeflate)
		g.gap = false
		g.mu.Unlock()
		if acked >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: acked %d of %d after %s", g.gw, acked, n, timeout)
		}
		if next <= acked {
			next = acked + 1
		}
		if gap || time.Since(lastProgress) > 3*time.Second {
			// Go back N: the batches sent after acked go again.
			if next > acked+1 {
				g.resends += int((next - acked - 1 + uint64(g.batch) - 1) / uint64(g.batch))
			}
			next = acked + 1
			lastProgress = time.Now()
		}
		for next <= n && next-acked-1 < g.window {
			last := min(next+uint64(g.batch)-1, n)
			ops := g.ops[next-1 : last]
			g.publish(&protocol.OpBatch{Header: g.header(), First: next, Last: last, Ops: ops, HLC: ops[len(ops)-1].HLC, Deflate: deflate})
			next = last + 1
		}
		prev := acked
		select {
		case <-g.wake:
		case <-time.After(100 * time.Millisecond):
		}
		g.mu.Lock()
		if g.acked > prev {
			lastProgress = time.Now()
		}
		g.mu.Unlock()
	}
}
