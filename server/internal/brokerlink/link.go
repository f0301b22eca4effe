// Package brokerlink is the server's connection to the message broker:
// the gateways' up and status messages in, the server's down, alert and
// availability messages out. MQTT connects to any MQTT broker (an external
// Mosquitto, EMQX, a NATS cluster's MQTT port); NATS reaches the embedded
// broker in-process, reading the gateways' QoS 1 messages from a durable
// JetStream consumer — one for all gateways, or, when replicas divide the
// warehouses (NATSConfig.Claim), one per warehouse read only by the replica
// that holds it (warehouses.go).
package brokerlink

import "time"

// Message is one message from a gateway.
type Message struct {
	Topic   string
	Payload []byte
	// Done, when not nil, must be called once the message is handled (or
	// dropped): the broker then forgets it; until then it redelivers it
	// after a restart.
	Done func()
}

// Handler receives messages in order. It must not block.
type Handler func(Message)

// Link is a connection to the broker.
type Link interface {
	// Start connects in the background, retrying until the broker is
	// reachable, and hands every up and status message to h (nil: publish
	// only).
	Start(h Handler)
	// Publish sends payload on topic with QoS 1, retained when asked, and
	// waits until the broker has it (at most PublishTimeout).
	Publish(topic string, retained bool, payload []byte) error
	// Connected reports whether the link is up.
	Connected() bool
	// Close disconnects.
	Close()
}

// PublishTimeout bounds how long Publish waits for the broker.
const PublishTimeout = 5 * time.Second
