package replica

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"pgregory.net/rapid"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/events"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/postgres"
)

// wire is the database's feed between replicas: every payload sent
// reaches every feed (the sender's own included, which ignores it).
type wire struct {
	mu    sync.Mutex
	feeds []*feed
	sent  [][]byte
	fail  error
}

func (w *wire) Notify(_ context.Context, p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail != nil {
		return w.fail
	}
	if len(p) > postgres.MaxNotify {
		return errors.New("payload over the limit")
	}
	w.sent = append(w.sent, p)
	for _, f := range w.feeds {
		f.receive(p)
	}
	return nil
}

// got collects what a feed published on its bus.
type got struct {
	mu     sync.Mutex
	events []events.Event
	lost   int
}

func (g *got) Publish(ev events.Event) {
	g.mu.Lock()
	g.events = append(g.events, ev)
	g.mu.Unlock()
}

func pair(t *testing.T) (*wire, *feed, *got, *got) {
	w := &wire{}
	ga, gb := &got{}, &got{}
	a := newFeed("a", w, ga, slog.New(slog.DiscardHandler), func() { ga.lost++ })
	b := newFeed("b", w, gb, slog.New(slog.DiscardHandler), func() { gb.lost++ })
	w.feeds = []*feed{a, b}
	return w, a, ga, gb
}

// A batch told in its transaction reaches the other replica as a Remote
// event with each key's last value, split into payloads PostgreSQL takes
// when it is large, whatever the keys.
func TestFeedCarriesEveryKeysLastValue(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		w, a, ga, gb := pair(t)
		name := rapid.StringMatching(`[A-Z0-9-]{1,40}`)
		n := rapid.IntRange(0, 600).Draw(rt, "changes")
		res := &store.Result{Verdict: protocol.Apply, WM: 9, Applied: n, Quarantined: 1}
		want := map[ledger.Key]int64{}
		for i := range n {
			k := ledger.Key{WH: "w1", Location: name.Draw(rt, "loc"), SKU: name.Draw(rt, "sku"), Lot: rapid.SampledFrom([]string{"", "L1"}).Draw(rt, "lot")}
			v := rapid.Int64().Draw(rt, "after")
			res.Changes = append(res.Changes, ledger.Change{Key: k, After: v})
			want[k] = v
			_ = i
		}
		for _, p := range a.applyPayloads("w1", "g1", res) {
			if err := w.Notify(context.Background(), p); err != nil {
				rt.Fatal(err)
			}
		}
		if len(ga.events) != 0 {
			rt.Fatal("a replica published its own message")
		}
		seen := map[ledger.Key]int64{}
		applied := 0
		for _, ev := range gb.events {
			if !ev.Remote || len(ev.Batches) != 1 {
				rt.Fatalf("event %+v: want one remote batch", ev)
			}
			b := ev.Batches[0]
			if b.Warehouse != "w1" || b.Gateway != "g1" || b.WM != 9 {
				rt.Fatalf("batch %+v: wrong origin", b)
			}
			applied += b.Applied
			for _, ch := range b.Changes {
				seen[ch.Key] = ch.After
			}
		}
		if len(seen) != len(want) {
			rt.Fatalf("%d keys told, want %d", len(seen), len(want))
		}
		for k, v := range want {
			if seen[k] != v {
				rt.Fatalf("key %v: told %d, want %d", k, seen[k], v)
			}
		}
		if n > 0 && applied != n {
			rt.Fatalf("applied told %d times over, want once (%d)", applied, n)
		}
	})
}

func TestFeedTellsServerOrdersChannelsAndMasterData(t *testing.T) {
	w, a, _, gb := pair(t)
	ctx := context.Background()
	a.send(ctx, events.Event{Batches: []events.Batch{{Warehouse: "w1", Gateway: "g1", Changes: []ledger.Change{{}}}}}) // told in its transaction
	a.send(ctx, events.Event{Remote: true, MasterData: []string{"w9"}})                                                // not ours: not repeated
	if len(w.sent) != 0 {
		t.Fatalf("sent %d payloads, want none", len(w.sent))
	}
	a.send(ctx, events.Event{
		Batches:    []events.Batch{{Warehouse: "w1", Gateway: protocol.ServerOrigin, Applied: 1, Changes: []ledger.Change{{Key: ledger.Key{WH: "w1", Location: "A", SKU: "S"}, After: 4}}}},
		Orders:     []events.Order{{Warehouse: "w1", ID: "O1", Change: "created", Detail: []byte(`{}`)}},
		Channels:   true,
		MasterData: []string{"w2"},
		Tasks:      []string{"w3"},
	})
	var kinds []string
	for _, ev := range gb.events {
		switch {
		case len(ev.Batches) == 1 && ev.Batches[0].Gateway == protocol.ServerOrigin && ev.Batches[0].Changes[0].After == 4:
			kinds = append(kinds, "batch")
		case len(ev.Orders) == 1 && ev.Orders[0].ID == "O1" && ev.Orders[0].Change == "created" && ev.Orders[0].Detail == nil:
			kinds = append(kinds, "order")
		case ev.Channels:
			kinds = append(kinds, "channels")
		case len(ev.MasterData) == 1 && ev.MasterData[0] == "w2":
			kinds = append(kinds, "masterdata")
		case len(ev.Tasks) == 1 && ev.Tasks[0] == "w3":
			kinds = append(kinds, "tasks")
		default:
			t.Fatalf("unexpected event %+v", ev)
		}
	}
	if want := []string{"batch", "order", "channels", "masterdata", "tasks"}; len(kinds) != len(want) {
		t.Fatalf("received %v, want %v", kinds, want)
	}
}

