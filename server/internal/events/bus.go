package events

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultQueue is a subscriber's queue bound when Options.Queue is 0, in
// records (an event counts one, plus one per op, change, conflict and
// order it holds): about 6 MiB of events at ~100 bytes a record.
const DefaultQueue = 65536

// Publisher is what a committer needs of a Bus.
type Publisher interface {
	Publish(Event)
}

var _ Publisher = (*Bus)(nil)

// Options configure one subscription.
type Options struct {
	// Queue bounds the records waiting for the subscriber (see
	// DefaultQueue). Publish never waits for a subscriber: when an event
	// would overflow the bound, every event still queued is dropped with
	// it, and the subscriber's Resync runs before it receives the next.
	Queue int
	// Resync runs on the subscriber's goroutine after it lost events to a
	// full queue. It must bring the subscriber's view back from the
	// store, which holds every commit up to and past the ones dropped
	// (events that follow may then repeat what it read: handlers must
	// accept that). Nil means the subscriber does not need what it missed
	// (a live feed, say).
	Resync func(ctx context.Context)
}

// Config configures a Bus.
type Config struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer // metrics; nil registers none
}

// Bus delivers each published event to every subscriber, in publish
// order, each on a goroutine of its own.
type Bus struct {
	log *slog.Logger
	m   *metrics

	mu      sync.Mutex
	subs    []*sub
	ctx     context.Context // set by Start
	wg      sync.WaitGroup
	started bool
}

// New returns a bus with no subscribers; Start runs it.
func New(cfg Config) *Bus {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Bus{log: cfg.Logger, m: newMetrics(cfg.Registerer)}
}

// Subscribe calls handle with every event published from now on, on a
// goroutine of the subscription's own (from Start, or at once on a
// started bus). name labels its metrics and logs; names are unique.
func (b *Bus) Subscribe(name string, handle func(context.Context, Event), o Options) {
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	s := &sub{name: name, handle: handle, opt: o, wake: make(chan struct{}, 1), progress: make(chan struct{})}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, x := range b.subs {
		if x.name == name {
			panic(fmt.Sprintf("events: subscriber %q subscribed twice", name))
		}
	}
	b.subs = append(b.subs, s)
	b.m.register(s)
	if b.started {
		b.run(s)
	}
}

// Start delivers events until ctx ends; Wait waits for the deliveries to
// stop after that.
func (b *Bus) Start(ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		return
	}
	b.ctx, b.started = ctx, true
	for _, s := range b.subs {
		b.run(s)
	}
}

func (b *Bus) run(s *sub) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		s.loop(b.ctx, b)
	}()
}

// Wait returns once every subscriber's goroutine has stopped (after the
// context given to Start ended).
func (b *Bus) Wait() { b.wg.Wait() }

// Publish queues ev for every subscriber and returns at once. A nil Bus
// drops it.
func (b *Bus) Publish(ev Event) {
	if b == nil || ev.Empty() {
		return
	}
	b.m.published.Inc()
	w := ev.weight()
	b.mu.Lock()
	subs := b.subs
	b.mu.Unlock()
	for _, s := range subs {
		if dropped := s.push(ev, w); dropped > 0 {
			b.m.dropped.WithLabelValues(s.name).Add(float64(dropped))
		}
	}
}

// Flush waits until every subscriber has handled every event published
// before the call (or, for events it lost, has resynced since), or until
// ctx ends.
func (b *Bus) Flush(ctx context.Context) error {
	b.mu.Lock()
	subs := b.subs
	b.mu.Unlock()
	for _, s := range subs {
		if err := s.waitFor(ctx, s.pushedCount()); err != nil {
			return fmt.Errorf("events: subscriber %s: %w", s.name, err)
		}
	}
	return nil
}

// sub is one subscription: a bounded FIFO and the goroutine that drains it.
type sub struct {
	name   string
	handle func(context.Context, Event)
	opt    Options
	wake   chan struct{}

	mu       sync.Mutex
	q        []queued
	weight   int    // records queued or being handled
	resync   bool   // events were dropped: Resync before the next
	lost     uint64 // events dropped since the last Resync
	pushed   uint64 // events published to s
	done     uint64 // events handled, or dropped and covered by a Resync
	progress chan struct{}
}

type queued struct {
	ev Event
	w  int
}

// push queues ev, or drops it and everything queued when the bound would
// be passed; it returns how many events it dropped.
func (s *sub) push(ev Event, w int) int {
	s.mu.Lock()
	s.pushed++
	dropped := 0
	if s.weight+w > s.opt.Queue {
		dropped = len(s.q) + 1
		for _, x := range s.q {
			s.weight -= x.w
		}
		s.q = nil
		s.resync = true
		s.lost += uint64(dropped)
	} else {
		s.q = append(s.q, queued{ev, w})
		s.weight += w
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return dropped
}

func (s *sub) pushedCount() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pushed
}

func (s *sub) queuedWeight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.weight
}

// advance records n more events done and wakes Flush.
func (s *sub) advance(n uint64, w int) {
	s.mu.Lock()
	s.done += n
	s.weight -= w
	close(s.progress)
	s.progress = make(chan struct{})
	s.mu.Unlock()
}

func (s *sub) waitFor(ctx context.Context, target uint64) error {
	for {
		s.mu.Lock()
		done, ch := s.done, s.progress
		s.mu.Unlock()
		if done >= target {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

func (s *sub) loop(ctx context.Context, b *Bus) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		for ctx.Err() == nil {
			s.mu.Lock()
			q, resync, lost := s.q, s.resync, s.lost
			s.q, s.resync, s.lost = nil, false, 0
			s.mu.Unlock()
			if len(q) == 0 && !resync {
				break
			}
			if resync {
				b.m.resyncs.WithLabelValues(s.name).Inc()
				b.log.Warn("event subscriber fell behind; its queue was dropped and it resyncs from the store",
					"subscriber", s.name, "events_dropped", lost, "queue", s.opt.Queue)
				if s.opt.Resync != nil {
					b.call(s, func() { s.opt.Resync(ctx) })
				}
				s.advance(lost, 0)
			}
			for _, x := range q {
				b.call(s, func() { s.handle(ctx, x.ev) })
				s.advance(1, x.w)
			}
		}
	}
}

// call runs f, turning a panic into a log line and a count: one bad event
// must not stop a subscriber for good.
func (b *Bus) call(s *sub, f func()) {
	defer func() {
		if r := recover(); r != nil {
			b.m.panics.WithLabelValues(s.name).Inc()
			b.log.Error("event subscriber panicked; event skipped", "subscriber", s.name, "panic", fmt.Sprint(r))
		}
	}()
	f()
}
