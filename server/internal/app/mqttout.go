package app

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// mqttOut publishes the server's retained topics (availability) from one
// goroutine, so that a slow or absent broker never holds up ingest: each
// topic keeps only its latest payload until it is published.
type mqttOut struct {
	log  *slog.Logger
	mu   sync.Mutex
	ret  map[string][]byte
	wake chan struct{}
}

// topicPublisher publishes a payload on an MQTT topic (QoS 1): the
// ingest's client.
type topicPublisher interface {
	PublishTopic(topic string, retained bool, payload []byte) error
}

func newMQTTOut(log *slog.Logger) *mqttOut {
	return &mqttOut{log: log, ret: map[string][]byte{}, wake: make(chan struct{}, 1)}
}

func (o *mqttOut) retain(topic string, payload []byte) {
	o.mu.Lock()
	o.ret[topic] = payload
	o.mu.Unlock()
	o.poke()
}

func (o *mqttOut) poke() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// run publishes through pub until ctx ends.
func (o *mqttOut) run(ctx context.Context, pub topicPublisher) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		}
		for !o.flush(pub) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
}

// flush publishes what waits; it reports false when the broker refused.
func (o *mqttOut) flush(pub topicPublisher) bool {
	for {
		o.mu.Lock()
		var topic string
		var payload []byte
		for t, p := range o.ret {
			topic, payload = t, p
			delete(o.ret, t)
			break
		}
		o.mu.Unlock()
		if topic == "" {
			return true
		}
		if err := pub.PublishTopic(topic, true, payload); err != nil {
			o.mu.Lock()
			if _, newer := o.ret[topic]; !newer {
				o.ret[topic] = payload
			}
			o.mu.Unlock()
			return false
		}
	}
}
