package postgres

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// TestIntegrationPostgresFeed checks that a replica hears what another
// notifies (and itself), that another schema's stores hear nothing, that
// an oversized payload is refused, and that losing the listening session
// is reported so the replica re-reads what it caches.
func TestIntegrationPostgresFeed(t *testing.T) {
	dsn := freshSchema(t)
	a, b := openTest(t, dsn), openTest(t, dsn)
	other := openTest(t, freshSchema(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	type heard struct {
		mu  sync.Mutex
		got []string
	}
	listen := func(s *Store, h *heard, lost *atomic.Int32) {
		go s.Listen(ctx, func(p []byte) {
			h.mu.Lock()
			h.got = append(h.got, string(p))
			h.mu.Unlock()
		}, func() { lost.Add(1) })
	}
	var ha, hb, ho heard
	var lostA, lostB, lostO atomic.Int32
	listen(a, &ha, &lostA)
	listen(b, &hb, &lostB)
	listen(other, &ho, &lostO)
	got := func(h *heard) []string {
		h.mu.Lock()
		defer h.mu.Unlock()
		return append([]string(nil), h.got...)
	}
	// LISTEN takes effect once its connection is up: send until heard.
	require.Eventually(t, func() bool {
		require.NoError(t, a.Notify(ctx, []byte("hello")))
		return len(got(&hb)) > 0 && len(got(&ha)) > 0
	}, 10*time.Second, 50*time.Millisecond)
	require.NoError(t, b.Notify(ctx, []byte("from b")))
	require.Eventually(t, func() bool {
		ga := got(&ha)
		return len(ga) > 0 && ga[len(ga)-1] == "from b"
	}, 5*time.Second, 10*time.Millisecond)
	require.Empty(t, got(&ho), "another schema hears nothing")
	require.Error(t, a.Notify(ctx, make([]byte, MaxNotify+1)))

	// Kill b's listening session from the server side: b reconnects and
	// says it lost messages.
	_, err := a.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE pid <> pg_backend_pid() AND query = 'LISTEN ' || $1 AND datname = current_database()`, pgx.Identifier{a.channel}.Sanitize())
	require.NoError(t, err)
	require.Eventually(t, func() bool { return lostB.Load() >= 1 }, 10*time.Second, 20*time.Millisecond)
	n := len(got(&hb))
	require.Eventually(t, func() bool {
		require.NoError(t, a.Notify(ctx, []byte("after")))
		return len(got(&hb)) > n
	}, 10*time.Second, 50*time.Millisecond, "b hears again after reconnecting")
}

// TestIntegrationPostgresLeader checks that one replica leads at a time,
// that another takes over when the leader's session dies or it stops, and
// that every leader is told when it stops leading.
func TestIntegrationPostgresLeader(t *testing.T) {
	old := LeaderCheck
	LeaderCheck = 100 * time.Millisecond
	defer func() { LeaderCheck = old }()
	dsn := freshSchema(t)
	var mu sync.Mutex
	leading := map[int]bool{}
	downs := map[int]int{}
	count := func() (n int, who int) {
		mu.Lock()
		defer mu.Unlock()
		for i, l := range leading {
			if l {
				n, who = n+1, i
			}
		}
		return
	}
	var cancels []context.CancelFunc
	stores := []*Store{}
	for i := range 3 {
		s := openTest(t, dsn)
		stores = append(stores, s)
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		go s.Lead(ctx, "inventory", func(l bool) {
			mu.Lock()
			leading[i] = l
			if !l {
				downs[i]++
			}
			mu.Unlock()
		})
	}
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	require.Eventually(t, func() bool { n, _ := count(); return n == 1 }, 5*time.Second, 10*time.Millisecond)
	for range 10 { // and it stays one
		n, _ := count()
		require.Equal(t, 1, n)
		time.Sleep(30 * time.Millisecond)
	}
	_, first := count()

	// The leader stops: another leads.
	cancels[first]()
	require.Eventually(t, func() bool { n, who := count(); return n == 1 && who != first }, 5*time.Second, 10*time.Millisecond)
	_, second := count()

	// The leader's session is killed (as when its host dies): it steps
	// down and someone leads (possibly itself again, after reconnecting).
	ctx := context.Background()
	mu.Lock()
	require.Equal(t, 1, downs[first], "the stopped leader was told")
	require.Zero(t, downs[second])
	mu.Unlock()
	var killed int
	require.NoError(t, stores[first].pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l
		WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND l.objid = (hashtext(current_schema() || '/shelfsync/leader/inventory')::bigint & 4294967295)::oid`).Scan(&killed))
	require.Equal(t, 1, killed, "one session holds the lock")
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return downs[second] == 1 }, 5*time.Second, 10*time.Millisecond,
		"the leader whose session died steps down")
	require.Eventually(t, func() bool { n, _ := count(); return n == 1 }, 5*time.Second, 10*time.Millisecond, "and someone leads again")
}
