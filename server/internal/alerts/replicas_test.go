package alerts

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
	"github.com/shelfsync/shelfsync/server/internal/store/pgtest"
	"github.com/shelfsync/shelfsync/server/internal/store/postgres"
)

// shared opens the database two replicas share: Badger here, PostgreSQL
// under TestIntegrationReplicasOnPostgres. Each replica gets its own
// handle when the backend has handles (PostgreSQL: its own pool).
var shared = func(t *testing.T) (a, b store.Records) {
	st, err := badger.Open(badger.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return st, st
}

// replicas returns two harnesses — two server replicas — over one database.
func replicas(t *testing.T, th Thresholds) (*harness, *harness) {
	a, b := shared(t)
	return newHarnessOn(a, th), newHarnessOn(b, th)
}

// TestIntegrationReplicasOnPostgres runs the replica tests with each
// replica on its own connection pool to one PostgreSQL schema.
func TestIntegrationReplicasOnPostgres(t *testing.T) {
	pgtest.DSN(t)
	old := shared
	t.Cleanup(func() { shared = old })
	shared = func(t *testing.T) (store.Records, store.Records) {
		dsn := pgtest.FreshSchema(t)
		open := func() store.Records {
			st, err := postgres.Open(context.Background(), dsn, postgres.Options{MaxConns: 8})
			require.NoError(t, err)
			t.Cleanup(func() { st.Close() })
			return st
		}
		return open(), open()
	}
	t.Run("CrossingOnce", TestReplicasRaiseACrossingOnce)
	t.Run("ConflictAndGatewayAlertsOnce", TestReplicasRaiseConflictAndGatewayAlertsOnce)
	t.Run("IDsUnique", TestReplicaIDsAreUnique)
	t.Run("AckOnce", TestReplicaAckOnce)
	t.Run("WebhookInTheAlertsTransaction", TestAlertWebhookIsQueuedInTheAlertsTransaction)
	t.Run("SweepOnce", TestSweepRaisesAMissedConflictAlertOnce)
	t.Run("SweepWhereSweepSaysSo", TestRunSweepsOnlyWhereSweepSaysSo)
}

// published returns the alerts hs raised (published open).
func published(hs ...*harness) []Alert {
	var out []Alert
	for _, h := range hs {
		h.mu.Lock()
		for _, a := range h.published {
			if a.Status == StatusOpen {
				out = append(out, a)
			}
		}
		h.mu.Unlock()
	}
	return out
}

// notified returns the conflict notifications hs made.
func notified(hs ...*harness) []string {
	var out []string
	for _, h := range hs {
		h.mu.Lock()
		out = append(out, h.notified...)
		h.mu.Unlock()
	}
	return out
}

// TestReplicasRaiseACrossingOnce: both replicas observe the same crossing
// at once, many times over; each crossing is stored and published once.
func TestReplicasRaiseACrossingOnce(t *testing.T) {
	a, b := replicas(t, ThresholdsFunc(func(wh, sku string) (Threshold, bool) { return Threshold{ReorderPoint: 5, Max: 20}, true }))
	const skus = 50
	for _, h := range []*harness{a, b} {
		for i := 0; i < skus; i++ {
			h.svc.ObserveStock("wh1", fmt.Sprintf("S%02d", i), 10)
		}
	}
	var wg sync.WaitGroup
	for _, h := range []*harness{a, b} {
		for i := 0; i < skus; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sku := fmt.Sprintf("S%02d", i)
				h.svc.ObserveStock("wh1", sku, 3) // both see the same fall
				h.svc.ObserveStock("wh1", sku, 2)
			}()
		}
	}
	wg.Wait()
	pub := published(a, b)
	require.Len(t, pub, skus, "one alert per sku over both replicas")
	perSKU := map[string]int{}
	for _, al := range pub {
		perSKU[al.SKU]++
	}
	require.Len(t, perSKU, skus)
	stored, _, err := a.svc.List(context.Background(), Query{Limit: 1000})
	require.NoError(t, err)
	require.Len(t, stored, skus)

	// The next crossing fires again, once.
	for _, h := range []*harness{a, b} {
		h.svc.ObserveStock("wh1", "S00", 10)
	}
	wg.Add(2)
	for _, h := range []*harness{a, b} {
		go func() { defer wg.Done(); h.svc.ObserveStock("wh1", "S00", 1) }()
	}
	wg.Wait()
	require.Len(t, published(a, b), skus+1)
}

