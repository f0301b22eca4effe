package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Coordination between the replicas of one database, beside the store:
// a feed of small messages (LISTEN/NOTIFY) that keeps each replica's
// in-memory views current with what the others did, and a leader election
// (a session advisory lock) for the work one replica must do alone.
//
// Both hold a connection of their own, outside the pool. The feed is a
// hint, never the record: a replica that loses its listening connection
// is told (lost) and must re-read what it caches; the leader lock lives as
// long as its session, so a replica killed with kill -9 (its socket
// closed by the kernel) loses it at once, and one cut off from the
// database steps down within LeaderCheck.

// MaxNotify is the largest payload Notify sends (PostgreSQL's limit is
// 8000 bytes by default).
const MaxNotify = 7900

// LeaderCheck is how often a replica tries to become leader and how often
// the leader checks its session.
var LeaderCheck = 2 * time.Second

// feedChannel names the notification channel of the store's schema, so
// that stores in other schemas of one database do not hear each other.
func feedChannel(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	var schema string
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return "", wrap(err, "current schema")
	}
	ch := "shelfsync." + schema
	if len(ch) > 63 { // the longest identifier
		ch = ch[:63]
	}
	return ch, nil
}

// Notify sends payload (≤ MaxNotify bytes) to every replica listening,
// this one included.
func (s *Store) Notify(ctx context.Context, payload []byte) error {
	if len(payload) > MaxNotify {
		return fmt.Errorf("notify: %d bytes is more than %d", len(payload), MaxNotify)
	}
	_, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, s.channel, string(payload))
	return wrap(err, "notify")
}

// Listen calls fn with every payload Notify sends, until ctx ends. It
// calls lost after every (re)connection but the first — messages sent
// while it was away are gone — and reconnects with backoff.
func (s *Store) Listen(ctx context.Context, fn func(payload []byte), lost func()) {
	first := true
	for backoff := 100 * time.Millisecond; ctx.Err() == nil; {
		err := s.listen(ctx, fn, func() {
			if !first && lost != nil {
				lost()
			}
			first = false
			backoff = 100 * time.Millisecond
		})
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("replica feed connection lost; reconnecting (this replica re-reads what it caches)", "err", err)
		sleepCtx(ctx, backoff+time.Duration(rand.Int64N(int64(backoff))))
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (s *Store) listen(ctx context.Context, fn func([]byte), connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return err
	}
	connected()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		fn([]byte(n.Payload))
	}
}

// Lead runs the leader election named name until ctx ends: fn(true) when
// this replica becomes the leader, fn(false) when it stops being one
// (its session failed, or ctx ended). At most one replica of the database
// holds a name at a time, as far as PostgreSQL can tell: a leader whose
// connection silently died may overlap with its successor for up to
// LeaderCheck.
func (s *Store) Lead(ctx context.Context, name string, fn func(leader bool)) {
	for ctx.Err() == nil {
		err := s.lead(ctx, name, fn)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.log.Warn("leader election connection lost; retrying", "role", name, "err", err)
		}
		sleepCtx(ctx, LeaderCheck)
	}
}

func (s *Store) lead(ctx context.Context, name string, fn func(bool)) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	lock := "/shelfsync/leader/" + name
	leader := false
	defer func() {
		if leader {
			fn(false)
		}
	}()
	t := time.NewTicker(LeaderCheck)
	defer t.Stop()
	for {
		if leader {
			// A query on the session proves it (and so the lock) is alive.
			pctx, cancel := context.WithTimeout(ctx, LeaderCheck)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
		} else {
			var got bool
			if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext(current_schema() || $1))`, lock).Scan(&got); err != nil {
				return err
			}
			if got {
				leader = true
				s.log.Info("this replica is now the leader", "role", name)
				fn(true)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
