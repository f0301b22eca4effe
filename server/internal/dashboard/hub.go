package dashboard

import (
	"encoding/json"
	"sync"
)

// Message is one server-sent event.
type Message struct {
	ID   uint64
	Type string // batch, conflict, alert, availability, order, gateway
	Data []byte // JSON
}

// Hub fans events out to the dashboard's live connections. A subscriber
// that falls behind by Buffer messages is dropped (its browser reconnects
// and reloads what it shows); publishing never blocks.
type Hub struct {
	// Buffer is each subscriber's queue length (default 256).
	Buffer int

	mu     sync.Mutex
	seq    uint64
	subs   map[chan Message]struct{}
	closed bool
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{Buffer: 256, subs: map[chan Message]struct{}{}} }

// Publish sends an event to every subscriber.
func (h *Hub) Publish(typ string, data any) {
	b, err := json.Marshal(data)
	if err != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.seq++
	m := Message{ID: h.seq, Type: typ, Data: b}
	for ch := range h.subs {
		select {
		case ch <- m:
		default: // too slow: drop it; it reconnects
			delete(h.subs, ch)
			close(ch)
		}
	}
}

// Subscribe returns a channel of events, closed when the hub drops the
// subscriber or closes, and a function that unsubscribes.
func (h *Hub) Subscribe() (<-chan Message, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := make(chan Message, max(h.Buffer, 1))
	if h.closed {
		close(ch)
		return ch, func() {}
	}
	h.subs[ch] = struct{}{}
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
	}
}

// Subscribers returns the number of live subscribers.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Close ends every subscription (at server shutdown, so that open event
// streams do not hold it up).
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}
