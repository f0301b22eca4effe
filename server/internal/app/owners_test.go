package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/alerts"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/orders"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
	"github.com/shelfsync/shelfsync/server/internal/webhooks"
)

// TestOwnersAvailabilityTopics: a channel's availability is retained once
// per owner, limited to the owner's skus; when an owner's last sku moves
// to another owner, its topic gets an empty snapshot rather than keeping
// the stale offer; a warehouse without owners publishes no owner topic
// and reads no item.
func TestOwnersAvailabilityTopics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	st, err := badger.Open(badger.Options{InMemory: true})
	require.NoError(t, err)
	ord := orders.New(orders.Config{Debounce: time.Millisecond}, st)
	require.NoError(t, ord.Start(ctx))
	ran := make(chan struct{})
	go func() { defer close(ran); ord.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-ran; _ = st.Close() })
	for i, op := range []struct{ wh, sku string }{{"wh1", "A"}, {"wh1", "G"}, {"wh2", "X"}} {
		_, res, err := st.IssueOp(ctx, op.wh, protocol.Op{HLC: protocol.MakeHLC(int64(1000+i), 0), Kind: protocol.OpReceive, Location: "L", SKU: op.sku, Qty: 5})
		require.NoError(t, err)
		ord.Changed(res.Changes)
	}
	require.Eventually(t, func() bool { rows, _, _ := ord.Availability("", ""); return len(rows) == 3 }, 10*time.Second, 5*time.Millisecond)

	owners := map[string]string{"A": "acme", "G": "globex"}
	reads := 0
	inv := &inventory{log: slog.New(slog.DiscardHandler), topics: protocol.NewTopics("r"), orders: ord, out: newMQTTOut(slog.New(slog.DiscardHandler)),
		hooks: webhooks.New(webhooks.Config{Records: st}), ownerTopics: map[string]map[string]bool{},
		skuOwner: func(wh, sku string) (string, error) {
			reads++
			require.Equal(t, "wh1", wh, "wh2 has no owners: its items are not read")
			return owners[sku], nil
		},
		hasOwners: func(wh string) (bool, error) { return wh == "wh1", nil }}
	retained := func(owner string) (orders.Snapshot, bool) {
		inv.out.mu.Lock()
		defer inv.out.mu.Unlock()
		b, ok := inv.out.ret["r/owners/"+owner+"/channels/web/availability"]
		var sn orders.Snapshot
		if ok {
			require.NoError(t, json.Unmarshal(b, &sn))
		}
		return sn, ok
	}
	sn := orders.Snapshot{Channel: "web", Seq: 1, Items: []orders.Item{{SKU: "A", Available: 5}, {SKU: "G", Available: 5}, {SKU: "X", Available: 5}}}
	inv.publishOwners(sn)
	a, ok := retained("acme")
	require.True(t, ok)
	require.Equal(t, "acme", a.Owner)
	require.Equal(t, []orders.Item{{SKU: "A", Available: 5}}, a.Items)
	g, ok := retained("globex")
	require.True(t, ok)
	require.Equal(t, []orders.Item{{SKU: "G", Available: 5}}, g.Items)
	require.Len(t, inv.out.ret, 2, "no topic for the skus of no owner")
	require.Equal(t, 2, reads, "one item read per sku of a warehouse with owners")

	owners["A"] = "globex" // acme's last sku is globex's now
	inv.out.ret = map[string][]byte{}
	inv.publishOwners(sn)
	a, ok = retained("acme")
	require.True(t, ok, "acme's topic is told")
	require.Empty(t, a.Items, "acme offers nothing now")
	g, _ = retained("globex")
	require.Equal(t, []orders.Item{{SKU: "A", Available: 5}, {SKU: "G", Available: 5}}, g.Items)

	inv.out.ret = map[string][]byte{}
	inv.publishOwners(sn)
	_, ok = retained("acme")
	require.False(t, ok, "an owner told once is not told again")
}

