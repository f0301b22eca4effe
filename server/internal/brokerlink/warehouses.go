package brokerlink

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shelfsync/shelfsync/server/internal/broker"
)

// assigner reads the warehouse consumers this replica claims
// (NATSConfig.Claim). Every ClaimInterval, and whenever the broker tells
// of a new warehouse, it lists the warehouse consumers of the message
// stream and asks Claim about each: it starts reading a warehouse's
// consumer when Claim says yes and stops when Claim says no (another
// replica holds the warehouse now). A warehouse's consumer is durable and
// shared by the cluster: what one replica was handed and did not
// acknowledge before it died is handed to the next after the consumer's
// AckWait.
type assigner struct {
	l      *NATS
	js     jetstream.JetStream
	h      Handler
	ctx    context.Context
	cancel context.CancelFunc
	wake   chan struct{}
	sub    *nats.Subscription
	stream jetstream.Stream // the message stream, once found (run's)
	wg     sync.WaitGroup

	mu      sync.Mutex
	reading map[string]jetstream.ConsumeContext
}

func (l *NATS) startAssigner(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, h Handler) (*assigner, error) {
	// The one consumer of a run without Claim would keep every message in
	// the stream for no one.
	deleteConsumers(ctx, js, func(name string) bool { return name == l.cfg.Durable })
	a := &assigner{l: l, js: js, h: h, wake: make(chan struct{}, 1), reading: map[string]jetstream.ConsumeContext{}}
	a.ctx, a.cancel = context.WithCancel(l.ctx)
	sub, err := nc.Subscribe(broker.SubjectWarehouse, func(*nats.Msg) { a.poke() })
	if err != nil {
		a.cancel()
		return nil, err
	}
	a.sub = sub
	a.wg.Add(1)
	go a.run()
	return a, nil
}

func (a *assigner) poke() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *assigner) run() {
	defer a.wg.Done()
	t := time.NewTicker(a.l.cfg.ClaimInterval)
	defer t.Stop()
	for {
		a.pass()
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		case <-a.wake:
		}
	}
}

// pass lists the warehouse consumers and claims or gives up each.
func (a *assigner) pass() {
	ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
	defer cancel()
	whs := map[string]bool{}
	if a.stream == nil {
		st, err := a.js.Stream(ctx, mqttStream)
		if err != nil {
			a.l.log.Debug("message stream not found; trying again", "err", err)
			return
		}
		a.stream = st
	}
	names := a.stream.ConsumerNames(ctx)
	for name := range names.Name() {
		if wh, ok := broker.ConsumerWarehouse(name); ok {
			whs[wh] = true
		}
	}
	if err := names.Err(); err != nil {
		a.l.log.Debug("warehouse consumers not listed; trying again", "err", err)
		return
	}
	a.mu.Lock()
	for wh := range a.reading {
		if !whs[wh] {
			// Gone from the cluster (its JetStream state was lost) while
			// this replica reads it: make it again, or the gateways'
			// messages would find no interest and be dropped.
			if _, err := a.js.CreateOrUpdateConsumer(ctx, mqttStream, broker.WarehouseConsumer(a.l.topics, wh)); err != nil {
				a.l.log.Warn("warehouse consumer lost and not made again; trying again", "warehouse", wh, "err", err)
			}
			whs[wh] = true
		}
	}
	a.mu.Unlock()
	for wh := range whs {
		claim := a.l.cfg.Claim(ctx, wh)
		a.mu.Lock()
		cc := a.reading[wh]
		a.mu.Unlock()
		switch {
		case claim && cc == nil:
			a.start(ctx, wh)
		case !claim && cc != nil:
			cc.Stop()
			a.mu.Lock()
			delete(a.reading, wh)
			a.mu.Unlock()
			a.l.log.Info("stopped reading a warehouse: another replica holds it", "warehouse", wh)
		}
	}
}

func (a *assigner) start(ctx context.Context, wh string) {
	cons, err := a.js.Consumer(ctx, mqttStream, broker.WarehouseConsumerName(wh))
	if err != nil {
		a.l.log.Warn("warehouse consumer not found; trying again", "warehouse", wh, "err", err)
		return
	}
	h := a.h
	cc, err := cons.Consume(func(m jetstream.Msg) {
		h(Message{Topic: SubjectTopic(strings.TrimPrefix(m.Subject(), mqttStreamPrefix)), Payload: m.Data(), Done: func() { _ = m.Ack() }})
	}, jetstream.PullMaxMessagesWithBytesLimit(broker.WarehouseMaxAckPending, maxPendingBytes), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		a.l.log.Debug("warehouse consumer", "warehouse", wh, "err", err)
	}))
	if err != nil {
		a.l.log.Warn("warehouse consumer not read; trying again", "warehouse", wh, "err", err)
		return
	}
	a.mu.Lock()
	a.reading[wh] = cc
	a.mu.Unlock()
	a.l.log.Info("reading a warehouse", "warehouse", wh)
}

// stop stops reading every warehouse.
func (a *assigner) stop() {
	a.cancel()
	a.wg.Wait()
	if a.sub != nil {
		_ = a.sub.Unsubscribe()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for wh, cc := range a.reading {
		cc.Stop()
		delete(a.reading, wh)
	}
}

// Reading returns the warehouses this link reads now (with Claim).
func (l *NATS) Reading() []string {
	l.mu.Lock()
	a := l.wh
	l.mu.Unlock()
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.reading))
	for wh := range a.reading {
		out = append(out, wh)
	}
	return out
}

// deleteConsumers deletes the message stream's consumers whose name
// matches (best effort: a consumer it misses is deleted at the next
// start).
func deleteConsumers(ctx context.Context, js jetstream.JetStream, match func(string) bool) {
	st, err := js.Stream(ctx, mqttStream)
	if err != nil {
		return
	}
	names := st.ConsumerNames(ctx)
	var del []string
	for name := range names.Name() {
		if match(name) {
			del = append(del, name)
		}
	}
	for _, name := range del {
		_ = js.DeleteConsumer(ctx, mqttStream, name)
	}
}
