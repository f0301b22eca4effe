package broker

import (
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Per-gateway publish limits at the broker, before fan-out: one gateway's
// flood must not fill the server's outbound queue at the broker (mochi drops
// messages for a subscriber whose queue is full, whoever sent them). A
// publish over a limit is acknowledged and not forwarded (pk.Ignore), as
// Mosquitto does with a publish its ACL denies; the agent resends what the
// server did not ack. The server identity is not limited.

type bucket struct {
	tokens  float64
	last    time.Time
	second  time.Time // start of the current one-second window
	dropped int       // rate drops in that window
}

// floodFactor: a client that sends over this many times its rate (and at
// least floodMin messages) within one second beyond its limit is
// disconnected — dropping alone would still let it burn the broker's CPU at
// line rate.
const (
	floodFactor = 10
	floodMin    = 1000
)

type publishLimiter struct {
	rate    float64
	burst   float64
	maxSize int
	now     func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

func newPublishLimiter(rate float64, burst, maxSize int) *publishLimiter {
	if burst <= 0 {
		burst = max(1, int(4*rate))
	}
	return &publishLimiter{rate: rate, burst: float64(burst), maxSize: maxSize, now: time.Now, buckets: map[string]*bucket{}}
}

// admit returns "" when id may publish size bytes now, else the reason:
// "size", "rate", or "flood" (disconnect the client).
func (l *publishLimiter) admit(id string, size int) string {
	if l.maxSize > 0 && size > l.maxSize {
		return "size"
	}
	if l.rate <= 0 {
		return ""
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > time.Minute {
		l.lastSweep = now
		for k, b := range l.buckets {
			if now.Sub(b.last) > time.Minute {
				delete(l.buckets, k)
			}
		}
	}
	b := l.buckets[id]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[id] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		if now.Sub(b.second) >= time.Second {
			b.second, b.dropped = now, 0
		}
		b.dropped++
		if b.dropped > max(floodMin, int(floodFactor*l.rate)) {
			b.dropped = 0
			return "flood"
		}
		return "rate"
	}
	b.tokens--
	return ""
}

// OnPublish drops (acknowledged, not forwarded) a gateway's publish that
// exceeds its size or rate limit.
func (h *AuthHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if h.lim == nil || cl.Net.Inline {
		return pk, nil
	}
	id := string(cl.Properties.Username)
	if h.roleOf(id) == RoleServer {
		return pk, nil
	}
	if reason := h.lim.admit(id, len(pk.Payload)); reason != "" {
		h.m.PublishDropped.WithLabelValues(reason).Inc()
		if reason == "flood" {
			h.log.Warn("gateway keeps flooding past its publish rate; disconnected", "identity", id, "remote", cl.Net.Remote)
			cl.Stop(packets.ErrRejectPacket)
		}
		return pk, packets.CodeSuccessIgnore
	}
	return pk, nil
}
