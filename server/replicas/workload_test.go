package replicas

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// workload is what every gateway's operator scans: one receive session of
// Items item scans over SKUs skus, written Chunk scans at a time with Pace
// between chunks; then an adjust of -1 on a key of its own that provokes
// one negative-stock conflict.
type workload struct {
	Items int
	SKUs  int
	Chunk int
	Pace  time.Duration
}

// event runs do once At (0..1) of the item scans have been written.
type event struct {
	At float64
	Do func()
}

// scanAll runs w on every gateway at once, firing events as it goes.
func (c *cluster) scanAll(w workload, events ...event) {
	t := c.t
	var wg sync.WaitGroup
	errs := make([]error, len(c.gateways))
	for i, g := range c.gateways {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = g.scan("CMD:RECEIVE"); errs[i] != nil {
				return
			}
			for n := 0; n < w.Items; n += w.Chunk {
				var lines []string
				for j := n; j < min(n+w.Chunk, w.Items); j++ {
					lines = append(lines, fmt.Sprintf("SKU:S%d", j%w.SKUs))
				}
				if errs[i] = g.scan(lines...); errs[i] != nil {
					return
				}
				time.Sleep(w.Pace) // the operator's pace, not a wait for a result
			}
			errs[i] = g.scan("CMD:DONE", "CMD:ADJUST", "LOC:NEG", "QTY:-1", "SKU:NEG-"+g.gw, "CMD:DONE")
		}()
	}
	total := float64(len(c.gateways) * (w.Items + 1))
	progress := func() float64 {
		n := 0
		for _, g := range c.gateways {
			n += g.scannedCount()
		}
		return float64(n) / total
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for _, e := range events {
		waitFor(t, 5*time.Minute, fmt.Sprintf("%.0f%% of the scans", e.At*100), func() bool { return progress() >= e.At })
		e.Do()
	}
	<-done
	require.NoError(t, errors.Join(errs...))
}

// settle waits until every scan got its beep and every op was acked.
func (c *cluster) settle(d time.Duration) {
	for _, g := range c.gateways {
		want := g.scannedCount()
		waitFor(c.t, d, fmt.Sprintf("%s/%s: %d beeps", g.wh, g.gw, want), func() bool {
			b := g.beeps()
			return b["good"]+b["bad"]+b["warn"] >= want
		})
		require.Equal(c.t, map[string]int{"good": want}, g.beeps(), "%s/%s: every scan is confirmed", g.wh, g.gw)
		waitFor(c.t, d, fmt.Sprintf("%s/%s: outbox drained", g.wh, g.gw), func() bool {
			st, err := g.status()
			return err == nil && st.LastSeq > 0 && st.AckedSeq == st.LastSeq
		})
	}
}

// expected is the ledger the confirmed scans make: +1 per item scan in
// RECEIVING, -1 on each gateway's NEG key.
func (c *cluster) expected() map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for _, g := range c.gateways {
		if out[g.wh] == nil {
			out[g.wh] = map[string]int64{}
		}
		adjust := false
		for _, l := range g.Scanned() {
			switch {
			case l == "CMD:ADJUST":
				adjust = true
			case strings.HasPrefix(l, "SKU:") && adjust:
				out[g.wh]["NEG/"+l[4:]]--
			case strings.HasPrefix(l, "SKU:"):
				out[g.wh]["RECEIVING/"+l[4:]]++
			}
		}
	}
	return out
}

