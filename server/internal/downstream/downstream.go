// Package downstream sends each connected gateway its warehouse's
// downstream log — stock as latest values per key, master data, tasks and
// server-issued ops — with the same sequence rule and go-back-N window as
// the upstream (protocol.Window).
//
// A gateway far behind upstream (catching up on a backlog: its stated
// last seq is many ops beyond its watermark here) gets its downstream in
// rounds: all of the log up to the head, then nothing new until
// CatchUpEvery has passed since the round began.
// Every commit of its backlog changes the same keys again, and the log
// keeps only a key's latest entry, so a round sends each changed key once
// where sending after every commit sent it once per commit — work the
// gateway, busy sending, could least afford. The log's order, the window
// and the sequence rule are those of every send; only when is different.
// Batches keep MaxItems: an agent applies a batch in one transaction, and
// a gateway's store bounds a transaction (Badger's, with the agent's 4 MiB
// memtables, takes about 6,500 writes: two per stock item and the keys it
// recomputes), so larger batches could never be applied by older agents.
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
	// A gateway that stated a last seq at least CatchUpOps beyond its
	// watermark is catching up: it gets rounds at most every
	// CatchUpEvery. Defaults 4096 ops and 1 s; CatchUpOps < 0 turns
	// rounds off.
	CatchUpOps   int
	CatchUpEvery time.Duration
	Logger       *slog.Logger
	Clock        *protocol.Clock
	Now          func() time.Time // the window's and the rounds' clock; default time.Now
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
	// reported is the last seq the gateway stated (hello, status); wm
	// its watermark here when last read (a lower bound: it only grows
	// while the process runs).
	reported, wm uint64
	// roundHead is the log's head when the latest round of sends began,
	// at roundAt: a round ends when what was sent reaches it.
	roundHead uint64
	roundAt   time.Time
	// inflight holds the last seq of each batch sent and not yet
	// acknowledged, oldest first (cleared when the window goes back).
	inflight []uint64
}

// catchUpBatches bounds the batches in flight to a catching-up gateway
// when the window's seqs would stop a round short of the head. The log is
// compacted, so a round's few hundred items may span more seqs than the
// window; the batch that reaches the head (the only one that carries the
// watermark the agent prunes its pending effects by) then waited for a
// down-ack, which waits in the server's queue behind the gateway's op
// batches, often past the timeout that sends the round again.
const catchUpBatches = 8

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
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CatchUpOps == 0 {
		cfg.CatchUpOps = 4096
	}
	if cfg.CatchUpEvery <= 0 {
		cfg.CatchUpEvery = time.Second
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
	g.reported = h.LastSeq
	g.win.Reset(from, s.cfg.Now())
	g.inflight = g.inflight[:0]
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
	g.win.OnAck(a.DownWM, s.cfg.Now())
	i := 0
	for i < len(g.inflight) && g.inflight[i] <= a.DownWM {
		i++
	}
	g.inflight = append(g.inflight[:0], g.inflight[i:]...)
	s.mu.Unlock()
	s.poke()
}

// Online marks a gateway up or down (from its status and last will).
func (s *Sender) Online(wh, gw string, online bool) {
	s.mu.Lock()
	g := s.state(wh, gw)
	if online && !g.online {
		g.win.Rewind(s.cfg.Now())
		g.inflight = g.inflight[:0]
	}
	g.online = online
	s.mu.Unlock()
	s.poke()
}

// Reported records the last seq a gateway stated in its status: with its
// watermark here it tells whether the gateway is catching up.
func (s *Sender) Reported(wh, gw string, lastSeq uint64) {
	s.mu.Lock()
	s.state(wh, gw).reported = lastSeq
	s.mu.Unlock()
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

// catchingUp reports whether g stated a last seq at least CatchUpOps
// beyond its watermark here. The watermark is read only while the one
// last read leaves it possible.
func (s *Sender) catchingUp(ctx context.Context, k gwKey, g *gwState) bool {
	if s.cfg.CatchUpOps < 0 {
		return false
	}
	s.mu.Lock()
	reported, wm := g.reported, g.wm
	s.mu.Unlock()
	if reported < wm+uint64(s.cfg.CatchUpOps) {
		return false
	}
	wm, err := s.st.Watermark(ctx, k.wh, k.gw)
	if err != nil {
		return false
	}
	s.mu.Lock()
	g.wm = max(g.wm, wm)
	s.mu.Unlock()
	return reported >= wm+uint64(s.cfg.CatchUpOps)
}

func (s *Sender) sendOne(ctx context.Context, pub Publisher, k gwKey) {
	s.mu.Lock()
	g := s.gws[k]
	s.mu.Unlock()
	behind := s.catchingUp(ctx, k, g)
	for {
		s.mu.Lock()
		now := s.cfg.Now()
		if g.win.Expired(now) {
			g.win.Rewind(now)
			g.inflight = g.inflight[:0]
		}
		after := g.win.Next - 1
		if behind && after >= g.roundHead && now.Sub(g.roundAt) < s.cfg.CatchUpEvery {
			s.mu.Unlock() // this round is sent; the next waits (Run's tick)
			return
		}
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
		room := g.win.Next == after+1 && (g.win.Room(r.Head) ||
			behind && g.win.Next <= r.Head && len(g.inflight) < catchUpBatches)
		s.mu.Unlock()
		if !room || r.Last < r.First {
			return
		}
		if err := pub.Publish(k.wh, k.gw, raw); err != nil {
			s.log.Warn("downstream publish failed; will retry", "warehouse", k.wh, "gateway", k.gw, "err", err)
			return
		}
		s.mu.Lock()
		if after >= g.roundHead {
			g.roundHead, g.roundAt = r.Head, now // a round begins
		}
		g.win.Sent(r.Last, s.cfg.Now())
		g.inflight = append(g.inflight, r.Last)
		s.mu.Unlock()
		if r.Last >= r.Head {
			return
		}
	}
}
