// Package ingest consumes gateways' up topics through a broker link
// (brokerlink: in-process to the embedded broker, MQTT to an external one),
// applies op batches to the store with the sequence rule, and answers with
// acks on the down topic.
package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/brokerlink"
	"github.com/shelfsync/shelfsync/server/internal/diskspace"
	"github.com/shelfsync/shelfsync/server/internal/events"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Log attribute keys.
const (
	attrWH    = "warehouse"
	attrGW    = "gateway"
	attrTopic = "topic"
)

// Config configures the ingest.
type Config struct {
	// Link, when set, is the connection to the broker; else an MQTT link
	// is made from Broker, ClientID, Username, Password, TLS, ShareGroup.
	Link     brokerlink.Link
	Broker   string // e.g. tcp://127.0.0.1:1884
	ClientID string
	Username string
	Password string
	Root     string
	Workers  int // parallel appliers; a gateway always maps to the same one
	Queue    int // per-worker queue; a full queue drops (the agent resends)
	// Limits are the per-gateway size, rate and backlog limits (limits.go).
	Limits Limits
	// TLS, when set, is used for ssl:// brokers (CA, client certificate).
	TLS *tls.Config
	// NoDeflate stops announcing protocol.FeatureOpsDeflate in acks, so
	// agents send plain ops messages (set it while older replicas still
	// share the gateways' messages, during a rolling upgrade). Compressed
	// batches are accepted either way.
	NoDeflate bool
	// ShareGroup, when set, subscribes through the shared subscription
	// $share/{ShareGroup}/… so that the replicas of the group split the
	// gateways' messages (deploy/SCALE-OUT.md).
	ShareGroup string
	// Accept, when set, decides in a worker whether this server handles a
	// gateway's message (the warehouse partition: the holder of the
	// warehouse's lease does); messages it refuses are dropped and counted
	// as rejected "other_replica".
	Accept  func(ctx context.Context, wh, gw string) bool
	Logger  *slog.Logger
	Metrics *Metrics
	// Clock is the server's hybrid logical clock, which every message's
	// HLC advances; default a new one.
	Clock *protocol.Clock
	// Events, when set, receives the post-commit event of every applied
	// batch.
	Events events.Publisher
	// OnStatus, when set, receives every gateway status message.
	OnStatus func(st *protocol.Status)
	// OnLostOps, when set, is called after seqs from..to of a gateway were
	// recorded as lost-ops (recovery.go).
	OnLostOps func(wh, gw string, from, to uint64)
	// OnHello, when set, is called after a hello is answered.
	OnHello func(wh, gw string, h *protocol.Hello)
	// OnDownAck, when set, receives every downstream acknowledgement.
	OnDownAck func(wh, gw string, a *protocol.DownAck)
	// ClockMaxOffset is how far ahead of the server's wall clock a
	// gateway's clock may run (default protocol.DefaultMaxOffset); see
	// clock.go.
	ClockMaxOffset time.Duration
	// OnClock, when set, hears when a gateway's clock starts being refused
	// (err, a *protocol.ClockAheadError) and when it is accepted again
	// (nil).
	OnClock func(wh, gw string, err error)
}

// Ingest is a running consumer.
type Ingest struct {
	cfg    Config
	st     store.Store
	topics protocol.Topics
	codec  *protocol.Codec
	feats  protocol.Features // announced in every ack
	link   brokerlink.Link
	clock  *protocol.Clock
	log    *slog.Logger
	m      *Metrics
	queues []chan brokerlink.Message
	lim    *limiter
	clocks clockState
	wg     sync.WaitGroup
}

