package app

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/auth"
	"github.com/shelfsync/shelfsync/server/internal/broker"
	"github.com/shelfsync/shelfsync/server/internal/certs"
	"github.com/shelfsync/shelfsync/server/internal/config"
)

// pki is a test PKI made with the certs package: CA, broker certificate for
// 127.0.0.1/localhost, server certificate, and gateways WH1/gw-a, WH1/gw-b.
type pki struct {
	dir    string
	tokens string
	viewer string
	oper   string
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	require.NoError(t, certs.Init(p.dir, []string{"127.0.0.1", "localhost"}, 0, certs.Options{}))
	for _, gw := range []string{"gw-a", "gw-b"} {
		_, err := certs.IssueGateway(p.dir, "WH1", gw, certs.Options{})
		require.NoError(t, err)
	}
	p.tokens = filepath.Join(p.dir, "tokens")
	var err error
	p.viewer, err = auth.AddToken(p.tokens, "viewer", auth.RoleViewer)
	require.NoError(t, err)
	p.oper, err = auth.AddToken(p.tokens, "operator", auth.RoleOperator)
	require.NoError(t, err)
	return p
}

func (p *pki) file(name string) string { return filepath.Join(p.dir, name) }

// gatewayTLS returns the TLS client configuration of gateway gw.
func (p *pki) gatewayTLS(t *testing.T, gw string) *tls.Config {
	d := certs.GatewayDir(p.dir, "WH1", gw)
	c, err := certs.ClientTLS(p.file(certs.CACert), filepath.Join(d, certs.GatewayCrt), filepath.Join(d, certs.GatewayKey))
	require.NoError(t, err)
	return c
}

// secureConfig is a server with an mTLS embedded broker and API tokens.
func (p *pki) secureConfig(dataDir string) config.Config {
	return config.Config{DataDir: dataDir, HTTPAddr: "127.0.0.1:0", MQTTAddr: "127.0.0.1:0", Root: protocol.DefaultRoot,
		Workers: 2, LogLevel: "info", LogFormat: "text", Shutdown: time.Second,
		Security: config.Security{TLSCA: p.file(certs.CACert), TLSBrokerCert: p.file(certs.BrokerCert), TLSBrokerKey: p.file(certs.BrokerKey),
			APITokens: p.tokens, OpenHealthz: true}}
}

func startWith(t *testing.T, cfg config.Config) *Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(ctx, cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, 10*time.Second, "server ready", func() bool {
		resp, err := http.Get("http://" + s.HTTPAddr() + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return s
}

// mqttGateway is a raw MQTT client speaking the protocol by hand.
type mqttGateway struct {
	t      *testing.T
	c      paho.Client
	wh, gw string // what it claims in topics and payloads
	lost   chan error

	mu   sync.Mutex
	acks []*protocol.Ack
	at   []time.Time
}

type gwOpts struct {
	url      string
	tls      *tls.Config
	user, pw string
	clientID string
}

// dialGateway connects; it returns the connect error instead of failing.
func dialGateway(t *testing.T, o gwOpts, wh, gw string) (*mqttGateway, error) {
	g := &mqttGateway{t: t, wh: wh, gw: gw, lost: make(chan error, 16)}
	id := o.clientID
	if id == "" {
		id = protocol.ClientID(wh, gw) // the broker admits a gateway under its own client id only
	}
	opts := paho.NewClientOptions().AddBroker(o.url).SetClientID(id).SetCleanSession(true).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
		SetWriteTimeout(time.Second). // else a publish blocks forever once the broker cut the client off

		SetConnectionLostHandler(func(_ paho.Client, err error) { g.lost <- err })
	if o.tls != nil {
		opts.SetTLSConfig(o.tls)
	}
	if o.user != "" {
		opts.SetUsername(o.user).SetPassword(o.pw)
	}
	g.c = paho.NewClient(opts)
	tok := g.c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { g.c.Disconnect(50) })
	return g, nil
}

// subscribeDown subscribes to the down topic of wh/gw and returns the
// broker's grant (0x80 = refused).
func (g *mqttGateway) subscribeDown(wh, gw string) byte {
	topic := protocol.NewTopics("").Down(wh, gw)
	tok := g.c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
		msg, err := protocol.Decode(m.Payload())
		if err != nil {
			return
		}
		if a, ok := msg.(*protocol.Ack); ok {
			g.mu.Lock()
			g.acks = append(g.acks, a)
			g.at = append(g.at, time.Now())
			g.mu.Unlock()
		}
	})
	require.True(g.t, tok.WaitTimeout(5*time.Second))
	require.NoError(g.t, tok.Error())
	return tok.(*paho.SubscribeToken).Result()[topic]
}

