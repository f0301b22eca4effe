package events

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"pgregory.net/rapid"

	"github.com/shelfsync/shelfsync/protocol/ledger"
)

// ev is an event whose one batch's WM carries id, weighing 1+1+changes.
func ev(id uint64, changes int) Event {
	return Event{Batches: []Batch{{Warehouse: "w", Gateway: "g", WM: id, Changes: make([]ledger.Change, changes)}}}
}

// recorder keeps what a subscriber saw: event ids, and 0 for a resync.
type recorder struct {
	mu  sync.Mutex
	got []uint64
}

func (r *recorder) handle(_ context.Context, e Event) {
	r.mu.Lock()
	r.got = append(r.got, e.Batches[0].WM)
	r.mu.Unlock()
}

func (r *recorder) resync(context.Context) {
	r.mu.Lock()
	r.got = append(r.got, 0)
	r.mu.Unlock()
}

func (r *recorder) seen() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.got...)
}

func start(t *testing.T, b *Bus) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b.Start(ctx)
	t.Cleanup(func() {
		cancel()
		b.Wait() // every subscriber's goroutine stops
	})
}

func flush(t *testing.T, b *Bus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestEverySubscriberGetsEveryEventInOrder(t *testing.T) {
	b := New(Config{})
	var a, c recorder
	b.Subscribe("a", a.handle, Options{})
	b.Publish(ev(1, 0)) // before Start: queued
	start(t, b)
	b.Subscribe("c", c.handle, Options{}) // after Start: from now on
	for id := uint64(2); id <= 100; id++ {
		b.Publish(ev(id, 3))
	}
	b.Publish(Event{}) // empty: not published
	flush(t, b)
	for name, r := range map[string]*recorder{"a": &a, "c": &c} {
		got := r.seen()
		first := uint64(1)
		if name == "c" {
			first = 2
		}
		if len(got) != int(101-first) {
			t.Fatalf("%s saw %d events, want %d", name, len(got), 101-first)
		}
		for i, id := range got {
			if id != first+uint64(i) {
				t.Fatalf("%s: event %d is %d, want %d (order)", name, i, id, first+uint64(i))
			}
		}
	}
}

// A subscriber that does not keep up never holds up Publish: its queue is
// dropped, it resyncs, then receives what follows. The others lose nothing.
func TestSlowSubscriberResyncs(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := New(Config{Registerer: reg})
	gate, holding := make(chan struct{}), make(chan struct{})
	var slow, fast recorder
	b.Subscribe("slow", func(ctx context.Context, e Event) {
		if e.Batches[0].WM == 1 {
			close(holding)
			<-gate // stuck on the first event
		}
		slow.handle(ctx, e)
	}, Options{Queue: 10, Resync: slow.resync})
	b.Subscribe("fast", fast.handle, Options{})
	start(t, b)
	b.Publish(ev(1, 0))
	<-holding // what follows queues behind event 1
	done := make(chan struct{})
	go func() {
		for id := uint64(2); id <= 20; id++ { // weight 3 each: the bound of 10 overflows
			b.Publish(ev(id, 1))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Publish blocked on a stuck subscriber")
	}
	if d := testutil.ToFloat64(b.m.dropped.WithLabelValues("slow")); d == 0 {
		t.Fatal("no drop counted for the stuck subscriber")
	}
	b.Publish(ev(21, 0))
	close(gate)
	flush(t, b)
	got := slow.seen()
	if got[0] != 1 || got[len(got)-1] != 21 {
		t.Fatalf("slow saw %v: want 1 first and 21 last", got)
	}
	checkDelivery(t, got, 21)
	if n := testutil.ToFloat64(b.m.resyncs.WithLabelValues("slow")); n != 1 {
		t.Fatalf("resyncs = %v, want 1", n)
	}
	if len(fast.seen()) != 21 {
		t.Fatalf("fast saw %d events, want all 21", len(fast.seen()))
	}
	if n, err := testutil.GatherAndCount(reg, "shelfsync_events_queued"); err != nil || n != 2 {
		t.Fatalf("queue gauges: %d, %v; want one per subscriber", n, err)
	}
}

func TestHandlerPanicSkipsTheEvent(t *testing.T) {
	b := New(Config{})
	var r recorder
	b.Subscribe("p", func(ctx context.Context, e Event) {
		if e.Batches[0].WM == 2 {
			panic("bad event")
		}
		r.handle(ctx, e)
	}, Options{})
	start(t, b)
	for id := uint64(1); id <= 3; id++ {
		b.Publish(ev(id, 0))
	}
	flush(t, b)
	if got := r.seen(); len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Fatalf("saw %v, want [1 3]", got)
	}
	if n := testutil.ToFloat64(b.m.panics.WithLabelValues("p")); n != 1 {
		t.Fatalf("panics = %v, want 1", n)
	}
}

func TestFlushEndsWithItsContext(t *testing.T) {
	b := New(Config{})
	gate := make(chan struct{})
	b.Subscribe("stuck", func(context.Context, Event) { <-gate }, Options{})
	start(t, b)
	defer close(gate)
	b.Publish(ev(1, 0))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := b.Flush(ctx); err == nil {
		t.Fatal("Flush returned nil with a subscriber stuck")
	}
}

func TestSubscribeTwicePanics(t *testing.T) {
	b := New(Config{})
	b.Subscribe("x", func(context.Context, Event) {}, Options{})
	defer func() {
		if recover() == nil {
			t.Fatal("a second subscription under one name was accepted")
		}
	}()
	b.Subscribe("x", func(context.Context, Event) {}, Options{})
}

// The delivery rule, whatever the timing: a subscriber sees events in
// publish order, and each event it does not see was dropped before a
// resync that it sees after every earlier event and before every later
// one.
func TestDeliveryProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		queue := rapid.IntRange(1, 40).Draw(rt, "queue")
		n := rapid.IntRange(1, 200).Draw(rt, "events")
		weights := rapid.SliceOfN(rapid.IntRange(0, 8), n, n).Draw(rt, "changes")
		stallEvery := rapid.IntRange(0, 5).Draw(rt, "stall_every")
		b := New(Config{})
		var r recorder
		b.Subscribe("s", func(ctx context.Context, e Event) {
			if stallEvery > 0 && e.Batches[0].WM%uint64(stallEvery) == 0 {
				for range 100 { // a slow handler, to make drops happen
					runtime.Gosched()
				}
			}
			r.handle(ctx, e)
		}, Options{Queue: queue, Resync: r.resync})
		ctx, cancel := context.WithCancel(context.Background())
		defer func() { cancel(); b.Wait() }()
		b.Start(ctx)
		for i, w := range weights {
			b.Publish(ev(uint64(i+1), w))
		}
		fctx, fcancel := context.WithTimeout(context.Background(), time.Minute)
		defer fcancel()
		if err := b.Flush(fctx); err != nil {
			rt.Fatal(err)
		}
		checkDelivery(rt, r.seen(), uint64(n))
	})
}

// checkDelivery checks got (ids, 0 for a resync) against events 1..n.
func checkDelivery(t interface{ Fatalf(string, ...any) }, got []uint64, n uint64) {
	var last uint64
	resynced := false // a resync since the last event seen
	for _, id := range got {
		if id == 0 {
			resynced = true
			continue
		}
		if id <= last {
			t.Fatalf("saw %v: event %d after %d", got, id, last)
		}
		if id != last+1 && !resynced {
			t.Fatalf("saw %v: events %d..%d missing and no resync before %d", got, last+1, id-1, id)
		}
		last, resynced = id, false
	}
	if last != n && !resynced {
		t.Fatalf("saw %v: events after %d missing and no resync at the end", got, last)
	}
}