// New builds an ingest over st; Start connects it.
func New(cfg Config, st store.Store) *Ingest {
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 1024
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.ClientID == "" {
		cfg.ClientID = fmt.Sprintf("shelfsync-server-%d", time.Now().UnixNano())
	}
	if cfg.Clock == nil {
		cfg.Clock = protocol.NewClock(nil)
	}
	cfg.Limits.defaults(cfg.Queue)
	// A compressed batch may inflate to no more than a plain message may
	// be (SPEC.md §5.1): the same MaxMessageBytes bounds both.
	codec, err := protocol.NewCodec(protocol.Limits{MaxInflatedSize: cfg.Limits.MaxMessageBytes})
	if err != nil {
		panic(fmt.Sprintf("ingest: codec: %v", err)) // fixed options: cannot fail
	}
	in := &Ingest{cfg: cfg, st: st, topics: protocol.NewTopics(cfg.Root), codec: codec, clock: cfg.Clock, log: cfg.Logger, m: cfg.Metrics}
	// Ship notices are taken by the server's master data (Options.OnShip).
	in.feats = protocol.FeatureProbes | protocol.FeatureShipNotices
	if !cfg.NoDeflate {
		in.feats |= protocol.FeatureOpsDeflate
	}
	if cfg.ClockMaxOffset > 0 {
		in.clock.SetMaxOffset(cfg.ClockMaxOffset)
	}
	in.clocks.refused = map[string]bool{}
	in.lim = newLimiter(cfg.Limits, nil)
	in.link = cfg.Link
	if in.link == nil {
		in.link = brokerlink.NewMQTT(brokerlink.MQTTConfig{Broker: cfg.Broker, ClientID: cfg.ClientID, Username: cfg.Username,
			Password: cfg.Password, TLS: cfg.TLS, Root: cfg.Root, ShareGroup: cfg.ShareGroup, Logger: cfg.Logger})
	}
	for i := 0; i < cfg.Workers; i++ {
		in.queues = append(in.queues, make(chan brokerlink.Message, cfg.Queue))
	}
	return in
}

// Start connects to the broker (retrying in the background until it is
// reachable), subscribes and starts the workers. It returns at once.
func (in *Ingest) Start(ctx context.Context) {
	for i, q := range in.queues {
		in.wg.Add(1)
		go in.worker(ctx, i, q)
	}
	in.link.Start(in.route)
}

// done tells the link a message is handled or dropped.
func done(msg brokerlink.Message) {
	if msg.Done != nil {
		msg.Done()
	}
}

// route runs on the link's goroutine: it must not block.
func (in *Ingest) route(msg brokerlink.Message) {
	t, err := in.topics.Parse(msg.Topic)
	if err != nil {
		done(msg)
		in.m.Rejected.WithLabelValues("topic").Inc()
		in.log.Warn("message on a malformed topic dropped", attrTopic, msg.Topic, "err", err)
		return
	}
	key := gatewayKey(msg.Topic)
	if reason := in.lim.admit(key, len(msg.Payload)); reason != "" {
		done(msg)
		in.m.Rejected.WithLabelValues(reason).Inc()
		if in.lim.shouldLog(key, reason) {
			in.log.Warn("gateway over its ingest limit; messages dropped (logged once per 10 s)", attrWH, t.Warehouse, attrGW, t.Gateway, "reason", reason, "bytes", len(msg.Payload))
		}
		return
	}
	// A warehouse's gateways share its ledger keys and downstream log, so
	// they apply on one worker (no transaction conflicts between them);
	// warehouses proceed in parallel.
	h := fnv.New32a()
	h.Write([]byte(t.Warehouse))
	q := in.queues[int(h.Sum32())%len(in.queues)]
	select {
	case q <- msg:
	default:
		done(msg)
		in.lim.release(key)
		in.m.Rejected.WithLabelValues("overload").Inc()
		if in.lim.shouldLog(key, "overload") {
			in.log.Warn("ingest queue full; message dropped, the gateway will resend", attrWH, t.Warehouse, attrGW, t.Gateway)
		}
	}
}

// Stop disconnects and waits for the workers.
func (in *Ingest) Stop() {
	in.link.Close()
	for _, q := range in.queues {
		close(q)
	}
	in.wg.Wait()
}

// Connected reports whether the ingest's broker connection is up.
func (in *Ingest) Connected() bool { return in.link.Connected() }

// Group commit bounds: a worker applies the batches queued for its
// gateways together, in one transaction (store.ApplyBatches), up to this
// many ops and message bytes.
const (
	groupOps   = 8192
	groupBytes = 8 << 20
)

func (in *Ingest) worker(ctx context.Context, _ int, q chan brokerlink.Message) {
	defer in.wg.Done()
	var g group
	for msg := range q {
		in.take(ctx, &g, msg)
		// Take what else is queued, up to the bounds, without waiting.
	drain:
		for g.ops < groupOps && g.bytes < groupBytes {
			select {
			case m, ok := <-q:
				if !ok {
					break drain
				}
				in.take(ctx, &g, m)
			default:
				break drain
			}
		}
		in.flush(ctx, &g)
	}
}