// check asserts the invariants: every replica serves the ledger of the
// confirmed scans; each gateway's ops are in the database exactly once,
// up to its last seq; each provoked conflict exists once, naming one op.
func (c *cluster) check() {
	t := c.t
	want := c.expected()
	for _, r := range c.replicas {
		for wh, w := range want {
			got, err := r.stock(wh)
			require.NoError(t, err)
			require.Equal(t, w, got, "replica %d, warehouse %s: the ledger is the sum of the confirmed scans", r.i, wh)
		}
	}
	ctx := context.Background()
	db, err := pgx.Connect(ctx, c.dsn)
	require.NoError(t, err)
	defer db.Close(ctx)
	for _, g := range c.gateways {
		st, err := g.status()
		require.NoError(t, err)
		var wm, n, lo, hi int64
		require.NoError(t, db.QueryRow(ctx, `SELECT wm FROM watermarks WHERE wh = $1 AND gw = $2`, g.wh, g.gw).Scan(&wm))
		require.NoError(t, db.QueryRow(ctx, `SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), 0) FROM ops WHERE wh = $1 AND gw = $2`, g.wh, g.gw).Scan(&n, &lo, &hi))
		require.Equal(t, int64(st.LastSeq), wm, "%s/%s watermark", g.wh, g.gw)
		require.Equal(t, [3]int64{wm, 1, wm}, [3]int64{n, lo, hi}, "%s/%s: ops 1..%d stored once each", g.wh, g.gw, wm)
	}
	rows, err := db.Query(ctx, `SELECT id, kind, body FROM conflicts ORDER BY id`)
	require.NoError(t, err)
	type conf struct{ id, kind, body string }
	confs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (conf, error) {
		var x conf
		var body []byte
		err := r.Scan(&x.id, &x.kind, &body)
		x.body = string(body)
		return x, err
	})
	require.NoError(t, err)
	var neg []string
	for _, x := range confs {
		if x.kind == "negative-stock" {
			neg = append(neg, x.id)
			require.Equal(t, 1, strings.Count(x.body, `"seq":`), "conflict %s lists its op once: %s", x.id, x.body)
		}
	}
	require.Len(t, neg, len(c.gateways), "one negative-stock conflict per gateway's NEG key: %v", neg)
	// Conflict notifications work on PostgreSQL: each provoked conflict's
	// opening was published on the alerts topic (its replica publishes it
	// after the apply: wait for it) — and none was published twice.
	var missing []string
	deadline := time.Now().Add(20 * time.Second)
	for {
		published := map[string]bool{}
		for _, a := range c.obs.alertMsgs() {
			if a.Kind == "conflict" && a.ConflictKind == "negative-stock" && a.Status == "opened" {
				published[a.Conflict] = true
			}
		}
		missing = missing[:0]
		for _, id := range neg {
			if !published[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	require.Empty(t, missing, "negative-stock conflicts whose notification never reached the alerts topic (of %d)", len(neg))
	require.Zero(t, c.obs.duplicateAlerts(), "a message of the alerts topic was published twice")
}

// stats are the replication costs of a run.
type stats struct {
	Ops, Batches, Resends  uint64 // from the agents
	Apply, Gap, Duplicate  float64
	ApplySec, ApplyN       float64 // apply latency sum and count
	Dropped                float64 // messages the replicas' ingest limits dropped
	DownItems, DownRepeats int
}

func (c *cluster) stats() stats {
	var s stats
	for _, g := range c.gateways {
		st, err := g.status()
		require.NoError(c.t, err)
		s.Ops += st.LastSeq
		s.Batches += st.Uplink.Batches
		s.Resends += st.Uplink.Resends
	}
	for _, r := range c.replicas {
		s.Apply += r.metric("shelfsync_ingest_batches_total", `verdict="apply"`)
		s.Gap += r.metric("shelfsync_ingest_batches_total", `verdict="gap"`)
		s.Duplicate += r.metric("shelfsync_ingest_batches_total", `verdict="duplicate"`)
		s.ApplySec += r.metric("shelfsync_ingest_apply_seconds_sum", "")
		s.ApplyN += r.metric("shelfsync_ingest_apply_seconds_count", "")
		s.Dropped += r.metric("shelfsync_ingest_rejected_total", `reason="backlog"`) + r.metric("shelfsync_ingest_rejected_total", `reason="overload"`)
	}
	s.DownItems, s.DownRepeats = c.obs.down()
	return s
}

func (s stats) String() string {
	pct := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return 100 * a / b
	}
	return fmt.Sprintf("ops %d, batches sent %d, resends %d (%.1f%% of batches); server verdicts: apply %.0f, gap %.0f (%.1f%%), duplicate %.0f (%.1f%%); mean apply %.1f ms; dropped by ingest limits %.0f; downstream items published %d, of which repeats %d (%.1f%%)",
		s.Ops, s.Batches, s.Resends, pct(float64(s.Resends), float64(s.Batches)),
		s.Apply, s.Gap, pct(s.Gap, s.Apply+s.Gap+s.Duplicate), s.Duplicate, pct(s.Duplicate, s.Apply+s.Gap+s.Duplicate),
		1000*s.ApplySec/max(s.ApplyN, 1), s.Dropped, s.DownItems, s.DownRepeats, pct(float64(s.DownRepeats), float64(s.DownItems)))
}

// sub returns s - o for the counters that only grow while processes live.
func (s stats) sub(o stats) stats {
	d := s
	d.Ops, d.Batches, d.Resends = s.Ops-o.Ops, s.Batches-o.Batches, s.Resends-o.Resends
	return d
}
