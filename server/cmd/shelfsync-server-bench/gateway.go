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
// batches, at most window ops beyond the server's ack, with the agent's
// uplink rules (protocol.Window): go back to ack+1 on a gap answer; when
// no ack comes within the adaptive timeout, ask with a hello and go back
// only if its answer shows ops missing. Like the agent, it compresses its
// batches (ops-deflate) once an ack announced that the server accepts them.
type gateway struct {
	wh, gw  string
	ops     []protocol.Op
	batch   int
	window  uint64
	topics  protocol.Topics
	client  paho.Client
	resends int // batches sent again
	expiry  int // ack timeouts (each asked with a hello)

	acks chan *protocol.Ack // in arrival order, for run

	mu    sync.Mutex
	acked uint64
	any   bool // an ack arrived
	wake  chan struct{}
}

func newGateway(wh, gw string, n, batch int) *gateway {
	g := &gateway{wh: wh, gw: gw, batch: batch, window: 8192, topics: protocol.NewTopics(protocol.DefaultRoot), wake: make(chan struct{}, 1),
		acks: make(chan *protocol.Ack, 4096)}
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
	opts := paho.NewClientOptions().AddBroker(broker).SetClientID(protocol.ClientID(g.wh, g.gw)).
		SetCleanSession(true).SetAutoReconnect(true).SetKeepAlive(30 * time.Second).
		// as the agent: a refused connect (a clustered broker still
		// settling) is tried again
		SetConnectRetry(true).SetConnectRetryInterval(500 * time.Millisecond).
		SetOnConnectHandler(func(c paho.Client) {
			c.Subscribe(g.topics.Down(g.wh, g.gw), 1, g.onDown).Wait()
			g.publish(&protocol.Hello{Header: g.header(), AgentVersion: "bench"})
		})
	g.client = paho.NewClient(opts)
	tok := g.client.Connect()
	if !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
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
		g.any = true
		if v.WM > g.acked {
			g.acked = v.WM
		}
		g.mu.Unlock()
		select {
		case g.acks <- v:
		default: // as the agent's inbox: an ack dropped under overload is asked again
		}
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
	w := protocol.Window{Size: g.window, Timeout: 3 * time.Second}
	w.Reset(0, time.Now())
	var feats protocol.Features
	deadline := time.Now().Add(timeout)
	var sentTo uint64 // the highest seq sent so far
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	answer := func(a *protocol.Ack) {
		feats = a.Features
		w.Probes = feats.Has(protocol.FeatureProbes)
		w.Answer(a.WM, a.Error != "", a.Answers, time.Now())
	}
	for {
		// What has come first (the hello's answer: the features).
	drain:
		for {
			select {
			case a := <-g.acks:
				answer(a)
			default:
				break drain
			}
		}
		if w.Acked >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: acked %d of %d after %s", g.gw, w.Acked, n, timeout)
		}
		for w.Room(n) {
			last := min(w.Next+uint64(g.batch)-1, n)
			ops := g.ops[w.Next-1 : last]
			if last <= sentTo {
				g.resends++
			}
			sentTo = max(sentTo, last)
			g.publish(&protocol.OpBatch{Header: g.header(), First: w.Next, Last: last, Ops: ops, HLC: ops[len(ops)-1].HLC,
				Deflate: feats.Has(protocol.FeatureOpsDeflate)})
			w.Sent(last, time.Now())
		}
		select {
		case a := <-g.acks:
			answer(a)
		case now := <-tick.C:
			if expired, rewound := w.Expire(now); expired {
				g.expiry++
				probe := uint64(0)
				if !rewound {
					probe = w.Ask(now)
				}
				g.publish(&protocol.Hello{Header: g.header(), AgentVersion: "bench", Probe: probe})
			}
		}
	}
}