// group is a worker's run of queued messages: op batches wait in it to be
// applied together; any other message first applies the batches before
// it, so that each gateway's messages take effect in the order they came.
// The messages are done (acknowledged to the link) once the group is
// applied.
type group struct {
	batches []store.Batch
	logs    []*slog.Logger
	msgs    []brokerlink.Message
	ops     int
	bytes   int
	// applied is each gateway's watermark as this worker's last apply
	// left it (a lower bound of the stored one: watermarks only rise): a
	// queued batch at or below it is a duplicate, answered without
	// joining a transaction.
	applied map[string]uint64
}

// take handles msg as part of g.
func (in *Ingest) take(ctx context.Context, g *group, msg brokerlink.Message) {
	g.msgs = append(g.msgs, msg)
	g.bytes += len(msg.Payload)
	if !in.accepts(ctx, msg.Topic) {
		return
	}
	t, m, log, ok := in.decode(ctx, msg.Topic, msg.Payload)
	if !ok {
		return
	}
	if b, isBatch := m.(*protocol.OpBatch); isBatch {
		if in.admitBatch(ctx, log, t, b, len(msg.Payload)) {
			if b.Last <= g.applied[gatewayKey(msg.Topic)] {
				// A resend of what is applied: ack the stored watermark.
				in.m.Batches.WithLabelValues(protocol.Duplicate.String()).Inc()
				in.m.DroppedDuplicates.Inc()
				in.ack(ctx, t.Warehouse, t.Gateway, "")
				return
			}
			g.batches = append(g.batches, store.Batch{WH: t.Warehouse, GW: t.Gateway, B: b})
			g.logs = append(g.logs, log)
			g.ops += len(b.Ops)
		}
		return
	}
	in.applyGroup(ctx, g)
	in.dispatch(ctx, log, t, m)
}

// applyGroup applies the batches waiting in g and acks each.
func (in *Ingest) applyGroup(ctx context.Context, g *group) {
	if len(g.batches) > 0 {
		rs := in.applyBatches(ctx, g.batches, g.logs)
		if g.applied == nil {
			g.applied = map[string]uint64{}
		}
		for i, r := range rs {
			k := gatewayKey(in.topics.Up(g.batches[i].WH, g.batches[i].GW))
			g.applied[k] = max(g.applied[k], r.WM)
		}
	}
	clear(g.batches)
	clear(g.logs)
	g.batches, g.logs, g.ops = g.batches[:0], g.logs[:0], 0
}

// flush applies what waits and releases the group's messages.
func (in *Ingest) flush(ctx context.Context, g *group) {
	in.applyGroup(ctx, g)
	for _, msg := range g.msgs {
		done(msg)
		in.lim.release(gatewayKey(msg.Topic))
	}
	clear(g.msgs)
	g.msgs, g.bytes = g.msgs[:0], 0
}

// accepts reports whether this server handles a message on topic (see
// Config.Accept).
func (in *Ingest) accepts(ctx context.Context, topic string) bool {
	if in.cfg.Accept == nil {
		return true
	}
	t, err := in.topics.Parse(topic)
	if err != nil || in.cfg.Accept(ctx, t.Warehouse, t.Gateway) {
		return true // handle counts a malformed topic
	}
	in.m.Rejected.WithLabelValues("other_replica").Inc()
	return false
}

// Handle processes one message as if received on topic. Exported for tests
// that feed hostile payloads without a broker.
func (in *Ingest) Handle(ctx context.Context, topic string, payload []byte) {
	in.handle(ctx, topic, payload)
}

func (in *Ingest) handle(ctx context.Context, topic string, payload []byte) {
	t, m, log, ok := in.decode(ctx, topic, payload)
	if !ok {
		return
	}
	if b, isBatch := m.(*protocol.OpBatch); isBatch {
		if in.admitBatch(ctx, log, t, b, len(payload)) {
			in.applyBatches(ctx, []store.Batch{{WH: t.Warehouse, GW: t.Gateway, B: b}}, []*slog.Logger{log})
		}
		return
	}
	in.dispatch(ctx, log, t, m)
}