// TestOwnersAlertsTopic: an alert or conflict of an owner's stock goes on
// its warehouse's alerts topic and once more on {root}/owners/{owner}/alerts;
// a gateway's alert (no owner) only on the warehouse's; an owner id that
// is not a topic id (stored before owner ids were checked) gets no topic
// and does not fail the transaction.
func TestOwnersAlertsTopic(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	st, err := badger.Open(badger.Options{InMemory: true})
	require.NoError(t, err)
	log := slog.New(slog.DiscardHandler)
	inv := &inventory{log: log, topics: protocol.NewTopics("r"), hooks: webhooks.New(webhooks.Config{Records: st}),
		alertOut: alerts.NewOutbox(st, func() bool { return true }, log)}
	pub := &topicRecorder{}
	ran := make(chan struct{})
	go func() { defer close(ran); inv.alertOut.Run(ctx, pub) }()
	t.Cleanup(func() { cancel(); <-ran; _ = st.Close() })

	require.NoError(t, st.Update(func(tx store.Tx) error {
		for _, a := range []alerts.Alert{
			{ID: "a1", Kind: alerts.KindReorder, Warehouse: "wh1", SKU: "ACME-MILK", Owner: "acme", Status: alerts.StatusOpen},
			{ID: "a2", Kind: alerts.KindGatewayOffline, Warehouse: "wh1", Gateway: "g1", Status: alerts.StatusOpen},
			{ID: "a3", Kind: alerts.KindReorder, Warehouse: "wh2", SKU: "OLD", Owner: "old owner", Status: alerts.StatusOpen},
			{ID: "a1", Kind: alerts.KindReorder, Warehouse: "wh1", SKU: "ACME-MILK", Owner: "acme", Status: alerts.StatusAcknowledged},
		} {
			if err := inv.queueAlert(tx, a); err != nil {
				return err
			}
		}
		return inv.queueConflict(tx, conflicts.Conflict{ID: "c1", Kind: "negative_stock", Warehouse: "wh2", SKU: "GLOBEX-MILK", Owner: "globex"}, "opened")
	}))
	inv.alertOut.Poke()
	want := map[string][]string{
		"r/wh1/alerts":           {"a1 open", "a2 open", "a1 acknowledged"},
		"r/wh2/alerts":           {"a3 open", "c1 conflict.opened"},
		"r/owners/acme/alerts":   {"a1 open", "a1 acknowledged"},
		"r/owners/globex/alerts": {"c1 conflict.opened"},
	}
	require.Eventually(t, func() bool { return len(pub.all()) == 8 }, 10*time.Second, 5*time.Millisecond)
	got := map[string][]string{}
	for _, m := range pub.all() {
		var body struct {
			ID       string `json:"id"`
			Status   string `json:"status"`
			Event    string `json:"event"`
			Conflict struct {
				ID string `json:"id"`
			} `json:"conflict"`
		}
		require.NoError(t, json.Unmarshal(m.payload, &body))
		if body.Event != "" {
			got[m.topic] = append(got[m.topic], body.Conflict.ID+" "+body.Event)
		} else {
			got[m.topic] = append(got[m.topic], body.ID+" "+body.Status)
		}
	}
	for topic, msgs := range want {
		require.ElementsMatch(t, msgs, got[topic], topic)
	}
	require.Len(t, got, len(want), "no other topic: %v", got)
	require.Equal(t, []string{"a1 open", "a1 acknowledged"}, got["r/owners/acme/alerts"], "an owner's topic gets an alert's messages in order")
}

// topicRecorder records what an alerts outbox publishes.
type topicRecorder struct {
	mu   sync.Mutex
	msgs []topicMsg
}

type topicMsg struct {
	topic   string
	payload []byte
}

func (r *topicRecorder) PublishTopic(topic string, _ bool, payload []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, topicMsg{topic, append([]byte(nil), payload...)})
	return nil
}

func (r *topicRecorder) all() []topicMsg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]topicMsg(nil), r.msgs...)
}
