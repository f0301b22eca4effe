package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/shelfsync/shelfsync/protocol"
)

// Warehouse consumers. With Config.Warehouses the ingest does not read
// every gateway's messages through one consumer: the broker keeps one
// durable JetStream consumer per warehouse on the MQTT message stream,
// filtered on that warehouse's up and status topics, and the replicas
// divide the consumers between them (brokerlink reads a warehouse's
// consumer only on the replica that holds the warehouse's lease). So a
// message reaches one replica, and only the one that applies it.
//
// The message stream keeps a message only while some consumer wants it
// (interest retention): a gateway's first message would be dropped if its
// warehouse's consumer did not exist yet. So the broker makes the consumer
// when the gateway connects, in the authentication hook, before the
// CONNACK lets it publish; a gateway whose consumer cannot be made (no
// JetStream quorum) is refused, and connects again later (to this node or
// another).
const (
	// WarehouseConsumerPrefix begins the name of every warehouse consumer.
	WarehouseConsumerPrefix = "shelfsync-wh-"
	// SubjectWarehouse carries, inside the cluster, the name of a
	// warehouse whose consumer was just made, so that the replicas assign
	// it at once rather than at their next look at the consumer list.
	SubjectWarehouse = "$SHELFSYNC.warehouse"
	// WarehouseMaxAckPending bounds each warehouse consumer's messages
	// handed out and not yet acknowledged.
	WarehouseMaxAckPending = 256
	// warehouseKnownFor is how long the hook trusts that a consumer it
	// made still exists before it asks JetStream again.
	warehouseKnownFor = 30 * time.Second
)

// WarehouseConsumerName returns the durable name of wh's consumer. A
// consumer name may not hold '.', which an ID may: it is written ':'
// (which no ID holds).
func WarehouseConsumerName(wh string) string {
	return WarehouseConsumerPrefix + strings.ReplaceAll(wh, ".", ":")
}

// ConsumerWarehouse returns the warehouse of a warehouse consumer's name;
// ok is false for any other consumer.
func ConsumerWarehouse(name string) (wh string, ok bool) {
	rest, ok := strings.CutPrefix(name, WarehouseConsumerPrefix)
	if !ok || rest == "" {
		return "", false
	}
	wh = strings.ReplaceAll(rest, ":", ".")
	if protocol.ValidateID(wh) != nil {
		return "", false
	}
	return wh, true
}

// WarehouseConsumer returns the configuration of wh's consumer: its
// gateways' up and status messages, acknowledged one by one once applied.
func WarehouseConsumer(topics protocol.Topics, wh string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:     WarehouseConsumerName(wh),
		Description: "shelfsync ingest: the up and status messages of warehouse " + wh,
		FilterSubjects: []string{
			SubjectMessages + TopicSubject(topics.Up(wh, "+")),
			SubjectMessages + TopicSubject(topics.Status(wh, "+")),
		},
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Minute,
		MaxAckPending: WarehouseMaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// The stream is in memory (streams.go); so is what the consumer
		// has delivered and had acknowledged.
		MemoryStorage: true,
	}
}

// warehouses makes warehouse consumers for the authentication hook.
type warehouses struct {
	topics protocol.Topics
	mu     sync.Mutex
	nc     *nats.Conn
	js     jetstream.JetStream
	known  map[string]time.Time // warehouse → when its consumer was last made or found
}

func newWarehouses(root string) *warehouses {
	return &warehouses{topics: protocol.NewTopics(root), known: map[string]time.Time{}}
}

// open connects in-process once the broker's streams exist.
func (w *warehouses) open(b *Broker, user, password string) error {
	opts := []nats.Option{nats.InProcessServer(b.ns), nats.Name("shelfsync-broker-warehouses"), nats.MaxReconnects(-1)}
	if user != "" {
		opts = append(opts, nats.UserInfo(user, password))
	}
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return fmt.Errorf("in-process connection: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return err
	}
	w.mu.Lock()
	w.nc, w.js = nc, js
	w.mu.Unlock()
	return nil
}

func (w *warehouses) close() {
	w.mu.Lock()
	nc := w.nc
	w.nc, w.js = nil, nil
	w.mu.Unlock()
	if nc != nil {
		nc.Close()
	}
}

// errStarting refuses gateways until the broker's streams exist.
var errStarting = errors.New("the embedded broker is starting")

// ensure makes sure wh's consumer exists.
func (w *warehouses) ensure(wh string) error {
	w.mu.Lock()
	js, nc := w.js, w.nc
	at, ok := w.known[wh]
	w.mu.Unlock()
	if js == nil {
		return errStarting
	}
	if ok && time.Since(at) < warehouseKnownFor {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateConsumer(ctx, StreamMessages, WarehouseConsumer(w.topics, wh)); err != nil {
		return fmt.Errorf("consumer of warehouse %s: %w", wh, err)
	}
	w.mu.Lock()
	_, had := w.known[wh]
	w.known[wh] = time.Now()
	w.mu.Unlock()
	if !had {
		_ = nc.Publish(SubjectWarehouse, []byte(wh))
	}
	return nil
}

// clientWarehouses returns the warehouses a client id of a gateway
// (protocol.ClientID) may name. Without authentication the hook knows a
// gateway only by its client id, "shelfsync-agent-{wh}-{gw}", where '-'
// may also occur inside the IDs: every split into two valid IDs is a
// candidate (a consumer of a warehouse that has no gateways costs
// nothing).
func clientWarehouses(cid string) []string {
	rest, ok := strings.CutPrefix(cid, "shelfsync-agent-")
	if !ok {
		return nil
	}
	rest = strings.ReplaceAll(rest, ":", ".")
	var out []string
	for i := 0; i < len(rest); i++ {
		if rest[i] != '-' {
			continue
		}
		wh, gw := rest[:i], rest[i+1:]
		if protocol.ValidateID(wh) == nil && protocol.ValidateID(gw) == nil {
			out = append(out, wh)
		}
	}
	return out
}
