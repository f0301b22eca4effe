package replicas

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// Regression tests for what replicas sharing PostgreSQL could lose when a
// replica dies right after a commit, or when the replica feed drops
// messages (they began as probes that reproduced those gaps):
//
//   - KillAfterCommit: the replica applying a gateway's batches is killed
//     right after one of its commits; every conflict still gets its alert
//     (the leader's sweep raises the ones the apply did not), every alert
//     its webhook (queued in the alert's transaction), every replica the
//     stock (notified from the apply transaction);
//   - OrderEventsAcrossKill: the replica taking orders is killed; every
//     stored order still gets its order.created event (queued in the
//     order's transaction);
//   - FeedLoss: this cluster's LISTEN sessions are cut while batches
//     apply; every replica re-reads and serves every key.
//
// Convergence is waited for (the conflict sweep runs every 15 s on the
// leader, a webhook lease moves after 15 s), then the figures are exact.

// convergeWithin is how long the replicas get to converge after a kill:
// a conflict sweep (15 s) after a leader change, a webhook lease (15 s).
const convergeWithin = 60 * time.Second

// eventually polls check every 200 ms until it returns nil, or fails the
// test after d with the last thing check found missing.
func eventually(t *testing.T, d time.Duration, what string, check func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := check()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > d {
			t.Fatalf("timed out after %s waiting for %s: %v", d, what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// pages reads every page of a paginated list (alerts, orders) from r.
func pages[T any](r *replica, path string) ([]T, error) {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	var out []T
	for off := 0; ; {
		var b struct {
			Items      []T
			NextOffset int `json:"next_offset"`
		}
		if _, err := r.call("GET", fmt.Sprintf("%s%slimit=1000&offset=%d", path, sep, off), nil, &b); err != nil {
			return nil, err
		}
		out = append(out, b.Items...)
		if b.NextOffset == 0 {
			return out, nil
		}
		off = b.NextOffset
	}
}

// onHandBySKU is a replica's availability of wh: sku → on-hand.
func (r *replica) onHandBySKU(wh string) (map[string]int64, error) {
	var av struct{ Items []atsRow }
	if _, err := r.call("GET", "/api/v1/availability?warehouse="+wh, nil, &av); err != nil {
		return nil, err
	}
	got := map[string]int64{}
	for _, x := range av.Items {
		if _, dup := got[x.SKU]; dup {
			return nil, fmt.Errorf("replica %d: availability lists %s twice", r.i, x.SKU)
		}
		got[x.SKU] = x.OnHand
	}
	return got, nil
}

// bySKU sums a ledger (location/sku → on-hand) per sku.
func bySKU(stock map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range stock {
		_, sku, _ := strings.Cut(k, "/")
		out[sku] += v
	}
	return out
}

// diff lists, sorted, the skus whose value in got differs from want.
func diff(want, got map[string]int64) []string {
	var out []string
	for k, v := range want {
		if g, ok := got[k]; !ok {
			out = append(out, fmt.Sprintf("%s missing (ledger %d)", k, v))
		} else if g != v {
			out = append(out, fmt.Sprintf("%s: %d (ledger %d)", k, g, v))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("%s: %d (not in the ledger)", k, g))
		}
	}
	sort.Strings(out)
	return out
}

// availabilityMatches reports the first replica whose availability of wh
// (on-hand per sku) is not the ledger's.
func (c *cluster) availabilityMatches(wh string, want map[string]int64) error {
	for _, r := range c.replicas {
		got, err := r.onHandBySKU(wh)
		if err != nil {
			return err
		}
		if d := diff(want, got); len(d) > 0 {
			return fmt.Errorf("replica %d (run %d): %d availability rows disagree with the ledger, e.g. %v", r.i, r.srv.Runs(), len(d), d[:min(5, len(d))])
		}
	}
	return nil
}

// alertOutChunk is how many alert messages the server publishes before it
// clears them from its queue (server/internal/app/alertout.go).
const alertOutChunk = 100

// TestIntegrationReplicasKillAfterCommit: one gateway adjusts n new keys
// to −1 (n negative-stock conflicts) while the replica applying its
// batches is killed with kill -9 right after one of its commits (its
// apply counter just moved), then restarted. wh1 has no location master
// data, so NEG is sellable: a −1 there must not raise an oversell (nothing
// is reserved). Then, within convergeWithin:
//
//   - there are n conflicts, all negative-stock, one per key;
//   - each is notified (conflict.opened) on the alerts topic and delivered
//     once to the webhook (one delivery id; a delivery posted again after
//     its holder's kill is allowed, at most once per kill), and is not
//     repeated as an alert item;
//   - there is no alert at all (no oversell);
//   - every replica's stock is the ledger of the scans, and its
//     availability shows every key with the ledger's value.
func TestIntegrationReplicasKillAfterCommit(t *testing.T) {
	c := newCluster(t, 3, modeLeases)
	g := c.addGateway("wh1", "g1")
	// A first receipt shows which replica applies g1's batches (it holds
	// the gateway's lease); the webhook endpoint is created through it, so
	// that it most likely holds the endpoint's delivery lease too when it
	// is killed (the next holder takes over after 15 s, and may post again
	// the delivery that was in flight).
	require.NoError(t, g.scan("CMD:RECEIVE", "LOC:BIN-1", "SKU:W", "CMD:DONE"))
	c.settle(30 * time.Second)
	var applier *replica
	for _, r := range c.replicas {
		if r.metric("shelfsync_ingest_batches_total", `verdict="apply"`) > 0 {
			require.Nil(t, applier, "one replica applies g1's batches")
			applier = r
		}
	}
	require.NotNil(t, applier, "no replica applied the receipt")
	rcv := newHookReceiver(t)
	rcv.register(t, applier, "events", map[string]any{"events": []string{"alert", "conflict"}})
	base := g.scannedCount()
	const n = 100
	lines := []string{"CMD:ADJUST", "LOC:NEG"}
	for i := range n {
		lines = append(lines, "QTY:-1", fmt.Sprintf("SKU:N%d", i))
	}
	lines = append(lines, "CMD:DONE")
	// The operator scans a third, then (once the victim is chosen) up to
	// two thirds, then the rest after the kill: the victim's next commit
	// comes from the second third, so the kill lands mid-stream however
	// slow the machine is (with one unbroken stream the last scans could
	// be typed before the victim applied anything more).
	done := make(chan error, 1)
	third, chosen, killed := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		for i := 0; i < len(lines); i += 4 {
			switch i {
			case len(lines) / 3 / 4 * 4:
				close(third)
				<-chosen
			case 2 * len(lines) / 3 / 4 * 4:
				<-killed
			}
			if err := g.scan(lines[i:min(i+4, len(lines))]...); err != nil {
				done <- err
				return
			}
			time.Sleep(20 * time.Millisecond) // the operator's pace, not a wait
		}
		done <- nil
	}()
	<-third
	waitFor(t, time.Minute, "the first third applied", func() bool {
		st, err := g.status()
		return err == nil && st.AckedSeq == st.LastSeq
	})
	var victim *replica
	best := -1.0
	for _, r := range c.replicas {
		if x := r.metric("shelfsync_ingest_batches_total", `verdict="apply"`); x > best {
			victim, best = r, x
		}
	}
	require.Positive(t, best, "no replica applied a batch of the first third")
	close(chosen)
	wasLeader := victim.metric("shelfsync_replica_leader", "") == 1
	// Kill right after the victim's next commit: the counter moves just
	// before its after-commit work (the conflicts' alerts, their MQTT messages).
	for deadline := time.Now().Add(10 * time.Second); victim.metric("shelfsync_ingest_batches_total", `verdict="apply"`) <= best; {
		require.True(t, time.Now().Before(deadline), "the victim applied nothing more within 10 s")
	}
	killAt := time.Now()
	victim.proc().Stop(syscall.SIGKILL)
	const kills = 1
	atKill := g.scannedCount() - base
	close(killed)
	require.Less(t, atKill, len(lines), "the kill lands mid-stream")
	require.NoError(t, <-done)
	victim.start()
	c.settle(2 * time.Minute)
	// Batches applied after the kill: the survivors' (which applied none
	// before: the victim held the gateway's lease) and the restarted
	// victim's (its counters start again).
	var after float64
	for _, r := range c.replicas {
		after += r.metric("shelfsync_ingest_batches_total", `verdict="apply"`)
	}
	require.Positive(t, after, "batches applied after the kill")

	// What the scans make: +1 on BIN-1/W, −1 on NEG/N0..N{n-1}.
	want := map[string]int64{"BIN-1/W": 1}
	for i := range n {
		want[fmt.Sprintf("NEG/N%d", i)] = -1
	}
	type conflictRow struct{ ID, Kind, Status, Location, SKU string }
	type alertRow struct {
		ID, Kind, Status, Conflict, Message string

		CreatedMS int64 `json:"created_ms"`
	}
	var (
		cs  []conflictRow
		as  []alertRow
		tl  hookTally
		pub map[string]int // conflict id → conflict.opened messages on the alerts topic
	)
	took := eventually(t, convergeWithin, "every conflict notified on MQTT and at the webhook; every replica's stock and availability", func() error {
		for _, r := range c.replicas {
			got, err := r.stock("wh1")
			if err != nil {
				return err
			}
			if d := diff(want, got); len(d) > 0 {
				return fmt.Errorf("replica %d: stock disagrees with the scans: %v", r.i, d[:min(5, len(d))])
			}
		}
		if err := c.availabilityMatches("wh1", bySKU(want)); err != nil {
			return err
		}
		var b struct{ Items []conflictRow }
		if _, err := c.replicas[0].call("GET", "/api/v1/conflicts?warehouse=wh1&limit=10000", nil, &b); err != nil {
			return err
		}
		cs = b.Items
		if len(cs) < n {
			return fmt.Errorf("%d conflicts of %d", len(cs), n)
		}
		var err error
		if as, err = pages[alertRow](c.replicas[0], "/api/v1/alerts"); err != nil {
			return err
		}
		pub = map[string]int{}
		for _, m := range c.obs.alertMsgs() {
			if m.Kind == "conflict" && m.Status == "opened" {
				pub[m.Conflict]++
			}
		}
		tl = rcv.tally("events", time.Time{})
		var notPub, notHook []string
		for _, x := range cs {
			if pub[x.ID] == 0 {
				notPub = append(notPub, x.ID)
			}
			if len(tl.byKey["conflict.opened "+x.ID]) == 0 {
				notHook = append(notHook, x.ID)
			}
		}
		if len(notPub)+len(notHook) > 0 {
			return fmt.Errorf("conflicts not notified on MQTT %v; not at the webhook %v (killed %s ago)", notPub, notHook, time.Since(killAt).Round(time.Millisecond))
		}
		return nil
	})

	// Exact figures.
	keys := map[string]bool{}
	for _, x := range cs {
		require.Equal(t, "negative-stock", x.Kind, "conflict %s", x.ID)
		require.Equal(t, "NEG", x.Location, "conflict %s", x.ID)
		require.False(t, keys[x.SKU], "two conflicts for NEG/%s", x.SKU)
		keys[x.SKU] = true
	}
	require.Len(t, cs, n, "one negative-stock conflict per key")
	var listed []string
	for _, a := range as {
		listed = append(listed, a.Kind+": "+a.Message)
	}
	require.Empty(t, listed, "alert items (conflicts are not repeated as alerts; nothing is reserved, so no oversell)")
	for _, x := range cs {
		require.GreaterOrEqual(t, pub[x.ID], 1, "conflict %s: conflict.opened messages on the alerts topic", x.ID)
		require.Len(t, tl.byKey["conflict.opened "+x.ID], 1, "conflict %s: webhook deliveries", x.ID)
	}
	require.Len(t, tl.byKey, n, "webhook events are the conflicts' openings: %v", slices.Sorted(maps.Keys(tl.byKey)))
	// The alerts topic is at least once: a leader killed between the
	// broker's ack and clearing its queue publishes those messages again.
	require.LessOrEqual(t, c.obs.duplicateAlerts(), kills*alertOutChunk, "alert messages published again")
	var reposted []string
	for _, x := range tl.reposts {
		reposted = append(reposted, fmt.Sprintf("%s (%s, attempt %s)", x.delivery, hookKey(x), x.attempt))
	}
	require.LessOrEqual(t, len(tl.reposts), kills, "deliveries posted again: at most one per kill (the holder's POST in flight): %v", reposted)
	swept := 0 // notifications the leader's sweep made (the apply's were lost with the victim)
	for _, r := range c.replicas {
		for _, l := range strings.Split(r.proc().Output(), "\n") {
			if strings.Contains(l, "conflict sweep notified conflicts") {
				var k int
				if _, v, ok := strings.Cut(l, " conflicts="); ok {
					if _, err := fmt.Sscan(v, &k); err == nil {
						swept += k
					}
				}
			}
		}
	}
	t.Logf("killed replica %d (leader %v, webhook endpoint created through it: %v) right after its apply #%.0f, at scan %d of %d (%.0f batches applied after the kill); converged %s after settling: "+
		"%d negative-stock conflicts, %d alert items, each conflict notified (%d by the sweep) on MQTT (%d messages repeated) and once at the webhook; "+
		"%d reposts %v; 0 oversell alerts; stock and availability of all %d replicas equal the ledger",
		victim.i, wasLeader, victim == applier, best+1, atKill, len(lines), after, took.Round(100*time.Millisecond), len(cs), len(as), swept, c.obs.duplicateAlerts(), len(tl.reposts), reposted, len(c.replicas))
}

// TestIntegrationReplicasOrderEventsAcrossKill: 16 clients create orders
// through one replica, which is killed with kill -9 while they do; a
// client whose request failed retries the same order (channel + external
// id) through another replica — 200 when the dead replica had stored it.
// Every stored order was answered to its client, and gets exactly one
// order.created event at the webhook (queued in the order's transaction:
// also the orders the dead replica stored without answering); a delivery
// posted again after its holder's kill is allowed, at most once per kill.
func TestIntegrationReplicasOrderEventsAcrossKill(t *testing.T) {
	c := newCluster(t, 3, modeLeases)
	victim, survivor := c.replicas[0], c.replicas[2]
	// The endpoint is created through the victim, so that it most likely
	// holds its delivery lease when killed: the next holder takes over
	// after 15 s, and may post again the delivery that was in flight.
	rcv := newHookReceiver(t)
	rcv.register(t, victim, "events", map[string]any{"events": []string{"order"}})
	// No gateway has connected: the warehouse exists once it has settings
	// (orders for a warehouse nobody created are refused).
	code, err := victim.call("PUT", "/api/v1/masterdata/wh1/settings", map[string]any{}, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	// It holds no stock: the channel backorders (taken, reserving nothing).
	code, err = victim.call("PUT", "/api/v1/channels/web", map[string]any{"share_pct": 100, "policy": "backorder"}, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	const workers = 16
	var mu sync.Mutex
	created := map[string]string{} // order id → how: "victim" (201 from the victim), "retry-200" (the victim committed, its answer was lost), "retry-201"
	var failed []string            // answers of the survivor that are not 200/201
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := map[string]any{"warehouse": "wh1", "channel": "web", "external_id": fmt.Sprintf("%d-%d", w, i), "lines": []map[string]any{{"sku": "A", "qty": 1}}}
				var o struct{ ID string }
				code, err := victim.call("POST", "/api/v1/orders", body, &o)
				how := "victim"
				if err != nil && code == 0 { // the victim died: the channel retries elsewhere
					code, err = survivor.call("POST", "/api/v1/orders", body, &o)
					how = fmt.Sprintf("retry-%d", code)
				}
				mu.Lock()
				if err == nil && (code == http.StatusCreated || code == http.StatusOK) {
					created[o.ID] = how
				} else {
					failed = append(failed, fmt.Sprintf("%s %s: %d %v", how, body["external_id"], code, err))
				}
				mu.Unlock()
				if how != "victim" || err != nil {
					return
				}
			}
		}()
	}
	answered := func() int { mu.Lock(); defer mu.Unlock(); return len(created) }
	waitFor(t, 30*time.Second, "orders flowing", func() bool { return answered() >= 50 })
	victim.proc().Stop(syscall.SIGKILL)
	const kills = 1
	close(stop)
	wg.Wait()
	require.Empty(t, failed, "order requests that failed")
	require.NotEmpty(t, created)

	var stored []struct{ ID, Status string }
	var tl hookTally
	took := eventually(t, convergeWithin, "an order.created event for every stored order", func() error {
		var err error
		if stored, err = pages[struct{ ID, Status string }](survivor, "/api/v1/orders?warehouse=wh1"); err != nil {
			return err
		}
		tl = rcv.tally("events", time.Time{})
		var lost []string
		for _, o := range stored {
			if len(tl.byKey["order.created "+o.ID]) == 0 {
				lost = append(lost, o.ID+" ("+created[o.ID]+")")
			}
		}
		if len(lost) > 0 {
			return fmt.Errorf("%d of %d stored orders without an order.created event: %s", len(lost), len(stored), strings.Join(lost, ", "))
		}
		return nil
	})

	byHow := map[string]int{}
	for _, how := range created {
		byHow[how]++
	}
	ids := map[string]bool{}
	for _, o := range stored {
		require.False(t, ids[o.ID], "order %s listed twice", o.ID)
		ids[o.ID] = true
		require.Contains(t, created, o.ID, "order %s was stored but never answered, not even to the retry", o.ID)
		require.Len(t, tl.byKey["order.created "+o.ID], 1, "order %s (%s): order.created deliveries", o.ID, created[o.ID])
	}
	for id := range created {
		require.True(t, ids[id], "order %s (%s) answered but not stored", id, created[id])
	}
	events := 0
	for k := range tl.byKey {
		if strings.HasPrefix(k, "order.created ") {
			events++
		}
	}
	require.Equal(t, len(stored), events, "order.created events are the stored orders'")
	var reposted []string
	for _, x := range tl.reposts {
		reposted = append(reposted, fmt.Sprintf("%s (%s, attempt %s)", x.delivery, hookKey(x), x.attempt))
	}
	require.LessOrEqual(t, len(tl.reposts), kills, "deliveries posted again: at most one per kill: %v", reposted)
	t.Logf("%d orders stored, %d answered (%v); every one has one order.created event (converged %s after the kill); %d reposts %v",
		len(stored), len(created), byHow, took.Round(100*time.Millisecond), len(tl.reposts), reposted)
}

