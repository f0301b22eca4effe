package chaos

import (
	"io"
	"net"
	"sync"
	"time"
)

// Proxy is a TCP fault injector between one agent and the broker. In its
// normal state it forwards bytes both ways untouched; its toxics make the
// link misbehave the way a warehouse uplink does:
//
//   - Partition: existing connections are reset and new ones are refused
//     until Heal (a cable pulled, a VPN down).
//   - Stall: connections stay open but no byte moves in either direction
//     until Heal (a NAT that silently drops a flow); nothing is lost, so
//     the stream resumes intact if the peers have not given up.
//   - Latency: every chunk is delivered d later, in order.
//   - Rate: each direction is limited to n bytes per second (a slow link).
//   - Reset: every open connection is closed with a TCP RST, once.
//
// The zero value is not usable; call NewProxy.
type Proxy struct {
	ln     net.Listener
	target string

	mu          sync.Mutex
	partitioned bool
	stalled     bool
	healed      chan struct{} // closed when a stall ends
	latency     time.Duration
	rate        int // bytes per second per direction; 0 = unlimited
	conns       map[*link]struct{}
	closed      bool
	wg          sync.WaitGroup
}

// link is one proxied connection pair.
type link struct {
	client, server net.Conn
	once           sync.Once
}

func (l *link) close(rst bool) {
	l.once.Do(func() {
		if rst {
			for _, c := range []net.Conn{l.client, l.server} {
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0)
				}
			}
		}
		l.client.Close()
		l.server.Close()
	})
}

// NewProxy listens on listen (host:port; port 0 picks one) and forwards to
// target.
func NewProxy(listen, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[*link]struct{}{}, healed: make(chan struct{})}
	close(p.healed)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the address agents connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	conns := p.snapshot()
	if p.stalled {
		p.stalled = false
		close(p.healed)
	}
	p.mu.Unlock()
	err := p.ln.Close()
	for _, l := range conns {
		l.close(false)
	}
	p.wg.Wait()
	return err
}

func (p *Proxy) snapshot() []*link {
	out := make([]*link, 0, len(p.conns))
	for l := range p.conns {
		out = append(out, l)
	}
	return out
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse := p.partitioned || p.closed
		p.mu.Unlock()
		if refuse {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			c.Close()
			continue
		}
		s, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			c.Close() // broker down: the agent sees a refused/closed connection
			continue
		}
		l := &link{client: c, server: s}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			l.close(false)
			continue
		}
		p.conns[l] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pump(l, c, s)
		go p.pump(l, s, c)
	}
}

// chunk is bytes read at a time, delivered at a time.
type chunk struct {
	b  []byte
	at time.Time
}

// pump copies src to dst through the toxics. A reader goroutine stamps
// chunks; this goroutine delivers them when their latency has passed, so
// latency does not cap throughput.
func (p *Proxy) pump(l *link, src, dst net.Conn) {
	defer p.wg.Done()
	defer func() {
		l.close(false)
		p.mu.Lock()
		delete(p.conns, l)
		p.mu.Unlock()
	}()
	q := make(chan chunk, 256)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 16<<10)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{buf[:n], time.Now()}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		for {
			p.mu.Lock()
			stalled, healed, lat, rate := p.stalled, p.healed, p.latency, p.rate
			p.mu.Unlock()
			if stalled {
				<-healed
				continue
			}
			if wait := time.Until(c.at.Add(lat)); wait > 0 {
				time.Sleep(wait)
			}
			if rate > 0 {
				// Deliver in slices so a long chunk trickles out.
				for len(c.b) > 0 {
					n := min(len(c.b), max(rate/20, 1))
					if _, err := dst.Write(c.b[:n]); err != nil {
						drain(q)
						return
					}
					c.b = c.b[n:]
					time.Sleep(time.Duration(float64(n) / float64(rate) * float64(time.Second)))
				}
				break
			}
			if _, err := dst.Write(c.b); err != nil {
				drain(q)
				return
			}
			break
		}
	}
}

func drain(q chan chunk) {
	go func() {
		for range q {
		}
	}()
}

// Partition resets every connection and refuses new ones until Heal.
func (p *Proxy) Partition() {
	p.mu.Lock()
	p.partitioned = true
	conns := p.snapshot()
	p.mu.Unlock()
	for _, l := range conns {
		l.close(true)
	}
}

// Stall freezes every connection, open and new, until Heal.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stalled {
		p.stalled = true
		p.healed = make(chan struct{})
	}
}

// SetLatency delays every chunk by d (0 removes the toxic).
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	p.latency = d
	p.mu.Unlock()
}

// SetRate limits each direction to bytesPerSec (0 removes the toxic).
func (p *Proxy) SetRate(bytesPerSec int) {
	p.mu.Lock()
	p.rate = bytesPerSec
	p.mu.Unlock()
}

// Reset closes every open connection with a TCP RST; new ones are accepted.
func (p *Proxy) Reset() {
	p.mu.Lock()
	conns := p.snapshot()
	p.mu.Unlock()
	for _, l := range conns {
		l.close(true)
	}
}

// Heal removes every toxic.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partitioned = false
	p.latency = 0
	p.rate = 0
	if p.stalled {
		p.stalled = false
		close(p.healed)
	}
}

// Conns returns the number of open proxied connections.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

var _ io.Closer = (*Proxy)(nil)
