package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The MQTT side of nats-server keeps its state in five JetStream streams,
// which it creates, on file storage, when the first MQTT client connects;
// streams that already exist it uses as they are (server/mqtt.go there).
// The broker creates them first, in memory, with the same subjects and
// retention:
//
//   - a data disk that fills up (the server refuses batches then, and says
//     so) cannot stop the broker: nats-server makes a stream that once
//     failed a write refuse every later one until it restarts;
//   - nothing the broker holds needs to outlive it: an agent keeps every
//     op in its own outbox until the server's ack carries its watermark,
//     and resends the rest, as it did with the earlier in-memory broker.
//     Replicated (StreamReplicas) in a cluster, the streams outlive a node.
//
// MQTT's own names for them, and their subjects:
const (
	StreamMessages  = "$MQTT_msgs" // QoS 1 and 2 messages until every subscriber has them
	SubjectMessages = "$MQTT.msgs."
	streamSessions  = "$MQTT_sess"
	streamRetained  = "$MQTT_rmsgs"
	streamQoS2In    = "$MQTT_qos2in"
	streamOut       = "$MQTT_out"
)

// Memory bounds. A full message stream refuses new QoS 1 messages: the
// broker closes the publisher's connection, and the agent resends later.
const (
	maxMessagesBytes  = 384 << 20
	maxJetStreamBytes = 512 << 20
)

func mqttStreams(replicas int) []jetstream.StreamConfig {
	mem := jetstream.MemoryStorage
	return []jetstream.StreamConfig{
		{Name: streamSessions, Subjects: []string{"$MQTT.sess.>"}, Storage: mem, Retention: jetstream.LimitsPolicy, Replicas: replicas, MaxMsgsPerSubject: 1},
		{Name: StreamMessages, Subjects: []string{SubjectMessages + ">"}, Storage: mem, Retention: jetstream.InterestPolicy, Replicas: replicas,
			MaxBytes: maxMessagesBytes, Discard: jetstream.DiscardNew},
		{Name: streamQoS2In, Subjects: []string{"$MQTT.qos2.in.>"}, Storage: mem, Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardNew,
			MaxMsgsPerSubject: 1, DiscardNewPerSubject: true, Replicas: replicas},
		{Name: streamOut, Subjects: []string{"$MQTT.out.>"}, Storage: mem, Retention: jetstream.InterestPolicy, Replicas: replicas},
		{Name: streamRetained, Subjects: []string{"$MQTT.rmsgs.>"}, Storage: mem, Retention: jetstream.LimitsPolicy, Replicas: replicas, MaxMsgsPerSubject: 1},
	}
}

// createStreams makes the MQTT streams, in-process, before any MQTT
// client can connect.
func (b *Broker) createStreams(user, password string, replicas int) error {
	opts := []nats.Option{nats.InProcessServer(b.ns), nats.Name("shelfsync-broker-setup")}
	if user != "" {
		opts = append(opts, nats.UserInfo(user, password))
	}
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return fmt.Errorf("in-process connection: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if replicas > 1 {
		return ensureClusterStreams(js, mqttStreams(replicas), 2*time.Minute)
	}
	for _, cfg := range mqttStreams(replicas) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := js.CreateOrUpdateStream(ctx, cfg)
		if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// A client that connected in the moment between the listener
			// opening and this made it on file storage, which cannot be
			// changed: it holds nothing an agent would not resend.
			if derr := js.DeleteStream(ctx, cfg.Name); derr == nil {
				_, err = js.CreateStream(ctx, cfg)
			}
		}
		cancel()
		if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// ensureClusterStreams makes the replicated MQTT streams in a cluster:
// every node starting at once asks; whichever request the meta leader takes
// first creates a stream, the others find it. A request may go unanswered
// while the leader settles, so each is short and repeated until d.
func ensureClusterStreams(js jetstream.JetStream, cfgs []jetstream.StreamConfig, d time.Duration) error {
	deadline := time.Now().Add(d)
	for _, cfg := range cfgs {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := js.Stream(ctx, cfg.Name)
			if errors.Is(err, jetstream.ErrStreamNotFound) {
				_, err = js.CreateStream(ctx, cfg)
				if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
					err = nil
				}
			}
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("stream %s in the cluster: %w", cfg.Name, err)
			}
		}
	}
	return nil
}
