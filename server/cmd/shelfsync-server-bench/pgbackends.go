package main

import (
	"context"
	"net/url"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// runBackends follows the CPU of the PostgreSQL backends that serve one
// run's servers — the connections whose application_name is the run's
// tag — and not the rest of the machine's PostgreSQL: other databases and
// schemas served meanwhile (another program's tests, say) would count
// otherwise. It lists them every 250 ms (a backend that ends between two
// samples loses at most its last 250 ms) and sums, per backend, the CPU it
// used after the first sample.
type runBackends struct {
	conn *pgx.Conn
	tag  string

	mu    sync.Mutex
	first map[int]float64 // CPU at the first sample that saw the backend (0 when it began after start)
	last  map[int]float64
	stop  chan struct{}
	done  chan struct{}
}

// tagDSN returns dsn with application_name set to tag.
func tagDSN(dsn, tag string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("application_name", tag)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// followBackends starts sampling; the backends alive now are the baseline.
func followBackends(ctx context.Context, dsn, tag string) (*runBackends, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	r := &runBackends{conn: conn, tag: tag, first: map[int]float64{}, last: map[int]float64{}, stop: make(chan struct{}), done: make(chan struct{})}
	if err := r.sample(ctx, true); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	go func() {
		defer close(r.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				_ = r.sample(ctx, false)
			}
		}
	}()
	return r, nil
}

func (r *runBackends) sample(ctx context.Context, start bool) error {
	rows, err := r.conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, r.tag)
	if err != nil {
		return err
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, pid := range pids {
		own, _, _, comm, err := procTimes(int(pid))
		if err != nil || comm != "postgres" {
			continue
		}
		if _, seen := r.first[int(pid)]; !seen {
			r.first[int(pid)] = 0
			if start {
				r.first[int(pid)] = own
			}
		}
		r.last[int(pid)] = own
	}
	return nil
}

// end takes a last sample, stops, and returns the CPU seconds the run's
// backends used since followBackends, and how many there were.
func (r *runBackends) end(ctx context.Context) (sec float64, backends int) {
	close(r.stop)
	<-r.done
	_ = r.sample(ctx, false)
	r.conn.Close(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	for pid, v := range r.last {
		sec += v - r.first[pid]
	}
	return sec, len(r.last)
}
