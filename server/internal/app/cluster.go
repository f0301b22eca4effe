package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/orders"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/postgres"
)

// cluster keeps the replicas of one PostgreSQL database in step beyond
// what the database itself serialises (store/postgres: feed.go):
//
//   - The feed. Each replica keeps in-memory views — the order model's
//     availability, the dashboard's live feed, the downstream sender's
//     idea of when a warehouse's log grew — that it updates from its own
//     applies and API calls. It tells the others what changed (stock keys
//     of an applied batch, an order written, channels or master data
//     changed) so that their views follow within milliseconds. The feed is
//     a hint: a replica that lost messages re-reads everything, and every
//     view also re-reads periodically.
//   - The leader. Work that must happen once for the whole system and is
//     not a consequence of one transaction — publishing availability per
//     channel (retained topic and webhooks) and raising or clearing
//     oversell conflicts from the order model — runs on one replica at a
//     time, elected with a PostgreSQL session lock. Everything else is
//     produced once by the transaction that causes it: conflicts by the
//     apply, alerts by the write that finds their condition new (alerts),
//     webhook deliveries by the replica holding the endpoint's delivery
//     lease (webhooks), downstream batches by the gateway lease's holder.
//
// With the Badger store there is one server, cluster is nil, and each of
// its methods does nothing.
type cluster struct {
	pg  *postgres.Store
	id  string
	log *slog.Logger

	leader atomic.Bool
	inTx   bool // gateways' batches are notified from their apply transaction

	mu       sync.Mutex
	queue    [][]byte
	overflow bool
	wake     chan struct{}

	// set by the app before run
	onBatch      func(wh string, keys []ledger.Key, feed json.RawMessage)
	onOrder      func(wh, id string)
	onChannels   func()
	onMasterData func(wh string)
	onLost       func()
	onLeader     func(bool)
}

// feedMsg is one message of the feed (JSON, ≤ postgres.MaxNotify bytes).
type feedMsg struct {
	From string          `json:"f"`
	Kind string          `json:"k"` // batch, order, channels, masterdata, lost
	WH   string          `json:"w,omitempty"`
	ID   string          `json:"i,omitempty"`
	Keys [][3]string     `json:"s,omitempty"` // location, sku, lot
	Feed json.RawMessage `json:"d,omitempty"` // the dashboard's "batch" event
}

const feedQueue = 4096

func newCluster(st store.Store, log *slog.Logger) *cluster {
	pg, ok := st.(*postgres.Store)
	if !ok {
		return nil
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	c := &cluster{pg: pg, id: hex.EncodeToString(b[:]), log: log.With("component", "cluster"), wake: make(chan struct{}, 1), inTx: true}
	pg.SetApplyNotify(c.applyNotify)
	return c
}

// run listens, sends and takes part in the leader election until ctx ends.
func (c *cluster) run(ctx context.Context) {
	if c == nil {
		return
	}
	go c.pg.Listen(ctx, c.receive, func() {
		c.log.Warn("replica feed interrupted; re-reading orders and availability")
		if c.onLost != nil {
			c.onLost()
		}
	})
	go c.pg.Lead(ctx, "inventory", func(leader bool) {
		if c.onLeader != nil {
			c.onLeader(leader)
		}
	})
	go c.send(ctx)
}

func (c *cluster) receive(p []byte) {
	var m feedMsg
	if err := json.Unmarshal(p, &m); err != nil || m.From == c.id {
		return
	}
	switch m.Kind {
	case "batch":
		keys := make([]ledger.Key, 0, len(m.Keys))
		for _, k := range m.Keys {
			keys = append(keys, ledger.Key{WH: m.WH, Location: k[0], SKU: k[1], Lot: k[2]})
		}
		if c.onBatch != nil {
			c.onBatch(m.WH, keys, m.Feed)
		}
	case "order":
		if c.onOrder != nil {
			c.onOrder(m.WH, m.ID)
		}
	case "channels":
		if c.onChannels != nil {
			c.onChannels()
		}
	case "masterdata":
		if c.onMasterData != nil {
			c.onMasterData(m.WH)
		}
	case "lost": // a replica could not tell everything: re-read
		if c.onLost != nil {
			c.onLost()
		}
	}
}

// encode returns m as feed payloads of at most postgres.MaxNotify bytes,
// splitting its keys (and dropping the live-feed detail first) as needed.
func (c *cluster) encode(m feedMsg) [][]byte {
	m.From = c.id
	p, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	if len(p) <= postgres.MaxNotify {
		return [][]byte{p}
	}
	if m.Feed != nil { // the live feed is a nicety: drop it first
		m.Feed = nil
		return c.encode(m)
	}
	if len(m.Keys) > 1 { // split the keys
		h := len(m.Keys) / 2
		a, b := m, m
		a.Keys, b.Keys = m.Keys[:h], m.Keys[h:]
		return append(c.encode(a), c.encode(b)...)
	}
	return c.encode(feedMsg{Kind: "lost"})
}

// enqueue queues m for the other replicas; it never blocks the caller.
func (c *cluster) enqueue(m feedMsg) {
	ps := c.encode(m)
	c.mu.Lock()
	if len(c.queue)+len(ps) > feedQueue {
		c.overflow = true
	} else {
		c.queue = append(c.queue, ps...)
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *cluster) send(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		}
		for {
			c.mu.Lock()
			q, over := c.queue, c.overflow
			c.queue, c.overflow = nil, false
			c.mu.Unlock()
			if len(q) == 0 && !over {
				break
			}
			if over {
				lost, _ := json.Marshal(feedMsg{From: c.id, Kind: "lost"})
				q = append(q, lost)
			}
			for i, p := range q {
				if err := c.pg.Notify(ctx, p); err != nil {
					if ctx.Err() != nil {
						return
					}
					c.log.Warn("replica feed: notify failed; the other replicas re-read periodically", "err", err, "dropped", len(q)-i)
					break
				}
			}
		}
	}
}

