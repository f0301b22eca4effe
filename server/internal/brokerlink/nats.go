package brokerlink

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/broker"
)

// The embedded broker keeps every QoS 1 MQTT message in this JetStream
// stream, under its subject prefixed (nats-server's MQTT implementation;
// server/README-MQTT.md there). A plain NATS message on a topic's subject
// reaches that topic's MQTT subscribers at QoS 0.
const (
	mqttStream        = broker.StreamMessages
	mqttStreamPrefix  = broker.SubjectMessages
	retryInterval     = 500 * time.Millisecond
	maxRetryInterval  = 5 * time.Second
	keepAlive         = 15 * time.Second
	DefaultDurable    = "shelfsync-ingest"
	DefaultMaxPending = 1024
	// maxPendingBytes bounds the bytes handed out and not yet Done, well
	// under what the broker lets one connection have pending.
	maxPendingBytes = 16 << 20
)

// NATSConfig configures a NATS link.
type NATSConfig struct {
	// Server is the embedded broker.
	Server *server.Server
	// Username and Password authenticate the in-process connection (the
	// broker's internal server credential; empty when the broker allows
	// everyone).
	Username, Password string
	Root               string // topic root (default protocol.DefaultRoot)
	// Durable names the JetStream consumer (default DefaultDurable). It
	// outlives restarts: what gateways sent while the server was down is
	// delivered when it is back.
	Durable string
	// MaxPending bounds the messages handed out and not yet Done (default
	// DefaultMaxPending); keep it within what the handler can queue.
	MaxPending int
	// Claim, when set, divides the warehouses between replicas: the link
	// reads the gateways' messages from the broker's warehouse consumers
	// (broker.Config.Warehouses), one per warehouse, and reads a
	// warehouse's only while Claim(ctx, wh) reports true (this replica
	// holds, or has just taken, the warehouse's lease). It is asked again
	// for each warehouse every ClaimInterval. Nil: one consumer, Durable,
	// carries every gateway's messages.
	Claim func(ctx context.Context, wh string) bool
	// ClaimInterval is how often Claim is asked (default 1 s).
	ClaimInterval time.Duration
	// MQTT publishes retained messages (alerts, availability: the NATS
	// side cannot set MQTT's retain flag). Required.
	MQTT   *MQTT
	Logger *slog.Logger
}

// NATS is an in-process link to the embedded broker.
type NATS struct {
	cfg    NATSConfig
	topics protocol.Topics
	log    *slog.Logger

	ready  atomic.Bool
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex
	nc *nats.Conn
	js jetstream.JetStream
	cc jetstream.ConsumeContext
	wh *assigner // with Claim (warehouses.go)
}

var _ Link = (*NATS)(nil)