// decode parses a message's topic and payload; what it cannot accept it
// counts, logs and (an undecodable message on an up topic) answers, and
// reports !ok.
func (in *Ingest) decode(ctx context.Context, topic string, payload []byte) (protocol.Topic, protocol.Message, *slog.Logger, bool) {
	t, err := in.topics.Parse(topic)
	if err != nil {
		in.m.Rejected.WithLabelValues("topic").Inc()
		return t, nil, nil, false
	}
	log := in.log.With(attrWH, t.Warehouse, attrGW, t.Gateway)
	msg, err := in.codec.Decode(payload) // an ops-deflate arrives here already expanded into its OpBatch
	if err != nil {
		in.m.Rejected.WithLabelValues(reasonOf(err)).Inc()
		key := gatewayKey(topic)
		if in.lim.shouldLog(key, "decode") {
			log.Warn("undecodable message rejected (logged once per 10 s per gateway)", "bytes", len(payload), "err", err)
		}
		if t.Kind == protocol.TopicUp && in.lim.allowErrorAck(key) {
			in.ack(ctx, t.Warehouse, t.Gateway, err.Error())
		}
		return t, nil, nil, false
	}
	if wh, gw := msg.Route(); wh != t.Warehouse || gw != t.Gateway {
		in.m.Rejected.WithLabelValues("spoofed").Inc()
		if in.lim.shouldLog(gatewayKey(topic), "spoofed") {
			log.Warn("message names another gateway than its topic; rejected", "payload_wh", wh, "payload_gw", gw)
		}
		return t, nil, nil, false
	}
	return t, msg, log, true
}

// dispatch handles a decoded message other than an op batch.
func (in *Ingest) dispatch(ctx context.Context, log *slog.Logger, t protocol.Topic, msg protocol.Message) {
	switch m := msg.(type) {
	case *protocol.Status:
		if t.Kind == protocol.TopicStatus && in.cfg.OnStatus != nil {
			in.cfg.OnStatus(m)
		}
	case *protocol.Hello:
		if !in.checkClock(ctx, log, t.Warehouse, t.Gateway, m.Type(), m.HLC) {
			return
		}
		log.Info("gateway hello", "last_seq", m.LastSeq, "acked_seq", m.AckedSeq, "epoch", m.Epoch, "agent_version", m.AgentVersion, "first_seq", m.FirstSeq)
		in.recover(ctx, log, t.Warehouse, t.Gateway, m) // recovery.go: lost-ops, a state gone back in time
		in.answer(ctx, t.Warehouse, t.Gateway, m.Probe)
		if in.cfg.OnHello != nil {
			in.cfg.OnHello(t.Warehouse, t.Gateway, m)
		}
	case *protocol.DownAck:
		if in.cfg.OnDownAck != nil {
			in.cfg.OnDownAck(t.Warehouse, t.Gateway, m)
		}
	default:
		in.m.Rejected.WithLabelValues("type").Inc()
		log.Warn("message type not accepted on up topic", "type", msg.Type().String())
	}
}

// admitBatch counts a received batch and checks its clock and its
// consistency; a batch it refuses is answered (error ack) and not applied.
func (in *Ingest) admitBatch(ctx context.Context, log *slog.Logger, t protocol.Topic, b *protocol.OpBatch, size int) bool {
	in.m.countForm(b, size)
	if !in.checkClock(ctx, log, t.Warehouse, t.Gateway, b.Type(), b.HLC) {
		return false
	}
	if err := protocol.CheckBatch(b); err != nil {
		in.m.Rejected.WithLabelValues("batch").Inc()
		log.Warn("inconsistent batch rejected", "err", err)
		in.ack(ctx, t.Warehouse, t.Gateway, err.Error())
		return false
	}
	return true
}

