package broker

import (
	"net"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// DefaultMaxConnsPerIP is the default bound on the MQTT clients one
// remote address may have connected at once (Config.MaxConnsPerIP): room
// for every gateway of a large warehouse behind one NAT address, far
// below the broker's connection limit, so one address cannot take all of
// it.
const DefaultMaxConnsPerIP = 500

// perIP bounds the clients connected from one IP address. The hook has no
// word of disconnections, so the counts are the broker's live connections
// by address, re-read every refreshEvery (connz), plus the connections
// admitted since: between two reads a count can only be too high, never
// too low.
type perIP struct {
	limit int

	mu     sync.Mutex
	live   map[string]int // by IP, at the last read
	added  map[string]int // admitted since
	warned map[string]bool
}

const refreshEvery = time.Second

func newPerIP(limit int) *perIP {
	return &perIP{limit: limit, live: map[string]int{}, added: map[string]int{}, warned: map[string]bool{}}
}

// admit reports whether one more client from ip may connect (and counts
// it), and whether this is the first refusal of ip since the last read
// (to log once).
func (p *perIP) admit(ip string) (ok, firstRefusal bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.live[ip]+p.added[ip] >= p.limit {
		first := !p.warned[ip]
		p.warned[ip] = true
		return false, first
	}
	p.added[ip]++
	return true, false
}

// set replaces the live counts with a fresh read.
func (p *perIP) set(live map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.live, p.added, p.warned = live, map[string]int{}, map[string]bool{}
}

// remoteIP is the IP address of a client's remote end ("" in-process).
func remoteIP(c server.ClientAuthentication) string {
	a := c.RemoteAddress()
	if a == nil {
		return ""
	}
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// countPerIP re-reads the live connections by IP every refreshEvery until
// stop is closed.
func (b *Broker) countPerIP(p *perIP, maxConns int, stop <-chan struct{}) {
	t := time.NewTicker(refreshEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		cz, err := b.ns.Connz(&server.ConnzOptions{Limit: maxConns + 100})
		if err != nil {
			continue
		}
		live := make(map[string]int, len(cz.Conns))
		for _, c := range cz.Conns {
			if c.IP != "" {
				live[c.IP]++
			}
		}
		p.set(live)
	}
}