// NewNATS builds a NATS link; Start connects it.
func NewNATS(cfg NATSConfig) *NATS {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Durable == "" {
		cfg.Durable = DefaultDurable
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.ClaimInterval <= 0 {
		cfg.ClaimInterval = time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &NATS{cfg: cfg, topics: protocol.NewTopics(cfg.Root), log: cfg.Logger, ctx: ctx, cancel: cancel}
}

// Start implements Link.
func (l *NATS) Start(h Handler) {
	l.cfg.MQTT.Start(nil)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.retry(h)
	}()
}

func (l *NATS) retry(h Handler) {
	delay := retryInterval
	for l.ctx.Err() == nil {
		err := l.connect(h)
		if err == nil {
			return
		}
		l.log.Warn("in-process broker link not ready; retrying", "err", err, "in", delay)
		select {
		case <-l.ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, maxRetryInterval)
	}
}

func (l *NATS) connect(h Handler) error {
	opts := []nats.Option{nats.InProcessServer(l.cfg.Server), nats.Name("shelfsync-ingest"), nats.MaxReconnects(-1),
		nats.ClosedHandler(func(*nats.Conn) { l.reconnect(h) })}
	if l.cfg.Username != "" {
		opts = append(opts, nats.UserInfo(l.cfg.Username, l.cfg.Password))
	}
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return err
	}
	ctx, cancel := context.WithTimeout(l.ctx, 10*time.Second)
	defer cancel()
	if h != nil && l.cfg.Claim != nil {
		a, err := l.startAssigner(ctx, nc, js, h)
		if err != nil {
			nc.Close()
			return err
		}
		l.mu.Lock()
		l.nc, l.js, l.wh = nc, js, a
		l.mu.Unlock()
		l.ready.Store(true)
		l.log.Info("ingest connected to the embedded broker in-process; warehouses divided between the replicas")
		return nil
	}
	if h != nil {
		// A warehouse consumer left from a run with Claim would keep
		// every message of its warehouse in the stream for no one.
		deleteConsumers(ctx, js, func(name string) bool { _, ok := broker.ConsumerWarehouse(name); return ok })
	}
	var cons jetstream.Consumer
	if h != nil {
		cons, err = js.CreateOrUpdateConsumer(ctx, mqttStream, jetstream.ConsumerConfig{
			Durable:        l.cfg.Durable,
			Description:    "shelfsync server ingest: every gateway's up and status messages",
			FilterSubjects: []string{mqttStreamPrefix + broker.TopicSubject(l.topics.AllUp()), mqttStreamPrefix + broker.TopicSubject(l.topics.AllStatus())},
			AckPolicy:      jetstream.AckExplicitPolicy,
			AckWait:        time.Minute,
			MaxAckPending:  l.cfg.MaxPending,
			DeliverPolicy:  jetstream.DeliverAllPolicy,
		})
		if err != nil {
			nc.Close()
			return fmt.Errorf("consumer on %s: %w", mqttStream, err)
		}
	}
	l.mu.Lock()
	l.nc, l.js = nc, js
	l.mu.Unlock()
	if h != nil {
		cc, err := cons.Consume(func(m jetstream.Msg) {
			h(Message{Topic: SubjectTopic(strings.TrimPrefix(m.Subject(), mqttStreamPrefix)), Payload: m.Data(), Done: func() { _ = m.Ack() }})
		}, jetstream.PullMaxMessagesWithBytesLimit(l.cfg.MaxPending, maxPendingBytes), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			l.log.Debug("ingest consumer", "err", err)
		}))
		if err != nil {
			return fmt.Errorf("consume: %w", err)
		}
		l.mu.Lock()
		l.cc = cc
		l.mu.Unlock()
	}
	l.ready.Store(true)
	l.log.Info("ingest connected to the embedded broker in-process", "consumer", l.cfg.Durable)
	return nil
}

// reconnect starts over after the in-process connection closed for good
// (the broker cut it off), unless the link is closing.
func (l *NATS) reconnect(h Handler) {
	if l.ctx.Err() != nil {
		return
	}
	l.ready.Store(false)
	l.mu.Lock()
	if l.cc != nil {
		l.cc.Stop()
	}
	wh := l.wh
	l.nc, l.js, l.cc, l.wh = nil, nil, nil, nil
	l.mu.Unlock()
	if wh != nil {
		wh.stop()
	}
	l.log.Warn("in-process broker connection closed; connecting again")
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.retry(h)
	}()
}

// Publish implements Link: a down message goes in-process; a retained one,
// or one before the link is up, through MQTT.
func (l *NATS) Publish(topic string, retained bool, payload []byte) error {
	l.mu.Lock()
	nc := l.nc
	l.mu.Unlock()
	if retained || nc == nil {
		return l.cfg.MQTT.Publish(topic, retained, payload)
	}
	// Straight to the gateway's subscription, delivered at QoS 0: no
	// JetStream round trips on the ack path. Every down message is
	// answered or re-asked by the protocol (a lost ack is asked again, a
	// downstream batch resent until its down-ack), and an agent's session
	// is clean, so QoS 1 protected nothing beyond the open connection.
	return nc.Publish(broker.TopicSubject(topic), payload)
}

// Connected implements Link.
func (l *NATS) Connected() bool {
	l.mu.Lock()
	nc := l.nc
	l.mu.Unlock()
	return l.ready.Load() && nc != nil && nc.IsConnected() && l.cfg.MQTT.Connected()
}

// Close implements Link.
func (l *NATS) Close() {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	cc, nc, wh := l.cc, l.nc, l.wh
	l.mu.Unlock()
	if cc != nil {
		cc.Stop()
	}
	if wh != nil {
		wh.stop()
	}
	if nc != nil {
		nc.Drain()
	}
	l.cfg.MQTT.Close()
}

// SubjectTopic converts a subject of the embedded broker back to its MQTT
// topic (broker.TopicSubject's inverse for topics without wildcards).
func SubjectTopic(subject string) string {
	tokens := strings.Split(subject, ".")
	for i, t := range tokens {
		if t == "/" {
			tokens[i] = ""
			continue
		}
		tokens[i] = strings.ReplaceAll(t, "//", ".")
	}
	return strings.Join(tokens, "/")
}
