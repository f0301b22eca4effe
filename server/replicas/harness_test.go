// Package replicas runs several shelfsync-server processes against one
// PostgreSQL database and one Mosquitto broker, with real agents and
// simulated scanners, to check that replicas apply every op exactly once
// (also across kill -9) and to measure what a round-robin shared
// subscription costs. It needs SHELFSYNC_TEST_PG and Mosquitto
// (deploy/dev/services.sh; `make test-integration` runs it).
package replicas

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/testbed"
)

// env returns the PostgreSQL URL and the mosquitto binary. Without them
// the test skips, unless SHELFSYNC_INTEGRATION is set: then it fails.
func env(t *testing.T) (dsn, mosquitto string) {
	t.Helper()
	dsn = testbed.PostgresURL()
	if dsn == "" {
		t.Skip("SHELFSYNC_TEST_PG is not set: run deploy/dev/services.sh, then eval \"$(deploy/dev/env.sh)\"")
	}
	mosquitto, err := testbed.MosquittoBin()
	if err != nil {
		if testbed.Integration() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return dsn, mosquitto
}

func freePort(t *testing.T) string { t.Helper(); return testbed.Addr(t) }

// waitFor polls cond until it holds; the test fails if d passes first.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testbed.Await(t, d, what, cond)
}

// reportAtCleanup kills p when the test ends, prints its output's tail if
// the test failed, and keeps the whole output in SHELFSYNC_REPLICAS_LOGS
// when that names a directory.
func reportAtCleanup(t *testing.T, p *testbed.Proc) {
	t.Cleanup(func() {
		p.Stop(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("---- %s output (tail) ----\n%s", p.Name, p.Tail(40))
		}
		if dir := os.Getenv("SHELFSYNC_REPLICAS_LOGS"); dir != "" {
			_ = os.WriteFile(filepath.Join(dir, strings.NewReplacer("/", "_", "#", "_").Replace(t.Name()+"-"+p.Name)+".log"), []byte(p.Output()), 0o644)
		}
	})
}

// mode is how replicas split the gateways.
type mode string

const (
	modeShared mode = "shared" // $share/GROUP/… as the broker distributes it (Mosquitto: round robin)
	modeLeases mode = "leases" // the default: every replica subscribes; a PostgreSQL lease picks the one that handles a warehouse
)

// cluster is one Mosquitto, one PostgreSQL schema, server replicas and
// gateways.
type cluster struct {
	t        *testing.T
	dir      string
	dsn      string
	mqtt     string // host:port
	mode     mode
	bins     testbed.Bins
	replicas []*replica
	gateways []*gateway
	obs      *observer
}

type replica struct {
	c    *cluster
	i    int
	http string
	srv  *testbed.Server
}

func newCluster(t *testing.T, replicas int, m mode) *cluster {
	dsn, mosquitto := env(t)
	bins, err := testbed.Build(t.Context())
	require.NoError(t, err)
	c := &cluster{t: t, dir: t.TempDir(), mode: m, bins: bins}
	schemaDSN, drop, err := testbed.NewSchema(t.Context(), dsn, "shelfsync_replicas")
	require.NoError(t, err)
	t.Cleanup(drop)
	c.dsn = schemaDSN
	mosq, err := testbed.StartMosquitto(t.Context(), mosquitto, c.dir, "log_type notice")
	require.NoError(t, err)
	reportAtCleanup(t, mosq.Proc)
	c.mqtt = mosq.Addr
	// The schema comes from the migrate command, as an operator would run it.
	out, err := exec.Command(bins.Server, "migrate", "--store", c.dsn).CombinedOutput()
	require.NoError(t, err, "migrate: %s", out)
	require.Contains(t, string(out), "applied 0001_")
	c.obs = newObserver(t, c.mqtt)
	for i := range replicas {
		r := &replica{c: c, i: i, http: freePort(t)}
		args := []string{"--store", c.dsn, "--broker", "tcp://" + c.mqtt,
			"--data", filepath.Join(c.dir, fmt.Sprint("server", i)), "--workers", "4", "--gateway-rate", "-1"}
		switch c.mode {
		case modeShared:
			args = append(args, "--share-group", "shelfsync")
		case modeLeases: // --partition warehouse, the default
			args = append(args, "--lease-ttl", "3s")
		}
		r.srv = &testbed.Server{Bin: bins.Server, HTTP: r.http, Args: args, Name: fmt.Sprint("server", i)}
		c.replicas = append(c.replicas, r)
		r.start()
	}
	return c
}