func (g *mqttGateway) ackCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.acks)
}

func (g *mqttGateway) waitAck(before int) *protocol.Ack {
	var a *protocol.Ack
	waitFor(g.t, 10*time.Second, "ack", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		if len(g.acks) > before {
			a = g.acks[before]
			return true
		}
		return false
	})
	return a
}

func batch(t *testing.T, wh, gw string, first, last uint64, qty int64) []byte {
	b := &protocol.OpBatch{Header: protocol.Header{WH: wh, GW: gw}, First: first, Last: last}
	for s := first; s <= last; s++ {
		b.Ops = append(b.Ops, protocol.Op{Seq: s, HLC: protocol.MakeHLC(time.Now().UnixMilli(), uint16(s)), Kind: protocol.OpReceive, Location: "L", SKU: "sku1", Qty: qty})
	}
	raw, err := protocol.Encode(b)
	require.NoError(t, err)
	return raw
}

// publishUp publishes raw on the up topic of wh/gw (QoS 1) and reports
// whether the broker acknowledged it.
func (g *mqttGateway) publishUp(wh, gw string, raw []byte) bool {
	tok := g.c.Publish(protocol.NewTopics("").Up(wh, gw), 1, false, raw)
	return tok.WaitTimeout(3*time.Second) && tok.Error() == nil
}

// sendBatch publishes a batch for itself and waits for the ack.
func (g *mqttGateway) sendBatch(first, last uint64, qty int64) *protocol.Ack {
	n := g.ackCount()
	require.True(g.t, g.publishUp(g.wh, g.gw, batch(g.t, g.wh, g.gw, first, last, qty)))
	return g.waitAck(n)
}

func httpDo(t *testing.T, method, url, token string) (int, string) {
	req, err := http.NewRequest(method, url, strings.NewReader("{}"))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var sb strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		sb.WriteString(sc.Text() + "\n")
	}
	return resp.StatusCode, sb.String()
}

