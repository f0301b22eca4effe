package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Leases partitions gateways (or, with gateway "", warehouses) between the
// replicas of one database: a replica handles a gateway's messages (and
// sends its downstream) only while it holds the lease. Every replica sees
// the message of an unleased key; the live replica that rendezvous hashing
// prefers for the key takes it at once, the others leave it to that one
// for up to TTL (then any takes it: the preferred one may have died
// without its heartbeat expiring yet). The lease holder renews it while it
// lives; when it dies its leases expire after TTL
// and the next message of each of its gateways moves the gateway to
// another replica; when it stops it releases them at once.
//
// Correctness never depends on leases — ApplyBatch serialises each gateway
// through its watermark row — they only keep a gateway's batches, acks and
// downstream on one replica, so that they stay in order and are produced
// once.
type Leases struct {
	pool *pgxpool.Pool
	id   string
	ttl  time.Duration
	log  *slog.Logger

	mu       sync.Mutex
	closed   bool                // released: take nothing more
	held     map[gwKey]time.Time // leases of this replica, valid until (local clock)
	others   map[gwKey]time.Time // leases of other replicas, until
	live     []string            // live replicas (heartbeat not expired), as of liveAt
	liveAt   time.Time
	deferred map[gwKey]time.Time // unleased keys left to their preferred replica, since
}

type gwKey struct{ wh, gw string }

// LeaseOptions configure Leases.
type LeaseOptions struct {
	// ID names this replica; default: random. It must differ between
	// replicas.
	ID string
	// TTL is how long a lease outlives its last renewal (renewals run
	// every TTL/3); default 10 s. It bounds how long the gateways of a
	// crashed replica wait for another one.
	TTL    time.Duration
	Logger *slog.Logger
}

// Leases returns the gateway leases of this replica; Run renews them.
func (s *Store) Leases(opts LeaseOptions) *Leases {
	if opts.ID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		opts.ID = "replica-" + hex.EncodeToString(b[:])
	}
	if opts.TTL <= 0 {
		opts.TTL = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = s.log
	}
	return &Leases{pool: s.pool, id: opts.ID, ttl: opts.TTL, log: opts.Logger, held: map[gwKey]time.Time{}, others: map[gwKey]time.Time{}, deferred: map[gwKey]time.Time{}}
}

// ID returns this replica's name in the lease table.
func (l *Leases) ID() string { return l.id }

// Owns reports whether this replica holds wh/gw's lease now. It never
// touches the database.
func (l *Leases) Owns(wh, gw string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	until, ok := l.held[gwKey{wh, gw}]
	return ok && time.Now().Before(until)
}

// Held returns how many leases this replica holds.
func (l *Leases) Held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.held)
}