// TestReplicasRaiseConflictAndGatewayAlertsOnce: the once-per-episode
// alerts and conflict notifications hold across replicas too.
func TestReplicasRaiseConflictAndGatewayAlertsOnce(t *testing.T) {
	a, b := replicas(t, nil)
	seen := a.now.Add(-time.Hour).UnixMilli()
	gws := []store.Gateway{{Warehouse: "wh1", Gateway: "g1", LastSeen: seen}, {Warehouse: "wh1", Gateway: "g2", LastSeen: seen, OutboxDepth: 5000}}
	a.gateways, b.gateways = gws, gws
	c := conflicts.Conflict{ID: "neg:wh1/A/X", Kind: conflicts.KindNegativeStock, Status: conflicts.StatusOpen, Holds: true, Warehouse: "wh1"}
	var wg sync.WaitGroup
	for _, h := range []*harness{a, b} {
		for i := 0; i < 10; i++ {
			wg.Add(2)
			go func() { defer wg.Done(); h.svc.ObserveConflict(c) }()
			go func() { defer wg.Done(); require.NoError(t, h.svc.CheckGateways(context.Background())) }()
		}
	}
	wg.Wait()
	kinds := map[Kind]int{}
	for _, al := range published(a, b) {
		kinds[al.Kind]++
	}
	// g1 offline, g2 offline and over the backlog limit.
	require.Equal(t, map[Kind]int{KindGatewayOffline: 2, KindGatewayBacklog: 1}, kinds)
	require.Equal(t, []string{"opened " + c.ID}, notified(a, b), "the conflict notified once")
}

// TestReplicaIDsAreUnique: both replicas raise many alerts at once, with
// the same clock reading; every id differs and List keeps creation order.
func TestReplicaIDsAreUnique(t *testing.T) {
	a, b := replicas(t, nil)
	const n = 200
	var wg sync.WaitGroup
	for _, h := range []*harness{a, b} {
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < n/4; j++ {
					_, err := h.svc.Raise(Alert{Kind: KindReorder, Warehouse: "wh1", Message: "x"})
					require.NoError(t, err)
				}
			}()
		}
	}
	wg.Wait()
	ids := map[string]bool{}
	for _, al := range published(a, b) {
		require.False(t, ids[al.ID], "duplicate id %s", al.ID)
		ids[al.ID] = true
	}
	require.Len(t, ids, 2*n)
	all, more, err := b.svc.List(context.Background(), Query{Limit: 1000})
	require.NoError(t, err)
	require.False(t, more)
	require.Len(t, all, 2*n)
	for i := 1; i < len(all); i++ {
		require.Greater(t, all[i-1].ID, all[i].ID, "newest first")
	}

	// Later alerts sort after, also when the clock reads later.
	a.now = a.now.Add(time.Second)
	later, err := a.svc.Raise(Alert{Kind: KindReorder, Warehouse: "wh1", Message: "later"})
	require.NoError(t, err)
	require.Greater(t, later.ID, all[0].ID)
	require.Equal(t, fmt.Sprintf("%016x", a.now.UnixNano()), later.ID)
}

// TestReplicaAckOnce: two replicas acknowledging one alert at once; one
// wins and publishes.
func TestReplicaAckOnce(t *testing.T) {
	a, b := replicas(t, nil)
	al, err := a.svc.Raise(Alert{Kind: KindReorder, Warehouse: "wh1", Message: "x"})
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, h := range []*harness{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); _, errs[i] = h.svc.Ack(context.Background(), al.ID, fmt.Sprint("p", i), "") }()
	}
	wg.Wait()
	require.True(t, (errs[0] == nil) != (errs[1] == nil), "exactly one ack succeeds: %v", errs)
	acks := 0
	for _, h := range []*harness{a, b} {
		h.mu.Lock()
		for _, p := range h.published {
			if p.Status == StatusAcknowledged {
				acks++
			}
		}
		h.mu.Unlock()
	}
	require.Equal(t, 1, acks)
}

// TestIDsContinueAfterStoredAlerts: a database written before the id
// counter continues after its newest alert.
func TestIDsContinueAfterStoredAlerts(t *testing.T) {
	st, err := badger.Open(badger.Options{InMemory: true})
	require.NoError(t, err)
	defer st.Close()
	h := newHarnessOn(st, nil)
	future := fmt.Sprintf("%016x", uint64(h.now.Add(time.Hour).UnixNano()))
	require.NoError(t, st.Update(func(tx store.Tx) error {
		return putCBOR(tx, []byte(pfxAlert+future), Alert{ID: future, Kind: KindConflict, Status: StatusAcknowledged})
	}))
	al, err := h.svc.Raise(Alert{Kind: KindReorder, Warehouse: "wh1"})
	require.NoError(t, err)
	require.Greater(t, al.ID, future)
}
