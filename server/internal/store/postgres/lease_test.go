package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestIntegrationPostgresLeases checks that one replica at a time holds a
// gateway, that replicas racing for new gateways share them, that a lease
// moves when its holder stops renewing (crash) and at once when it
// releases (shutdown), and that a released replica takes nothing more.
func TestIntegrationPostgresLeases(t *testing.T) {
	dsn := freshSchema(t)
	ctx := context.Background()
	const ttl = 5 * time.Second
	var ls []*Leases
	for i := range 3 {
		ls = append(ls, openTest(t, dsn).Leases(LeaseOptions{ID: fmt.Sprint("r", i), TTL: ttl}))
	}

	// Every replica sees every gateway's messages; exactly one handles each.
	owners := map[string]int{}
	for g := range 30 {
		gw := fmt.Sprintf("gw%02d", g)
		var wg sync.WaitGroup
		ok := make([]bool, len(ls))
		for i, l := range ls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				ok[i], _, err = l.Acquire(ctx, "wh", gw)
				require.NoError(t, err)
			}()
		}
		wg.Wait()
		n := 0
		for i := range ls {
			if ok[i] {
				n++
				owners[gw] = i
			}
		}
		require.Equal(t, 1, n, "%s has one holder", gw)
		for i, l := range ls {
			again, taken, err := l.Acquire(ctx, "wh", gw)
			require.NoError(t, err)
			require.Equal(t, ok[i], again, "a replica's answer is stable")
			require.False(t, taken)
			require.Equal(t, ok[i], l.Owns("wh", gw))
		}
	}
	for i, l := range ls {
		require.NoError(t, l.renew(ctx))
		require.Positive(t, l.Held(), "replica %d got a share of 30 gateways", i)
	}

	// Replica 0 crashes: it stops renewing. Its gateways move after the TTL.
	var moved []string
	for gw, i := range owners {
		if i == 0 {
			moved = append(moved, gw)
		}
	}
	require.NotEmpty(t, moved)
	require.NoError(t, ls[0].renew(ctx)) // its last renewal
	require.NoError(t, ls[1].renew(ctx))
	ok, _, err := ls[1].Acquire(ctx, "wh", moved[0])
	require.NoError(t, err)
	require.False(t, ok, "a live holder's gateway is refused")
	deadline := time.Now().Add(5 * ttl)
	for {
		ok, taken, err := ls[1].Acquire(ctx, "wh", moved[0])
		require.NoError(t, err)
		if ok {
			require.True(t, taken)
			break
		}
		require.True(t, time.Now().Before(deadline), "lease of a crashed replica did not move")
		time.Sleep(100 * time.Millisecond)
		require.NoError(t, ls[1].renew(ctx))
	}
	require.NoError(t, ls[0].renew(ctx))
	require.False(t, ls[0].Owns("wh", moved[0]), "the crashed replica learns it lost the lease")
	require.NoError(t, ls[0].Release(ctx)) // and stops for good (else, live again, it may be preferred below)

	// Replica 1 shuts down: it releases; replica 2 takes over at once.
	require.NoError(t, ls[1].Release(ctx))
	require.NoError(t, ls[2].renew(ctx))
	ok, taken, err := ls[2].Acquire(ctx, "wh", moved[0])
	require.NoError(t, err)
	require.True(t, ok && taken)
	ok, _, err = ls[1].Acquire(ctx, "wh", "brand-new")
	require.NoError(t, err)
	require.False(t, ok, "a released replica takes no lease")
}

// With the live replicas known, the replica rendezvous hashing prefers for
// a key takes its lease, whichever replica sees its message first; the
// keys spread over the replicas; a preferred replica that never comes
// leaves the key to the others after the TTL.
func TestIntegrationPostgresLeasesPreferRendezvous(t *testing.T) {
	dsn := freshSchema(t)
	ctx := context.Background()
	const ttl = 2 * time.Second
	var ls []*Leases
	ids := []string{"r0", "r1", "r2"}
	for _, id := range ids {
		l := openTest(t, dsn).Leases(LeaseOptions{ID: id, TTL: ttl})
		require.NoError(t, l.renew(ctx)) // its heartbeat: live
		ls = append(ls, l)
	}
	held := map[string]int{}
	for w := range 12 {
		wh := fmt.Sprintf("wh%02d", w)
		want := Rendezvous(wh+"\x00", ids)
		for i := len(ls) - 1; i >= 0; i-- { // the preferred one is not always first
			ok, _, err := ls[i].Acquire(ctx, wh, "")
			require.NoError(t, err)
			require.Equal(t, ids[i] == want, ok, "%s: replica %s", wh, ids[i])
		}
		held[want]++
	}
	require.Len(t, held, 3, "12 warehouses spread over 3 replicas: %v", held)

	// A key whose preferred replica is gone (its heartbeat not yet
	// expired): another takes it after the TTL.
	var wh string
	for w := 0; ; w++ {
		if wh = fmt.Sprintf("orphan%d", w); Rendezvous(wh+"\x00", ids) == "r0" {
			break
		}
	}
	ok, _, err := ls[1].Acquire(ctx, wh, "")
	require.NoError(t, err)
	require.False(t, ok, "left to the preferred replica first")
	deadline := time.Now().Add(10 * ttl)
	for {
		ok, taken, err := ls[1].Acquire(ctx, wh, "")
		require.NoError(t, err)
		if ok {
			require.True(t, taken)
			break
		}
		require.True(t, time.Now().Before(deadline), "a key whose preferred replica never took it stayed unleased")
		time.Sleep(50 * time.Millisecond)
	}
}