// start starts the replica (again) and waits until it is healthy.
func (r *replica) start() {
	err := r.srv.Start(r.c.t.Context())
	if p := r.srv.Proc(); p != nil {
		reportAtCleanup(r.c.t, p)
	}
	require.NoError(r.c.t, err)
}

// proc is the replica's current process.
func (r *replica) proc() *testbed.Proc { return r.srv.Proc() }

func getJSON(u string, v any) error { return testbed.GetJSON(context.Background(), u, v) }

// metric sums the samples of a Prometheus metric whose labels contain
// match (e.g. `verdict="gap"`), from a replica's /metrics.
func (r *replica) metric(name, match string) float64 {
	v, _ := testbed.Metric("http://"+r.http+"/metrics", name, match)
	return v
}

// stock returns location/sku → on-hand of wh from a replica's API.
func (r *replica) stock(wh string) (map[string]int64, error) {
	var b struct {
		Items []struct {
			Location, SKU string
			OnHand        int64 `json:"on_hand"`
		}
	}
	if err := getJSON("http://"+r.http+"/api/v1/stock?warehouse="+wh, &b); err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, it := range b.Items {
		out[it.Location+"/"+it.SKU] = it.OnHand
	}
	return out, nil
}

// gateway is an agent with one simulated scanner behind a pty.
type gateway struct {
	*testbed.Gateway
	c      *cluster
	wh, gw string
}

func (c *cluster) addGateway(wh, gw string) *gateway {
	g := &gateway{c: c, wh: wh, gw: gw, Gateway: &testbed.Gateway{Bins: c.bins, WH: wh, GW: gw,
		Dir: filepath.Join(c.dir, wh+"-"+gw), HTTP: freePort(c.t), Broker: "tcp://" + c.mqtt}}
	err := g.Start(c.t.Context())
	for _, p := range []*testbed.Proc{g.Sim(), g.Agent()} {
		if p != nil {
			reportAtCleanup(c.t, p)
		}
	}
	require.NoError(c.t, err)
	c.gateways = append(c.gateways, g)
	return g
}

func (g *gateway) status() (testbed.AgentStatus, error) { return g.Status() }

// scan types lines into the simulated scanner.
func (g *gateway) scan(lines ...string) error { return g.Scan(lines...) }

// beeps counts the feedback the simulated scanner received, by signal.
func (g *gateway) beeps() map[string]int { return g.Beeps() }

func (g *gateway) scannedCount() int { return len(g.Scanned()) }

// observer subscribes to every gateway's down topic, the alert topics and
// the channels' availability topics, as a third party would, to count what
// the replicas publish.
type observer struct {
	mu       sync.Mutex
	acks     int
	batch    int
	items    map[string]int      // wh/gw/seq → times a downstream item was published
	alerts   map[string]int      // payload → times published
	alertLog []alertMsg          // every alert message, in arrival order
	avail    map[string][][]byte // channel → availability payloads, in arrival order
	client   paho.Client
}

// alertMsg is what the observer reads of an alert message.
type alertMsg struct {
	ID           string `json:"id"`
	Kind         string `json:"kind"`
	Status       string `json:"status"`
	Warehouse    string `json:"warehouse"`
	SKU          string `json:"sku"`
	Conflict     string `json:"conflict"`
	ConflictKind string `json:"conflict_kind"`
	at           time.Time
}

