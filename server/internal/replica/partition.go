package replica

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// leases are the database's leases (store/postgres: lease.go), here one
// per warehouse.
type leases interface {
	Acquire(ctx context.Context, wh, gw string) (ok, taken bool, err error)
	Owns(wh, gw string) bool
	Held() int
	Run(ctx context.Context)
}

// wholeWarehouse is the gateway name of a warehouse's lease.
const wholeWarehouse = ""

// Partition divides the warehouses between the replicas. Every replica
// subscribes to every gateway; a replica applies a gateway's messages,
// acknowledges them and sends its downstream only while it holds the lease
// of the gateway's warehouse, and drops the others' messages unread. The
// first replica to see a message of an unleased warehouse takes the lease
// (the least loaded one first) and renews it while it lives; when it dies
// its leases expire after the lease TTL and the next message of each of
// its warehouses moves the warehouse to another replica; when it stops it
// releases them at once.
//
// A warehouse rather than a gateway, because a warehouse's gateways merge
// into the same stock keys, conflicts and downstream log: two replicas
// applying two of its gateways at once would wait on each other's row
// locks in PostgreSQL, and each would keep a view of the warehouse the
// other's work invalidates.
//
// Correctness never depends on leases — the database serialises each
// gateway through its watermark row — they only keep the work of a
// warehouse on one replica, so that it is done once.
type Partition struct {
	leases leases
	log    *slog.Logger

	lastLog atomic.Int64
	mu      sync.Mutex
	seen    map[gwKey]bool // gateways Accept told onGateway of under the current leases
}

type gwKey struct{ wh, gw string }

func newPartition(l leases, log *slog.Logger) *Partition {
	return &Partition{leases: l, log: log.With("component", "partition"), seen: map[gwKey]bool{}}
}

// Accept reports whether this replica handles a message of wh/gw: it
// holds wh's lease, or takes it now because nobody holds it. It is the
// ingest's Accept hook. onGateway is told of each gateway this replica
// starts handling: its warehouse's lease was just taken, or the gateway is
// first heard from under the lease.
func (p *Partition) Accept(ctx context.Context, wh, gw string, onGateway func(wh, gw string)) bool {
	ok, taken, err := p.leases.Acquire(ctx, wh, wholeWarehouse)
	if err != nil {
		if now := time.Now().Unix(); p.lastLog.Swap(now) < now-10 {
			p.log.Warn("warehouse lease unavailable; message dropped, the gateway will resend (logged once per 10 s)", "warehouse", wh, "gateway", gw, "err", err)
		}
		return false
	}
	if !ok {
		return false
	}
	p.mu.Lock()
	if taken {
		for k := range p.seen {
			if k.wh == wh {
				delete(p.seen, k)
			}
		}
	}
	fresh := !p.seen[gwKey{wh, gw}]
	p.seen[gwKey{wh, gw}] = true
	p.mu.Unlock()
	if fresh && onGateway != nil {
		onGateway(wh, gw)
	}
	return true
}

// Owns reports whether this replica handles wh/gw now (the downstream
// sender's hook). It never touches the database.
func (p *Partition) Owns(wh, _ string) bool { return p.leases.Owns(wh, wholeWarehouse) }

// Claim reports whether this replica reads warehouse wh's messages from
// the broker: it holds wh's lease, or takes it now (the link's Claim hook
// with the embedded clustered broker, where each warehouse has its own
// consumer). It never fails: a lease it cannot ask about is not claimed.
func (p *Partition) Claim(ctx context.Context, wh string) bool {
	ok, _, err := p.leases.Acquire(ctx, wh, wholeWarehouse)
	if err != nil {
		if now := time.Now().Unix(); p.lastLog.Swap(now) < now-10 {
			p.log.Warn("warehouse lease unavailable; its messages wait in the broker (logged once per 10 s)", "warehouse", wh, "err", err)
		}
		return false
	}
	return ok
}
