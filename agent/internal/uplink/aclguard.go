package uplink

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// aclGuard recognises a broker that answers this gateway's publishes by
// disconnecting it — what a broker does to an MQTT 3.1.1 client whose
// publish its ACL denies (mochi; EMQX with deny_action=disconnect) — so the
// uplink stops the reconnect-resend-disconnect loop and says why.
//
// A drop counts when it comes within quick of connecting, after a publish,
// with no ack since the connect. threshold such drops within window trip
// the guard: nothing is published for backoff. After that one probe is
// allowed; a single further counted drop trips it again. Any ack resets it.
type aclGuard struct {
	now       func() time.Time
	threshold int
	window    time.Duration
	quick     time.Duration
	backoff   time.Duration

	mu          sync.Mutex
	connectedAt time.Time
	publishedAt time.Time // first publish on this connection
	published   bool
	acked       bool
	drops       []time.Time
	tripped     bool // tripped before, no ack since
	until       time.Time
}

func newACLGuard(backoff time.Duration) *aclGuard {
	if backoff <= 0 {
		backoff = time.Minute
	}
	// A broker that refuses a 3.1.1 client's publish drops it at once, on
	// every connection; network faults drop connections at random times.
	// So only a drop within a few seconds of the connection's first
	// publish, with nothing acknowledged on it, counts — five of them in
	// two minutes trip the guard (the chaos soak showed three within 15 s
	// of connecting also happen under resets and broker restarts).
	return &aclGuard{now: time.Now, threshold: 5, window: 2 * time.Minute, quick: 3 * time.Second, backoff: backoff}
}

func (g *aclGuard) onConnect() {
	g.mu.Lock()
	g.connectedAt, g.published, g.acked = g.now(), false, false
	g.mu.Unlock()
}

func (g *aclGuard) onPublish() {
	g.mu.Lock()
	if !g.published {
		g.published, g.publishedAt = true, g.now()
	}
	g.mu.Unlock()
}

func (g *aclGuard) onAck() {
	g.mu.Lock()
	g.acked, g.drops, g.tripped, g.until = true, nil, false, time.Time{}
	g.mu.Unlock()
}

// onLost records a dropped connection and reports whether the guard just
// tripped, with the number of counted drops.
func (g *aclGuard) onLost() (bool, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if !g.published || g.acked || g.connectedAt.IsZero() || now.Sub(g.publishedAt) > g.quick {
		return false, 0
	}
	keep := g.drops[:0]
	for _, t := range g.drops {
		if now.Sub(t) <= g.window {
			keep = append(keep, t)
		}
	}
	g.drops = append(keep, now)
	need := g.threshold
	if g.tripped {
		need = 1
	}
	if len(g.drops) < need {
		return false, len(g.drops)
	}
	n := len(g.drops)
	g.drops, g.tripped, g.until = nil, true, now.Add(g.backoff)
	return true, n
}

// blocked reports whether publishing is suspended.
func (g *aclGuard) blocked() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.now().Before(g.until)
}

// identity returns how this gateway presents itself to the broker, for
// error messages.
func (c *Config) identity() string {
	switch {
	case c.CertCN != "":
		return fmt.Sprintf("client certificate CN %q", c.CertCN)
	case c.Username != "":
		return fmt.Sprintf("MQTT username %q", c.Username)
	}
	return "no identity (anonymous)"
}

// aclLoopError is the State.LastError when the guard trips.
func (u *Uplink) aclLoopError(drops int) string {
	return fmt.Sprintf("identity/ACL error: the broker disconnected this gateway %d times right after it published, with no ack — it refuses what this gateway publishes. "+
		"The agent presents %s and publishes as warehouse=%q gateway=%q on %s; the broker's ACL allows a gateway to publish only on {root}/{its CN or username}/up|status. "+
		"Fix the certificate/username or the warehouse/gateway/topic-root settings. Not sending for %s (ops keep committing locally).",
		drops, u.cfg.identity(), u.cfg.Warehouse, u.cfg.Gateway, u.topics.Up(u.cfg.Warehouse, u.cfg.Gateway), u.guard.backoff)
}

// onConnectFailed explains a refused connection or a failed TLS handshake.
func (u *Uplink) onConnectFailed(err error) {
	if err == nil {
		return
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "not Authorized"), strings.Contains(msg, "bad user name or password"):
		u.setError("the broker refused the connection (%v): it does not accept %s as gateway %s/%s; check the certificate/password and that the last will topic %s is allowed",
			err, u.cfg.identity(), u.cfg.Warehouse, u.cfg.Gateway, u.topics.Status(u.cfg.Warehouse, u.cfg.Gateway))
	case strings.Contains(msg, "x509:"), strings.Contains(msg, "tls:"), strings.Contains(msg, "certificate"):
		u.setError("TLS handshake with the broker failed (%v): check tls-ca (the CA that signed the broker certificate), the broker host name against its certificate, and this gateway's certificate", err)
	}
}