// applyBatches applies batches in order (group commit), then publishes
// one event for those applied and acks each; a batch that failed is not
// acknowledged, and its gateway resends it.
func (in *Ingest) applyBatches(ctx context.Context, batches []store.Batch, logs []*slog.Logger) []store.Result {
	start := time.Now()
	var rs []store.Result
	var err error
	for attempt := 0; ; attempt++ {
		rs, err = in.st.ApplyBatches(ctx, batches)
		if !errors.Is(err, store.ErrConflict) || attempt >= 20 {
			break
		}
	}
	for i, b := range batches[len(rs):] {
		log := logs[len(rs)+i]
		switch {
		case errors.Is(err, diskspace.ErrFull):
			// Not acknowledged: the gateway keeps the ops and resends them;
			// the disk guard logs the state change, /healthz and the
			// metrics say why.
			in.m.Rejected.WithLabelValues("disk_full").Inc()
			if in.lim.shouldLog(gatewayKey(in.topics.Up(b.WH, b.GW)), "disk_full") {
				log.Warn("batch not applied nor acknowledged: the data disk is full (logged once per 10 s per gateway)", "first", b.B.First, "last", b.B.Last, "err", err)
			}
		case err != nil:
			in.m.ApplyErrors.Inc()
			log.Error("apply failed; the batch will be resent", "first", b.B.First, "last", b.B.Last, "err", err)
		}
	}
	took := time.Since(start).Seconds()
	var ev events.Event
	for i, res := range rs {
		b := batches[i]
		in.m.ApplyLatency.Observe(took)
		in.m.Batches.WithLabelValues(res.Verdict.String()).Inc()
		in.m.Ops.Add(float64(res.Applied))
		in.m.Quarantined.Add(float64(res.Quarantined))
		if res.Verdict == protocol.Apply {
			ev.Batches = append(ev.Batches, events.Batch{Warehouse: b.WH, Gateway: b.GW, WM: res.WM,
				Applied: res.Applied, Quarantined: res.Quarantined, Changes: res.Changes, Conflicts: res.Conflicts})
		}
	}
	if len(ev.Batches) > 0 && in.cfg.Events != nil {
		in.cfg.Events.Publish(ev)
	}
	for i, res := range rs {
		b := batches[i]
		errText := ""
		if res.Verdict == protocol.Gap {
			errText = fmt.Sprintf("gap: expected seq %d", res.WM+1)
			logs[i].Info("gap; asking for resend", "first", b.B.First, "wm", res.WM)
		}
		in.publishAck(b.WH, b.GW, res.WM, errText, 0)
	}
	return rs
}

// Publish sends a payload on a gateway's down topic (QoS 1).
func (in *Ingest) Publish(wh, gw string, payload []byte) error {
	return in.link.Publish(in.topics.Down(wh, gw), false, payload)
}

// PublishTopic publishes payload on any topic the server may publish to
// (alerts, channel availability), QoS 1, retained when asked.
func (in *Ingest) PublishTopic(topic string, retained bool, payload []byte) error {
	return in.link.Publish(topic, retained, payload)
}

// Topics returns the topic names under the ingest's root.
func (in *Ingest) Topics() protocol.Topics { return in.topics }

// Clock returns the ingest's hybrid logical clock.
func (in *Ingest) Clock() *protocol.Clock { return in.clock }

func (in *Ingest) ack(ctx context.Context, wh, gw, errText string) {
	in.ackWM(ctx, wh, gw, errText, 0)
}

// answer acks a hello, naming its probe (SPEC.md §6): everything the
// gateway sent before it has been handled.
func (in *Ingest) answer(ctx context.Context, wh, gw string, probe uint64) {
	in.ackWM(ctx, wh, gw, "", probe)
}

func (in *Ingest) ackWM(ctx context.Context, wh, gw, errText string, probe uint64) {
	wm, err := in.st.Watermark(ctx, wh, gw)
	if err != nil {
		in.log.Error("read watermark", attrWH, wh, attrGW, gw, "err", err)
		return
	}
	in.publishAck(wh, gw, wm, errText, probe)
}

func (in *Ingest) publishAck(wh, gw string, wm uint64, errText string, probe uint64) {
	a := &protocol.Ack{Header: protocol.Header{WH: wh, GW: gw}, WM: wm, Epoch: in.st.Epoch(), HLC: in.clock.Now(), Error: errText, Features: in.feats, Answers: probe}
	b, err := protocol.Encode(a)
	if err != nil {
		in.log.Error("encode ack", "err", err)
		return
	}
	if err := in.link.Publish(in.topics.Down(wh, gw), false, b); err != nil {
		in.log.Warn("ack not published; the gateway will ask again", attrWH, wh, attrGW, gw, "err", err)
	}
}

func reasonOf(err error) string {
	switch {
	case errors.Is(err, protocol.ErrInflatedTooLarge):
		return "inflated_too_large" // a decompression bomb, or an oversized compressed batch
	case errors.Is(err, protocol.ErrTooLarge):
		return "too_large"
	case errors.Is(err, protocol.ErrVersion):
		return "version"
	case errors.Is(err, protocol.ErrUnknownType):
		return "type"
	}
	return "malformed"
}
