package replica

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/events"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/postgres"
)

// notifier is the feed's side of the database (store/postgres: feed.go).
type notifier interface {
	Notify(ctx context.Context, payload []byte) error
}

// feed tells the other replicas what this one committed, and publishes
// what they tell on this replica's bus.
type feed struct {
	id   string
	db   notifier
	bus  events.Publisher
	log  *slog.Logger
	lost func() // this replica may have missed messages
	self []byte // how every message this replica sends begins: {"f":id,

	owe      atomic.Bool // a message was not sent: tell the others "lost"
	sent     prometheus.Counter
	received prometheus.Counter
}

// feedMsg is one message of the feed (JSON, ≤ postgres.MaxNotify bytes).
type feedMsg struct {
	From        string    `json:"f"`
	Kind        string    `json:"k"` // batch, order, channels, masterdata, tasks, lost
	WH          string    `json:"w,omitempty"`
	GW          string    `json:"g,omitempty"`
	ID          string    `json:"i,omitempty"` // order id
	Change      string    `json:"c,omitempty"` // order change
	WM          uint64    `json:"m,omitempty"`
	Applied     int       `json:"a,omitempty"`
	Quarantined int       `json:"q,omitempty"`
	Keys        []feedKey `json:"s,omitempty"`
}

// feedKey is a stock key a batch changed and its on-hand after it.
type feedKey struct {
	Location string `json:"l"`
	SKU      string `json:"s"`
	Lot      string `json:"t,omitempty"`
	OnHand   int64  `json:"v"`
	Owner    string `json:"o,omitempty"`
	Status   uint8  `json:"st,omitempty"`
}

const (
	kindBatch      = "batch"
	kindOrder      = "order"
	kindChannels   = "channels"
	kindMasterData = "masterdata"
	kindTasks      = "tasks"
	kindLost       = "lost"
)

func newFeed(id string, db notifier, bus events.Publisher, log *slog.Logger, lost func()) *feed {
	self, _ := json.Marshal(feedMsg{From: id})
	return &feed{id: id, db: db, bus: bus, log: log, lost: lost, self: append(self[:len(self)-len(`,"k":""}`)], ','),
		sent:     prometheus.NewCounter(prometheus.CounterOpts{Name: "shelfsync_replica_feed_sent_total", Help: "Replica feed messages this replica sent."}),
		received: prometheus.NewCounter(prometheus.CounterOpts{Name: "shelfsync_replica_feed_received_total", Help: "Replica feed messages this replica received from the others."}),
	}
}

func (f *feed) metrics(reg prometheus.Registerer) { reg.MustRegister(f.sent, f.received) }

// batchMsg is the feed message of an applied batch: its figures and the
// last value of each key it changed.
func batchMsg(b events.Batch) feedMsg {
	m := feedMsg{Kind: kindBatch, WH: b.Warehouse, GW: b.Gateway, WM: b.WM, Applied: b.Applied, Quarantined: b.Quarantined}
	at := map[ledger.Key]int{}
	for _, ch := range b.Changes {
		k := feedKey{Location: ch.Key.Location, SKU: ch.Key.SKU, Lot: ch.Key.Lot, OnHand: ch.After, Owner: ch.Key.Owner, Status: uint8(ch.Key.Status)}
		if i, ok := at[ch.Key]; ok {
			m.Keys[i] = k
			continue
		}
		at[ch.Key] = len(m.Keys)
		m.Keys = append(m.Keys, k)
	}
	return m
}

// messages returns the feed messages of a local event. Gateways' batches
// are told from their apply transaction (applyPayloads), not here.
func messages(ev events.Event) []feedMsg {
	var out []feedMsg
	for _, b := range ev.Batches {
		if b.Gateway == protocol.ServerOrigin {
			out = append(out, batchMsg(b))
		}
	}
	for _, o := range ev.Orders {
		out = append(out, feedMsg{Kind: kindOrder, WH: o.Warehouse, ID: o.ID, Change: o.Change})
	}
	if ev.Channels {
		out = append(out, feedMsg{Kind: kindChannels})
	}
	for _, wh := range ev.MasterData {
		out = append(out, feedMsg{Kind: kindMasterData, WH: wh})
	}
	for _, wh := range ev.Tasks {
		out = append(out, feedMsg{Kind: kindTasks, WH: wh})
	}
	return out
}