// A message that could not be sent, or events the feed's queue dropped,
// make the others re-read: "lost" goes out with the next message.
func TestFeedTellsLossesToTheOthers(t *testing.T) {
	w, a, _, gb := pair(t)
	ctx := context.Background()
	w.fail = errors.New("connection refused")
	a.send(ctx, events.Event{Channels: true})
	w.fail = nil
	if gb.lost != 0 {
		t.Fatal("lost told before the database is back")
	}
	a.send(ctx, events.Event{MasterData: []string{"w1"}})
	if gb.lost != 1 || len(gb.events) != 1 {
		t.Fatalf("lost %d, events %d: want the loss told, then the message", gb.lost, len(gb.events))
	}
	a.lostHere(ctx) // the bus dropped the feed's queue
	if gb.lost != 2 {
		t.Fatalf("lost %d after the feed's queue overflowed, want 2", gb.lost)
	}
}

// fakeLeases hands out warehouse leases from a table shared by replicas.
type fakeLeases struct {
	table map[string]string // warehouse → holder
	id    string
	fail  error
}

func (l *fakeLeases) Acquire(_ context.Context, wh, gw string) (bool, bool, error) {
	if gw != wholeWarehouse {
		panic("a gateway lease asked for: " + gw)
	}
	if l.fail != nil {
		return false, false, l.fail
	}
	switch l.table[wh] {
	case l.id:
		return true, false, nil
	case "":
		l.table[wh] = l.id
		return true, true, nil
	}
	return false, false, nil
}
func (l *fakeLeases) Owns(wh, _ string) bool { return l.table[wh] == l.id }
func (l *fakeLeases) Held() int              { return 0 }
func (l *fakeLeases) Run(context.Context)    {}

// One replica handles all of a warehouse's gateways; the other handles
// none of them; each gateway is announced to its handler once per lease.
func TestPartitionGivesAWarehouseToOneReplica(t *testing.T) {
	table := map[string]string{}
	log := slog.New(slog.DiscardHandler)
	a := newPartition(&fakeLeases{table: table, id: "a"}, log)
	b := newPartition(&fakeLeases{table: table, id: "b"}, log)
	ctx := context.Background()
	var told []string
	on := func(wh, gw string) { told = append(told, wh+"/"+gw) }
	for _, m := range []struct {
		p      *Partition
		wh, gw string
		want   bool
	}{
		{a, "w1", "g1", true}, {b, "w1", "g2", false}, {a, "w1", "g2", true}, {a, "w1", "g1", true},
		{b, "w2", "g1", true}, {a, "w2", "g1", false},
	} {
		if got := m.p.Accept(ctx, m.wh, m.gw, on); got != m.want {
			t.Fatalf("Accept(%s/%s) = %v, want %v", m.wh, m.gw, got, m.want)
		}
	}
	if want := []string{"w1/g1", "w1/g2", "w2/g1"}; len(told) != len(want) || told[0] != want[0] || told[1] != want[1] || told[2] != want[2] {
		t.Fatalf("announced %v, want %v", told, want)
	}
	if !a.Owns("w1", "any") || b.Owns("w1", "g2") || !b.Owns("w2", "g9") {
		t.Fatal("Owns disagrees with the leases")
	}
	// a dies; b takes w1 and announces its gateways again
	table["w1"] = ""
	told = nil
	if !b.Accept(ctx, "w1", "g2", on) || len(told) != 1 {
		t.Fatalf("b did not take w1 over (told %v)", told)
	}
	// the database is unreachable: nothing is accepted
	c := newPartition(&fakeLeases{table: table, id: "c", fail: errors.New("down")}, log)
	if c.Accept(ctx, "w3", "g1", on) {
		t.Fatal("accepted without a lease")
	}
}

// A replica skips its own messages without decoding them, whatever its
// id — one that begins with another's, or that JSON escapes — and hears
// every other replica's.
func TestFeedSkipsOnlyItsOwnMessages(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		idA := rapid.String().Draw(rt, "a")
		idB := rapid.OneOf(rapid.Just(idA+"0"), rapid.Just(idA+`"`), rapid.String()).Draw(rt, "b")
		if idA == idB {
			rt.Skip("one id")
		}
		w := &wire{}
		ga, gb := &got{}, &got{}
		a := newFeed(idA, w, ga, slog.New(slog.DiscardHandler), func() {})
		b := newFeed(idB, w, gb, slog.New(slog.DiscardHandler), func() {})
		w.feeds = []*feed{a, b}
		a.send(context.Background(), events.Event{Channels: true})
		b.send(context.Background(), events.Event{MasterData: []string{"w1"}})
		if len(ga.events) != 1 || !ga.events[0].Remote || len(ga.events[0].MasterData) != 1 {
			rt.Fatalf("a got %+v: want only b's message", ga.events)
		}
		if len(gb.events) != 1 || !gb.events[0].Remote || !gb.events[0].Channels {
			rt.Fatalf("b got %+v: want only a's message", gb.events)
		}
	})
}
