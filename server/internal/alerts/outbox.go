package alerts

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Outbox publishes alert messages on the alerts topic at least once. The
// message is written in the alert's own transaction (with its webhook), so
// a server killed right after raising an alert cannot lose it; a publisher
// deletes each message once the broker acknowledged it (QoS 1). A crash
// between the two publishes that message again: at least once, in the
// order the alerts were raised.
//
// One replica publishes, the leader (a single server always): others leave
// what they queue to it, which it finds within outboxPoll.
//
//	mq/a/{alert id}\0{queued at, ns, hex}\0{status}   outboxMsg (CBOR)
type Outbox struct {
	rec    store.Records
	active func() bool
	log    *slog.Logger
	wake   chan struct{}
}

// Publisher publishes a payload on an MQTT topic (QoS 1).
type Publisher interface {
	PublishTopic(topic string, retained bool, payload []byte) error
}

type outboxMsg struct {
	Topic   string `cbor:"1,keyasint"`
	Payload []byte `cbor:"2,keyasint"`
}

const (
	pfxOutbox   = "mq/a/"
	outboxPoll  = 500 * time.Millisecond
	outboxChunk = 100
)

// NewOutbox returns the outbox over rec; active reports whether this
// replica publishes now (the leader).
func NewOutbox(rec store.Records, active func() bool, log *slog.Logger) *Outbox {
	return &Outbox{rec: rec, active: active, log: log, wake: make(chan struct{}, 1)}
}

// Queue writes an alert message in tx (the alert's transaction). An
// alert's messages sort by when they were queued (raised, then
// acknowledged).
func (o *Outbox) Queue(tx store.Tx, id, status, topic string, payload []byte) error {
	k := fmt.Sprintf("%s%s\x00%016x\x00%s", pfxOutbox, id, time.Now().UnixNano(), status)
	return store.PutCBOR(tx, []byte(k), outboxMsg{Topic: topic, Payload: payload})
}

// Poke makes the publisher look now (after a commit that queued).
func (o *Outbox) Poke() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Run publishes through pub until ctx ends.
func (o *Outbox) Run(ctx context.Context, pub Publisher) {
	t := time.NewTicker(outboxPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.wake:
		case <-t.C:
		}
		if o.active() {
			o.flush(ctx, pub)
		}
	}
}

// flush publishes what waits, oldest first, until the queue is empty or
// the broker refuses (then the next tick retries).
func (o *Outbox) flush(ctx context.Context, pub Publisher) {
	for ctx.Err() == nil {
		type pending struct {
			key []byte
			msg outboxMsg
		}
		var batch []pending
		var done [][]byte
		err := o.rec.View(func(tx store.Tx) error {
			batch, done = batch[:0], done[:0]
			return tx.Scan([]byte(pfxOutbox), store.ScanOptions{}, func(k, v []byte) error {
				var m outboxMsg
				if err := protocol.Unmarshal(v, &m); err != nil {
					o.log.Error("alert message unreadable; dropped", "key", string(k), "err", err)
					done = append(done, k)
				} else {
					batch = append(batch, pending{k, m})
				}
				if len(batch) == outboxChunk {
					return store.ErrStopScan
				}
				return nil
			})
		})
		if err != nil {
			o.log.Warn("alert messages not read; retrying", "err", err)
			return
		}
		if len(batch) == 0 && len(done) == 0 {
			return
		}
		for _, p := range batch {
			if err := pub.PublishTopic(p.msg.Topic, false, p.msg.Payload); err != nil {
				o.log.Warn("alert message not published; retrying (kept until the broker has it)", "topic", p.msg.Topic, "err", err)
				break
			}
			done = append(done, p.key)
		}
		if len(done) > 0 {
			if err := o.rec.Update(func(tx store.Tx) error {
				for _, k := range done {
					if err := tx.Delete(k); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				o.log.Warn("published alert messages not cleared; they may be published again", "err", err)
				return
			}
		}
		if len(done) < len(batch) {
			return
		}
	}
}