// encode returns m as payloads of at most maxNotify bytes, splitting its
// keys as needed (only the first part carries the batch's figures).
func (f *feed) encode(m feedMsg, maxNotify int) [][]byte {
	m.From = f.id
	p, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	if len(p) <= maxNotify {
		return [][]byte{p}
	}
	if len(m.Keys) > 1 {
		h := len(m.Keys) / 2
		a, b := m, m
		a.Keys, b.Keys = m.Keys[:h], m.Keys[h:]
		b.Applied, b.Quarantined = 0, 0
		return append(f.encode(a, maxNotify), f.encode(b, maxNotify)...)
	}
	return f.encode(feedMsg{Kind: kindLost}, maxNotify) // a key too long to tell
}

// applyPayloads is the store's apply hook: the payloads of a gateway's
// batch, notified by PostgreSQL from inside its transaction.
func (f *feed) applyPayloads(wh, gw string, res *store.Result) [][]byte {
	if len(res.Changes) == 0 && res.Applied == 0 && res.Quarantined == 0 {
		return nil
	}
	b := events.Batch{Warehouse: wh, Gateway: gw, WM: res.WM, Applied: res.Applied, Quarantined: res.Quarantined, Changes: res.Changes}
	return f.encode(batchMsg(b), postgres.MaxNotify)
}

// send is the feed's bus subscriber: it tells the others of a local event.
func (f *feed) send(ctx context.Context, ev events.Event) {
	if ev.Remote {
		return
	}
	var ps [][]byte
	if f.owe.Swap(false) {
		ps = f.encode(feedMsg{Kind: kindLost}, postgres.MaxNotify)
	}
	for _, m := range messages(ev) {
		ps = append(ps, f.encode(m, postgres.MaxNotify)...)
	}
	for i, p := range ps {
		if err := f.db.Notify(ctx, p); err != nil {
			if ctx.Err() == nil {
				f.owe.Store(true)
				f.log.Warn("replica feed: notify failed; the others are told to re-read with the next message, and re-read periodically", "err", err, "dropped", len(ps)-i)
			}
			return
		}
		f.sent.Inc()
	}
}

// lostHere is the subscriber's resync: events this replica committed were
// not told (its feed queue overflowed), so the others must re-read.
func (f *feed) lostHere(ctx context.Context) {
	f.owe.Store(true)
	f.send(ctx, events.Event{})
}

// receive handles a payload of the feed (this replica's own included).
func (f *feed) receive(p []byte) {
	if bytes.HasPrefix(p, f.self) {
		return // its own message, back from the database: not decoded
	}
	var m feedMsg
	if err := json.Unmarshal(p, &m); err != nil || m.From == f.id {
		return
	}
	f.received.Inc()
	ev := events.Event{Remote: true}
	switch m.Kind {
	case kindBatch:
		b := events.Batch{Warehouse: m.WH, Gateway: m.GW, WM: m.WM, Applied: m.Applied, Quarantined: m.Quarantined,
			Changes: make([]ledger.Change, 0, len(m.Keys))}
		for _, k := range m.Keys {
			b.Changes = append(b.Changes, ledger.Change{Key: ledger.Key{WH: m.WH, Location: k.Location, SKU: k.SKU, Lot: k.Lot, Owner: k.Owner, Status: protocol.StockStatus(k.Status)}, After: k.OnHand})
		}
		ev.Batches = []events.Batch{b}
	case kindOrder:
		ev.Orders = []events.Order{{Warehouse: m.WH, ID: m.ID, Change: m.Change}}
	case kindChannels:
		ev.Channels = true
	case kindMasterData:
		ev.MasterData = []string{m.WH}
	case kindTasks:
		ev.Tasks = []string{m.WH}
	case kindLost: // a replica could not tell everything: re-read
		f.lost()
		return
	default:
		return
	}
	f.bus.Publish(ev)
}
