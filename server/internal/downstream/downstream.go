// Package downstream sends each connected gateway its warehouse's
// downstream log — stock as latest values per key, master data, tasks and
// server-issued ops — with the same sequence rule and go-back-N window as
// the upstream (protocol.Window).
package downstream

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Config configures the sender.
type Config struct {
	MaxItems int           // items per batch; default 512
	Window   uint64        // seqs in flight; default 8192
	Timeout  time.Duration // rewind when no down-ack; default 3 s
	Logger   *slog.Logger
	Clock    *protocol.Clock
	// Owns, when set, reports whether this server sends a gateway's
	// downstream (with the warehouse partition, only the holder of its
	// warehouse's lease does).
	Owns func(wh, gw string) bool
}

// Publisher sends a payload on a gateway's down topic (the ingest's MQTT
// client).
type Publisher interface {
	Publish(wh, gw string, payload []byte) error
}

type gwKey struct{ wh, gw string }

type gwState struct {
	win    protocol.Window
	online bool
}

// Sender tracks every gateway's downstream position.
type Sender struct {
	cfg  Config
	st   store.Store
	log  *slog.Logger
	kick chan struct{}

	mu  sync.Mutex
	gws map[gwKey]*gwState
}

// New builds a sender, which tracks gateways' positions at once; Run sends.
func New(cfg Config, st store.Store) *Sender {
	if cfg.MaxItems <= 0 {
		cfg.MaxItems = 512
	}
	if cfg.Window == 0 {
		cfg.Window = 8192
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = protocol.NewClock(nil)
	}
	return &Sender{cfg: cfg, st: st, log: cfg.Logger, kick: make(chan struct{}, 1), gws: map[gwKey]*gwState{}}
}

func (s *Sender) state(wh, gw string) *gwState {
	k := gwKey{wh, gw}
	g, ok := s.gws[k]
	if !ok {
		// A fixed timeout (MaxTimeout = Timeout): the agent answers
		// every downstream batch at once, so a late down-ack means a
		// lost one, not a busy receiver.
		g = &gwState{win: protocol.Window{Size: s.cfg.Window, Timeout: s.cfg.Timeout, MaxTimeout: s.cfg.Timeout}}
		s.gws[k] = g
	}
	return g
}

func (s *Sender) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Hello resumes a gateway's downstream after the position it reports; a
// gateway that last saw another epoch starts again from the beginning.
func (s *Sender) Hello(wh, gw string, h *protocol.Hello) {
	from := h.DownSeq
	if h.Epoch != s.st.Epoch() {
		from = 0
	}
	s.mu.Lock()
	g := s.state(wh, gw)
	g.online = true
	g.win.Reset(from, time.Now())
	s.mu.Unlock()
	s.poke()
}

// Acked records a gateway's down-ack.
func (s *Sender) Acked(wh, gw string, a *protocol.DownAck) {
	if a.Epoch != s.st.Epoch() {
		return
	}
	s.mu.Lock()
	g := s.state(wh, gw)
	g.win.OnAck(a.DownWM, time.Now())
	s.mu.Unlock()
	s.poke()
}

// Online marks a gateway up or down (from its status and last will).
func (s *Sender) Online(wh, gw string, online bool) {
	s.mu.Lock()
	g := s.state(wh, gw)
	if online && !g.online {
		g.win.Rewind(time.Now())
	}
	g.online = online
	s.mu.Unlock()
	s.poke()
}

// Changed tells the sender that wh's log grew ("": any warehouse's).
func (s *Sender) Changed(string) { s.poke() }

// DownAcked returns a gateway's acknowledged downstream position.
func (s *Sender) DownAcked(wh, gw string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.gws[gwKey{wh, gw}]; ok {
		return g.win.Acked
	}
	return 0
}

// Run sends through pub until ctx is done.
func (s *Sender) Run(ctx context.Context, pub Publisher) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-tick.C:
		}
		s.sendAll(ctx, pub)
	}
}

func (s *Sender) sendAll(ctx context.Context, pub Publisher) {
	s.mu.Lock()
	keys := make([]gwKey, 0, len(s.gws))
	for k, g := range s.gws {
		if g.online && (s.cfg.Owns == nil || s.cfg.Owns(k.wh, k.gw)) {
			keys = append(keys, k)
		}
	}
	s.mu.Unlock()
	for _, k := range keys {
		s.sendOne(ctx, pub, k)
	}
}

func (s *Sender) sendOne(ctx context.Context, pub Publisher, k gwKey) {
	for {
		s.mu.Lock()
		g := s.gws[k]
		now := time.Now()
		if g.win.Expired(now) {
			g.win.Rewind(now)
		}
		after := g.win.Next - 1
		s.mu.Unlock()
		var r store.DownRead
		var raw []byte
		// A batch must fit in one message (protocol.MaxMessageSize): with
		// large items (a purchase order of many lines) fewer are sent.
		for n := s.cfg.MaxItems; ; n /= 2 {
			var err error
			r, err = s.st.DownFrom(ctx, k.wh, k.gw, after, n)
			if err != nil {
				s.log.Error("read downstream log", "warehouse", k.wh, "gateway", k.gw, "err", err)
				return
			}
			b := &protocol.DownBatch{Header: protocol.Header{WH: k.wh, GW: k.gw}, First: r.First, Last: r.Last,
				Items: r.Items, Epoch: s.st.Epoch(), UpWM: r.UpWM, HLC: s.cfg.Clock.Now()}
			raw, err = protocol.Encode(b)
			if errors.Is(err, protocol.ErrTooLarge) && n > 1 {
				continue
			}
			if err != nil {
				s.log.Error("encode downstream batch (an item larger than a message?)", "warehouse", k.wh, "gateway", k.gw, "after", after, "err", err)
				return
			}
			break
		}
		s.mu.Lock()
		room := g.win.Room(r.Head) && g.win.Next == after+1
		s.mu.Unlock()
		if !room || r.Last < r.First {
			return
		}
		if err := pub.Publish(k.wh, k.gw, raw); err != nil {
			s.log.Warn("downstream publish failed; will retry", "warehouse", k.wh, "gateway", k.gw, "err", err)
			return
		}
		s.mu.Lock()
		g.win.Sent(r.Last, time.Now())
		s.mu.Unlock()
		if r.Last >= r.Head {
			return
		}
	}
}
