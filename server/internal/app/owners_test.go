package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/orders"
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