// metric returns the value of the sample name{labels} ("" = no labels) from
// /metrics, 0 when absent.
func metric(t *testing.T, s *Server, token, name, labels string) float64 {
	code, body := httpDo(t, "GET", "http://"+s.HTTPAddr()+"/metrics", token)
	require.Equal(t, 200, code)
	want := name
	if labels != "" {
		want += "{" + labels + "}"
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, want+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	return 0
}

func stockWith(t *testing.T, s *Server, token, wh string) string {
	code, body := httpDo(t, "GET", fmt.Sprintf("http://%s/api/v1/stock?warehouse=%s", s.HTTPAddr(), wh), token)
	require.Equal(t, 200, code, body)
	return body
}

// TestSecurityEmbeddedBroker checks the refusals of issue 7 against the
// embedded broker with mutual TLS and API tokens.
func TestSecurityEmbeddedBroker(t *testing.T) {
	p := newPKI(t)
	cfg := p.secureConfig(t.TempDir())
	cfg.MQTTPasswords = filepath.Join(t.TempDir(), "passwd")
	require.NoError(t, broker.SetPassword(cfg.MQTTPasswords, "WH1/gw-p", "correct-horse-battery"))
	s := startWith(t, cfg)
	waitFor(t, 10*time.Second, "ingest connected over TLS", s.ingest.Connected)
	url := "ssl://" + s.MQTTAddr()
	checkBrokerRefusals(t, p, url, nil)

	// A gateway without certificate, by password (TLS server-side only).
	caOnly, err := certs.ClientTLS(p.file(certs.CACert), "", "")
	require.NoError(t, err)
	_, err = dialGateway(t, gwOpts{url: url, tls: caOnly, user: "WH1/gw-p", pw: "wrong-horse-battery"}, "WH1", "gw-p")
	require.Error(t, err)
	pg, err := dialGateway(t, gwOpts{url: url, tls: caOnly, user: "WH1/gw-p", pw: "correct-horse-battery"}, "WH1", "gw-p")
	require.NoError(t, err)
	require.Equal(t, byte(1), pg.subscribeDown("WH1", "gw-p"))
	require.Equal(t, uint64(1), pg.sendBatch(1, 1, 1).WM)
	require.Equal(t, byte(0x80), pg.subscribeDown("WH1", "gw-a"))

	a, err := dialGateway(t, gwOpts{url: url, tls: p.gatewayTLS(t, "gw-a")}, "WH1", "gw-a")
	require.NoError(t, err)
	require.Equal(t, byte(1), a.subscribeDown("WH1", "gw-a"))
	require.Equal(t, uint64(2), a.sendBatch(1, 2, 5).WM, "a gateway speaks for itself")

	// Gateway A's certificate publishing on B's topic: acknowledged and
	// dropped by the broker (as Mosquitto does), nothing reaches B's
	// ledger (checked below), counted.
	a.publishUp("WH1", "gw-b", batch(t, "WH1", "gw-b", 1, 1, 100))
	waitFor(t, 5*time.Second, "publish denial counted", func() bool {
		return metric(t, s, p.viewer, "shelfsync_broker_acl_denied_total", `action="publish",role="gateway"`) == 1
	})

	// A's subscription to B's down topic is refused.
	require.Equal(t, byte(0x80), a.subscribeDown("WH1", "gw-b"))
	require.Equal(t, byte(1), a.subscribeDown("WH1", "gw-a"))

	// A spoofed payload on A's own topic naming B: rejected and counted.
	before := metric(t, s, p.viewer, "shelfsync_ingest_rejected_total", `reason="spoofed"`)
	require.True(t, a.publishUp("WH1", "gw-a", batch(t, "WH1", "gw-b", 1, 1, 100)))
	waitFor(t, 5*time.Second, "spoofed counted", func() bool {
		return metric(t, s, p.viewer, "shelfsync_ingest_rejected_total", `reason="spoofed"`) == before+1
	})
	require.Equal(t, uint64(3), a.sendBatch(3, 3, 1).WM)
	wm, err := s.st.Watermark(context.Background(), "WH1", "gw-b")
	require.NoError(t, err)
	require.Zero(t, wm, "B's stock untouched")
	require.Contains(t, stockWith(t, s, p.viewer, "WH1"), `"on_hand":12`)

	checkAPIAuth(t, s, p)
}

// checkBrokerRefusals: no certificate, a certificate from another CA and a
// plain-TCP client are all refused by a broker at url (ssl://).
func checkBrokerRefusals(t *testing.T, p *pki, url string, extra func()) {
	t.Helper()
	caOnly, err := certs.ClientTLS(p.file(certs.CACert), "", "")
	require.NoError(t, err)
	_, err = dialGateway(t, gwOpts{url: url, tls: caOnly}, "WH1", "gw-a")
	require.Error(t, err, "no client certificate must be refused")
	_, err = dialGateway(t, gwOpts{url: url, tls: caOnly, user: "WH1/gw-a", pw: "guess"}, "WH1", "gw-a")
	require.Error(t, err, "a username without a valid password must be refused")
	_, err = dialGateway(t, gwOpts{url: url, tls: caOnly, user: "server", pw: "guess"}, "WH1", "gw-a")
	require.Error(t, err, "the server identity without credentials must be refused")

	other := newPKI(t) // another CA
	foreign := other.gatewayTLS(t, "gw-a")
	foreign.RootCAs = caOnly.RootCAs
	_, err = dialGateway(t, gwOpts{url: url, tls: foreign}, "WH1", "gw-a")
	require.Error(t, err, "a certificate from another CA must be refused")

	_, err = dialGateway(t, gwOpts{url: strings.Replace(url, "ssl://", "tcp://", 1)}, "WH1", "gw-a")
	require.Error(t, err, "plain TCP on the TLS port must fail")
	if extra != nil {
		extra()
	}
}

// checkAPIAuth: no token → 401, viewer on a write → 403, operator passes
// the authentication (the handler's own answer follows).
func checkAPIAuth(t *testing.T, s *Server, p *pki) {
	t.Helper()
	base := "http://" + s.HTTPAddr()
	code, _ := httpDo(t, "GET", base+"/api/v1/stock?warehouse=WH1", "")
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = httpDo(t, "GET", base+"/api/v1/stock?warehouse=WH1", "ssk_not-a-token")
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = httpDo(t, "GET", base+"/api/v1/stock?warehouse=WH1", p.viewer)
	require.Equal(t, http.StatusOK, code)
	code, _ = httpDo(t, "POST", base+"/api/v1/orders", p.viewer)
	require.Equal(t, http.StatusForbidden, code)
	code, _ = httpDo(t, "POST", base+"/api/v1/orders", p.oper)
	require.NotContains(t, []int{401, 403}, code)
	code, _ = httpDo(t, "GET", base+"/metrics", "")
	require.Equal(t, http.StatusUnauthorized, code, "/metrics is protected by default")
	code, _ = httpDo(t, "GET", base+"/healthz", "")
	require.Equal(t, http.StatusOK, code, "/healthz is open by default")
}
