package uplink

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// TLSFiles name the PEM files of the agent's TLS client.
type TLSFiles struct {
	CA   string // CA bundle that signed the broker's certificate; empty: system roots
	Cert string // this gateway's client certificate, CN "{wh}/{gw}"
	Key  string
}

// ErrIdentity is returned (wrapped) when the gateway's broker identity —
// its client certificate CN or MQTT username — does not match its
// configured warehouse/gateway. The broker's ACL would then refuse (or
// silently drop) everything it publishes.
var ErrIdentity = errors.New("gateway identity does not match warehouse/gateway")

// LoadTLS builds the TLS client configuration and returns the CN of the
// client certificate ("" without one).
func LoadTLS(f TLSFiles) (*tls.Config, string, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CA != "" {
		b, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, "", fmt.Errorf("tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, "", fmt.Errorf("tls-ca: %s holds no PEM certificate", f.CA)
		}
		cfg.RootCAs = pool
	}
	if (f.Cert == "") != (f.Key == "") {
		return nil, "", errors.New("tls-cert and tls-key: set both or neither")
	}
	if f.Cert == "" {
		return cfg, "", nil
	}
	kp, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, "", fmt.Errorf("tls-cert/tls-key: %w", err)
	}
	leaf, err := x509.ParseCertificate(kp.Certificate[0])
	if err != nil {
		return nil, "", fmt.Errorf("tls-cert: %w", err)
	}
	if time.Now().After(leaf.NotAfter) {
		return nil, "", fmt.Errorf("tls-cert: the certificate %q expired on %s: issue a new one (`shelfsync-server certs issue`)", leaf.Subject.CommonName, leaf.NotAfter.Format(time.DateOnly))
	}
	cfg.Certificates = []tls.Certificate{kp}
	return cfg, leaf.Subject.CommonName, nil
}

// CertCN returns the CN of the first certificate in a PEM file.
func CertCN(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return "", fmt.Errorf("%s: no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return "", err
	}
	return c.Subject.CommonName, nil
}

// CheckIdentity reports whether identity (certificate CN or MQTT username)
// is the gateway wh/gw: "{wh}/{gw}", or the legacy "gw:{wh}/{gw}" CN that
// only the embedded broker accepts.
func CheckIdentity(what, identity, wh, gw string) error {
	want := wh + "/" + gw
	if identity == want || identity == "gw:"+want {
		return nil
	}
	return fmt.Errorf("%w: %s is %q but this agent is configured as warehouse=%q gateway=%q, which needs %q; fix the certificate (`shelfsync-server certs issue --warehouse %s --gateway %s`) or the warehouse/gateway settings",
		ErrIdentity, what, identity, wh, gw, want, wh, gw)
}

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