// parseAlertMsg reads a message of the alerts topic: an alert, or a
// conflict's notification {"event": "conflict.opened", "conflict": {…}},
// which it returns as ID "conflict <id>", Kind "conflict", Status the
// event's last word (opened, ended) and Conflict the conflict's id.
func parseAlertMsg(payload []byte) (alertMsg, bool) {
	var probe struct {
		Event    string          `json:"event"`
		Conflict json.RawMessage `json:"conflict"`
	}
	if json.Unmarshal(payload, &probe) == nil && strings.HasPrefix(probe.Event, "conflict.") {
		var c struct {
			ID, Kind, Warehouse, SKU string
		}
		if json.Unmarshal(probe.Conflict, &c) != nil {
			return alertMsg{}, false
		}
		return alertMsg{ID: "conflict " + c.ID, Kind: "conflict", Status: strings.TrimPrefix(probe.Event, "conflict."),
			Warehouse: c.Warehouse, SKU: c.SKU, Conflict: c.ID, ConflictKind: c.Kind}, true
	}
	var a alertMsg
	return a, json.Unmarshal(payload, &a) == nil
}

func newObserver(t *testing.T, addr string) *observer {
	o := &observer{items: map[string]int{}, alerts: map[string]int{}, avail: map[string][][]byte{}}
	topics := protocol.NewTopics("")
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(fmt.Sprintf("observer-%d", time.Now().UnixNano())).SetCleanSession(true)
	o.client = paho.NewClient(opts)
	tok := o.client.Connect()
	require.True(t, tok.WaitTimeout(10*time.Second) && tok.Error() == nil, "observer connect: %v", tok.Error())
	down := topics.Root + "/+/+/down"
	alerts := topics.Root + "/+/alerts"
	avail := topics.Availability("+")
	tok = o.client.SubscribeMultiple(map[string]byte{down: 1, alerts: 1, avail: 1}, func(_ paho.Client, m paho.Message) {
		o.mu.Lock()
		defer o.mu.Unlock()
		if strings.HasSuffix(m.Topic(), "/alerts") {
			o.alerts[string(m.Payload())]++
			if a, ok := parseAlertMsg(m.Payload()); ok {
				a.at = time.Now()
				o.alertLog = append(o.alertLog, a)
			}
			return
		}
		if rest, ok := strings.CutPrefix(m.Topic(), topics.Root+"/channels/"); ok {
			ch, _, _ := strings.Cut(rest, "/")
			o.avail[ch] = append(o.avail[ch], append([]byte(nil), m.Payload()...))
			return
		}
		msg, err := protocol.Decode(m.Payload())
		if err != nil {
			return
		}
		switch b := msg.(type) {
		case *protocol.Ack:
			o.acks++
		case *protocol.DownBatch:
			o.batch++
			for _, it := range b.Items {
				o.items[fmt.Sprintf("%s/%s/%d", b.WH, b.GW, it.Seq)]++
			}
		}
	})
	require.True(t, tok.WaitTimeout(10*time.Second) && tok.Error() == nil, "observer subscribe: %v", tok.Error())
	t.Cleanup(func() { o.client.Disconnect(100) })
	return o
}

// down returns the downstream items published and how many of those
// publications repeated an item already published.
func (o *observer) down() (items, repeats int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, n := range o.items {
		items += n
		repeats += n - 1
	}
	return items, repeats
}

func (o *observer) duplicateAlerts() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	d := 0
	for _, n := range o.alerts {
		d += n - 1
	}
	return d
}

func (o *observer) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.acks, o.batch, o.items, o.alerts = 0, 0, map[string]int{}, map[string]int{}
	o.alertLog, o.avail = nil, map[string][][]byte{}
}

// alertMsgs returns the alert messages published so far.
func (o *observer) alertMsgs() []alertMsg {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]alertMsg(nil), o.alertLog...)
}

// availability returns the availability payloads published for channel.
func (o *observer) availability(channel string) [][]byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([][]byte(nil), o.avail[channel]...)
}

// lastAvailability returns the last availability payload published for
// channel, and how many were.
func (o *observer) lastAvailability(channel string) ([]byte, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ms := o.avail[channel]
	if len(ms) == 0 {
		return nil, 0
	}
	return ms[len(ms)-1], len(ms)
}
