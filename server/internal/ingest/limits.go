package ingest

import (
	"strings"
	"sync"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
)

// Limits guard the ingest against one gateway hurting the others. They are
// applied in route, on paho's goroutine, before a message is queued: a
// message over a limit is dropped and counted in
// shelfsync_ingest_rejected_total by reason ("too_large", "rate",
// "backlog"); the agent resends what was not acked, so a dropped batch of a
// well-behaved gateway costs a resend, never data.
type Limits struct {
	// MaxMessageBytes drops larger messages before decoding. Default and
	// ceiling: protocol.MaxMessageSize (agents send batches of at most
	// 64 KiB).
	MaxMessageBytes int
	// Rate is the sustained messages per second one gateway may send (a
	// token bucket of Burst). Default 100; negative disables the limit.
	Rate float64
	// Burst is the bucket size. Default 4×Rate (at least 1).
	Burst int
	// MaxPending is how many messages of one gateway may wait in the worker
	// queues at once, so a flood cannot fill a queue it shares with other
	// gateways. Default Queue/8 (at least 16).
	MaxPending int
}

func (l *Limits) defaults(queue int) {
	if l.MaxMessageBytes <= 0 || l.MaxMessageBytes > protocol.MaxMessageSize {
		l.MaxMessageBytes = protocol.MaxMessageSize
	}
	if l.Rate == 0 {
		l.Rate = 500
	}
	if l.Burst <= 0 {
		l.Burst = max(1, int(4*l.Rate))
	}
	if l.MaxPending <= 0 {
		l.MaxPending = max(16, queue/8)
	}
}

// Drop reasons (label values of shelfsync_ingest_rejected_total).
const (
	reasonTooLarge = "too_large"
	reasonRate     = "rate"
	reasonBacklog  = "backlog"
)

const (
	logEvery      = 10 * time.Second // one warning per gateway and reason
	errorAckEvery = time.Second      // one error ack per gateway
	sweepEvery    = time.Minute
)

type gwLimit struct {
	tokens   float64
	last     time.Time
	pending  int
	logged   map[string]time.Time
	errorAck time.Time
}

// limiter keeps per-gateway state, keyed by gatewayKey.
type limiter struct {
	l   Limits
	now func() time.Time

	mu        sync.Mutex
	gws       map[string]*gwLimit
	lastSweep time.Time
}

func newLimiter(l Limits, now func() time.Time) *limiter {
	if now == nil {
		now = time.Now
	}
	return &limiter{l: l, now: now, gws: map[string]*gwLimit{}}
}

// gatewayKey is the topic without its last level: {root}/{wh}/{gw}, the
// same for a gateway's up and status topics.
func gatewayKey(topic string) string {
	if i := strings.LastIndexByte(topic, '/'); i > 0 {
		return topic[:i]
	}
	return topic
}

func (l *limiter) get(key string, now time.Time) *gwLimit {
	g := l.gws[key]
	if g == nil {
		g = &gwLimit{tokens: float64(l.l.Burst), last: now}
		l.gws[key] = g
	}
	return g
}

// admit decides whether a message of size bytes from the gateway key may be
// queued; "" means yes (and the caller must call release after handling
// it), otherwise the drop reason.
func (l *limiter) admit(key string, size int) string {
	if size > l.l.MaxMessageBytes {
		return reasonTooLarge
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	g := l.get(key, now)
	if l.l.Rate > 0 {
		g.tokens += now.Sub(g.last).Seconds() * l.l.Rate
		if b := float64(l.l.Burst); g.tokens > b {
			g.tokens = b
		}
		g.last = now
		if g.tokens < 1 {
			return reasonRate
		}
	}
	if g.pending >= l.l.MaxPending {
		return reasonBacklog
	}
	if l.l.Rate > 0 {
		g.tokens--
	}
	g.pending++
	return ""
}

// release ends the handling of a message admitted for key.
func (l *limiter) release(key string) {
	l.mu.Lock()
	if g := l.gws[key]; g != nil && g.pending > 0 {
		g.pending--
	}
	l.mu.Unlock()
}

// shouldLog reports whether a warning about key and reason is due (at most
// one per logEvery), so a flood cannot flood the log as well.
func (l *limiter) shouldLog(key, reason string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	g := l.get(key, now)
	if g.logged == nil {
		g.logged = map[string]time.Time{}
	}
	if t, ok := g.logged[reason]; ok && now.Sub(t) < logEvery {
		return false
	}
	g.logged[reason] = now
	return true
}

// allowErrorAck reports whether an error ack to key is due (at most one
// per errorAckEvery): garbage must not be answered at the rate it arrives.
func (l *limiter) allowErrorAck(key string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	g := l.get(key, now)
	if now.Sub(g.errorAck) < errorAckEvery {
		return false
	}
	g.errorAck = now
	return true
}

// sweep forgets idle gateways (nothing pending, bucket refilled) so the
// map cannot grow without bound. Called with mu held.
func (l *limiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < sweepEvery {
		return
	}
	l.lastSweep = now
	for k, g := range l.gws {
		if g.pending == 0 && now.Sub(g.last) > sweepEvery && now.Sub(g.errorAck) > sweepEvery {
			delete(l.gws, k)
		}
	}
}