// batchMsg is the feed message of an applied batch.
func batchMsg(wh string, changes []ledger.Change, feed any) feedMsg {
	seen := map[ledger.Key]bool{}
	m := feedMsg{Kind: "batch", WH: wh}
	for _, ch := range changes {
		if !seen[ch.Key] {
			seen[ch.Key] = true
			m.Keys = append(m.Keys, [3]string{ch.Key.Location, ch.Key.SKU, ch.Key.Lot})
		}
	}
	if feed != nil {
		m.Feed, _ = json.Marshal(feed)
	}
	return m
}

// batch tells the others about an applied batch (or server-origin change)
// after its commit. Gateways' batches are told from inside their apply
// transaction instead (applyNotify), unless inTx is off.
func (c *cluster) batch(wh, gw string, changes []ledger.Change, feed any) {
	if c == nil || (c.inTx && gw != protocol.ServerOrigin) {
		return
	}
	c.enqueue(batchMsg(wh, changes, feed))
}

// applyNotify is the store's apply hook: the feed payloads of a gateway's
// batch, notified by PostgreSQL when (and only if) the batch commits.
func (c *cluster) applyNotify(wh, gw string, res *store.Result) [][]byte {
	if len(res.Changes) == 0 && res.Applied == 0 && res.Quarantined == 0 {
		return nil
	}
	return c.encode(batchMsg(wh, res.Changes, feedEvent(wh, gw, *res)))
}

// feedEvent is the dashboard's "batch" event of an applied batch: the
// batch's figures and the last value of each key it changed.
func feedEvent(wh, gw string, res store.Result) map[string]any {
	last := map[string]int{}
	var keys []keyValue
	for _, ch := range res.Changes {
		id := ch.Key.Location + "\x00" + ch.Key.SKU + "\x00" + ch.Key.Lot
		kv := keyValue{Location: ch.Key.Location, SKU: ch.Key.SKU, Lot: ch.Key.Lot, OnHand: ch.After}
		if i, ok := last[id]; ok {
			keys[i] = kv
			continue
		}
		last[id] = len(keys)
		keys = append(keys, kv)
	}
	return map[string]any{"warehouse": wh, "gateway": gw, "applied": res.Applied, "quarantined": res.Quarantined, "watermark": res.WM, "changes": keys}
}

func (c *cluster) order(wh, id string) {
	if c != nil {
		c.enqueue(feedMsg{Kind: "order", WH: wh, ID: id})
	}
}

func (c *cluster) channels() {
	if c != nil {
		c.enqueue(feedMsg{Kind: "channels"})
	}
}

func (c *cluster) masterData(wh string) {
	if c != nil {
		c.enqueue(feedMsg{Kind: "masterdata", WH: wh})
	}
}

// replicaID names this replica in leases it takes ("" without a cluster:
// the taker picks a random one).
func (c *cluster) replicaID() string {
	if c == nil {
		return ""
	}
	return c.id
}

// joinCluster connects the inventory's views to the other replicas and
// makes the order model active only while this replica leads.
func (inv *inventory) joinCluster(c *cluster) {
	c.onBatch = func(wh string, keys []ledger.Key, feed json.RawMessage) {
		changes := make([]ledger.Change, len(keys))
		for i, k := range keys {
			changes[i] = ledger.Change{Key: k}
		}
		inv.orders.Changed(changes)
		if inv.down != nil {
			inv.down(wh)
		}
		if feed != nil {
			inv.hub.Publish("batch", feed)
		}
	}
	c.onOrder = func(wh, id string) { inv.orders.OrderChanged(wh, id) }
	c.onChannels = inv.orders.ChannelsChanged
	c.onMasterData = func(wh string) {
		inv.orders.Invalidate()
		if inv.down != nil {
			inv.down(wh)
		}
	}
	c.onLost = func() {
		// Messages were lost: re-read all stock, orders and channels, away
		// from the listener's goroutine.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := inv.orders.Reload(ctx); err != nil {
				c.log.Warn("order model: re-reading after a feed loss failed; recomputing what it knows", "err", err)
				inv.orders.Invalidate()
			}
		}()
	}
	c.onLeader = func(leader bool) {
		c.leader.Store(leader)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := inv.orders.SetActive(ctx, leader); err != nil {
			c.log.Warn("order model: taking over as leader failed; retried at the next recompute", "err", err)
		}
	}
}

// clusterOrders is the order model as the API sees it on a replica: a
// channel put here is announced to the other replicas.
type clusterOrders struct {
	*orders.Service
	cl *cluster
}

func (o clusterOrders) PutChannel(ctx context.Context, c orders.Channel) (orders.Channel, error) {
	out, err := o.Service.PutChannel(ctx, c)
	if err == nil {
		o.cl.channels()
	}
	return out, err
}

// metrics registers the replica's role.
func (c *cluster) metrics(reg prometheus.Registerer) {
	if c == nil || reg == nil {
		return
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelfsync_replica_leader",
		Help: "1 while this replica is the leader (publishes availability, judges oversells); PostgreSQL store only."},
		func() float64 {
			if c.leader.Load() {
				return 1
			}
			return 0
		}))
}

// resyncEvery is how often the order model re-reads everything: the
// default (5 min) on a single server; every minute on a replica, which
// also learns of other replicas' changes through the feed.
func resyncEvery(c *cluster) time.Duration {
	if c == nil {
		return 0
	}
	return time.Minute
}