// TestIntegrationReplicasFeedLoss: five times, this cluster's LISTEN
// sessions (and no other test's: the exact LISTEN of its schema's
// channel) are cut with pg_terminate_backend and at once a batch applies
// a new key: the replicas that did not apply it learn of it only through
// the feed, which they lost; after reconnecting they must re-read
// everything. Every replica's availability then shows every key with the
// ledger's value — before the periodic resync (every minute from each
// replica's start) could have repaired it.
func TestIntegrationReplicasFeedLoss(t *testing.T) {
	c := newCluster(t, 3, modeLeases)
	started := time.Now() // the replicas' periodic resync comes a minute after each one started
	g := c.addGateway("wh1", "g1")
	ctx := context.Background()
	db, err := pgx.Connect(ctx, c.dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close(context.Background()) })
	var schema string
	require.NoError(t, db.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema))
	require.True(t, strings.HasPrefix(schema, "shelfsync_replicas_"), "schema %q", schema)
	channel := "shelfsync." + schema // as the server names it (postgres.feedChannel)
	if len(channel) > 63 {
		channel = channel[:63]
	}
	listen := "LISTEN " + pgx.Identifier{channel}.Sanitize()
	listeners := func() int {
		var k int
		require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = $1`, listen).Scan(&k))
		return k
	}
	allListening := func() bool { return listeners() == len(c.replicas) }

	require.NoError(t, g.scan("CMD:RECEIVE", "LOC:BIN-1", "SKU:K0", "CMD:DONE"))
	c.settle(30 * time.Second)
	const rounds = 5
	for k := 1; k <= rounds; k++ {
		waitFor(t, 15*time.Second, "every replica listening", allListening)
		var cut int
		require.NoError(t, db.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND query = $1 AND pid <> pg_backend_pid()`, listen).Scan(&cut))
		require.NoError(t, g.scan("CMD:RECEIVE", "LOC:BIN-1", fmt.Sprintf("SKU:K%d", k), "CMD:DONE"))
		require.Equal(t, len(c.replicas), cut, "round %d: LISTEN sessions cut", k)
		c.settle(30 * time.Second)
	}
	waitFor(t, 15*time.Second, "every replica listening again", allListening)

	want := map[string]int64{}
	for k := 0; k <= rounds; k++ {
		want[fmt.Sprintf("BIN-1/K%d", k)] = 1
	}
	for _, r := range c.replicas {
		got, err := r.stock("wh1")
		require.NoError(t, err)
		require.Equal(t, want, got, "replica %d: the ledger", r.i)
	}
	// Before the first periodic resync (a minute after the first replica
	// started), which would repair a replica that did not re-read.
	took := eventually(t, time.Until(started.Add(55*time.Second)), "every replica's availability showing every key (before the periodic resync)", func() error {
		return c.availabilityMatches("wh1", bySKU(want))
	})
	appliers := 0
	for _, r := range c.replicas {
		if r.metric("shelfsync_ingest_batches_total", `verdict="apply"`) > 0 {
			appliers++
		}
	}
	require.Less(t, appliers, len(c.replicas), "a replica learnt of the keys through the feed only")
	var lost []int // per replica: feed reconnections it logged
	for _, r := range c.replicas {
		lost = append(lost, strings.Count(r.proc().Output(), "replica feed connection lost"))
	}
	t.Logf("%d rounds, %d LISTEN sessions cut each (feed reconnections logged per replica: %v); %d replicas applied g1's batches; all %d replicas' availability shows the %d keys of the ledger (converged %s after the last round, %s after start)",
		rounds, len(c.replicas), lost, appliers, len(c.replicas), len(want), took.Round(100*time.Millisecond), time.Since(started).Round(100*time.Millisecond))
}