// Acquire reports whether this replica handles wh/gw: it holds the lease,
// or takes it now (taken is then true) because nobody holds it. A gateway
// leased to another live replica is refused from memory, without a query.
func (l *Leases) Acquire(ctx context.Context, wh, gw string) (ok, taken bool, err error) {
	k := gwKey{wh, gw}
	l.mu.Lock()
	now := time.Now()
	if until, held := l.held[k]; held && now.Before(until) {
		l.mu.Unlock()
		return true, false, nil
	}
	if until, other := l.others[k]; l.closed || (other && now.Before(until)) {
		l.mu.Unlock()
		return false, false, nil
	}
	_, had := l.held[k]
	l.mu.Unlock()
	if !had {
		if mine, err := l.preferred(ctx, k, now); err != nil || !mine {
			return false, false, err
		}
	}
	sent := time.Now()
	var owner string
	var left float64
	err = l.pool.QueryRow(ctx, `INSERT INTO gateway_leases AS l (wh, gw, owner, expires_at)
			VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond')
		ON CONFLICT (wh, gw) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
			WHERE l.expires_at < now() OR l.owner = excluded.owner
		RETURNING owner, 0::float8`, wh, gw, l.id, l.ttl.Milliseconds()).Scan(&owner, &left)
	if err == pgx.ErrNoRows {
		err = l.pool.QueryRow(ctx, `SELECT owner, greatest(extract(epoch FROM expires_at - now()), 0)::float8
			FROM gateway_leases WHERE wh = $1 AND gw = $2`, wh, gw).Scan(&owner, &left)
	}
	if err != nil {
		return false, false, fmt.Errorf("lease of %s/%s: %w", wh, gw, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if owner == l.id && l.closed {
		return false, false, nil // released meanwhile; the lease lapses
	}
	delete(l.deferred, k)
	if owner == l.id {
		l.held[k] = sent.Add(l.valid())
		delete(l.others, k)
		if !had {
			l.log.Info("gateway lease taken", "warehouse", wh, "gateway", gw, "replica", l.id)
		}
		return true, !had, nil
	}
	delete(l.held, k)
	l.others[k] = time.Now().Add(min(time.Duration(left*float64(time.Second)), l.ttl))
	return false, false, nil
}

// preferred reports whether this replica should take the unleased key k
// now: it is the live replica rendezvous hashing prefers for k, or the
// preferred one left k unleased for a whole TTL. The list of live replicas
// is read again when older than a second (a replica that just started is
// known at once, not at the next renewal).
func (l *Leases) preferred(ctx context.Context, k gwKey, now time.Time) (bool, error) {
	l.mu.Lock()
	stale := now.Sub(l.liveAt) > time.Second
	l.mu.Unlock()
	if stale {
		var live []string
		rows, err := l.pool.Query(ctx, `SELECT id FROM replicas WHERE expires_at > now()`)
		if err != nil {
			return false, fmt.Errorf("live replicas: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return false, fmt.Errorf("live replicas: %w", err)
			}
			live = append(live, id)
		}
		if err := rows.Err(); err != nil {
			return false, fmt.Errorf("live replicas: %w", err)
		}
		l.mu.Lock()
		l.live, l.liveAt = live, now
		l.mu.Unlock()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if pick := Rendezvous(k.wh+"\x00"+k.gw, l.live); pick == "" || pick == l.id {
		return true, nil
	}
	since, ok := l.deferred[k]
	if !ok {
		l.deferred[k] = now
		return false, nil
	}
	return now.Sub(since) >= l.ttl, nil
}

// Rendezvous returns the member of ids that highest-random-weight hashing
// prefers for key ("" for none): every replica with the same list picks the
// same one, and a replica leaving moves only its own keys.
func Rendezvous(key string, ids []string) string {
	var best string
	var bestW uint64
	k := mix64(fnv64(key))
	for _, id := range ids {
		if w := mix64(fnv64(id) ^ k); best == "" || w > bestW || (w == bestW && id < best) {
			best, bestW = id, w
		}
	}
	return best
}

func fnv64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// mix64 is the SplitMix64 finaliser: every input bit moves every output
// bit, which FNV alone does not do for inputs that differ in a last byte.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// valid is how long after sending a renewal this replica trusts it: a
// margin under the TTL covers clock-rate differences and slow replies.
func (l *Leases) valid() time.Duration { return l.ttl * 8 / 10 }

// Run renews this replica's leases and heartbeat every TTL/3 and refreshes
// what it knows of the other replicas' leases, until ctx ends; then it
// releases its leases so that other replicas take the gateways over at
// once.
func (l *Leases) Run(ctx context.Context) {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		if err := l.renew(ctx); err != nil && ctx.Err() == nil {
			l.log.Warn("gateway leases not renewed; they lapse if this lasts", "err", err, "ttl", l.ttl)
		}
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := l.Release(rctx); err != nil {
				l.log.Warn("gateway leases not released; other replicas take them over when they expire", "err", err)
			}
			return
		case <-t.C:
		}
	}
}

func (l *Leases) renew(ctx context.Context) error {
	sent := time.Now()
	mine := map[gwKey]bool{}
	others := map[gwKey]time.Time{}
	load := map[string]int{}
	var b pgx.Batch
	ms := l.ttl.Milliseconds()
	b.Queue(`INSERT INTO replicas (id, expires_at) VALUES ($1, now() + $2 * interval '1 millisecond')
		ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at`, l.id, ms)
	// A lease that lapsed but that nobody took is still this replica's.
	b.Queue(`UPDATE gateway_leases SET expires_at = now() + $2 * interval '1 millisecond' WHERE owner = $1
		RETURNING wh, gw`, l.id, ms).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var k gwKey
			if err := rows.Scan(&k.wh, &k.gw); err != nil {
				return err
			}
			mine[k] = true
		}
		return rows.Err()
	})
	b.Queue(`SELECT wh, gw, owner, extract(epoch FROM expires_at - now())::float8 FROM gateway_leases
		WHERE owner <> $1 AND expires_at > now()`, l.id).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var k gwKey
			var owner string
			var left float64
			if err := rows.Scan(&k.wh, &k.gw, &owner, &left); err != nil {
				return err
			}
			others[k] = sent.Add(min(time.Duration(left*float64(time.Second)), l.ttl))
			load[owner]++
		}
		return rows.Err()
	})
	b.Queue(`SELECT id FROM replicas WHERE expires_at > now()`).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			if _, ok := load[id]; !ok {
				load[id] = 0
			}
		}
		return rows.Err()
	})
	b.Queue(`DELETE FROM replicas WHERE expires_at < now() - interval '1 day'`)
	if err := l.pool.SendBatch(ctx, &b).Close(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range l.held {
		if !mine[k] {
			delete(l.held, k)
			l.log.Warn("gateway lease lost to another replica (this one was unreachable or stalled past the lease TTL)", "warehouse", k.wh, "gateway", k.gw)
		}
	}
	for k := range mine {
		l.held[k] = sent.Add(l.valid())
	}
	l.others = others
	load[l.id] = len(l.held)
	l.live = l.live[:0]
	for id := range load {
		l.live = append(l.live, id)
	}
	l.liveAt = sent
	for k := range l.deferred {
		if _, leased := others[k]; leased {
			delete(l.deferred, k)
		}
	}
	return nil
}

// Release gives up every lease of this replica, which takes none after.
func (l *Leases) Release(ctx context.Context) error {
	l.mu.Lock()
	l.closed, l.held = true, map[gwKey]time.Time{}
	l.mu.Unlock()
	var b pgx.Batch
	b.Queue(`DELETE FROM gateway_leases WHERE owner = $1`, l.id)
	b.Queue(`DELETE FROM replicas WHERE id = $1`, l.id)
	return l.pool.SendBatch(ctx, &b).Close()
}
