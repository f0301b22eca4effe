// Package replicas runs several shelfsync-server processes against one
// PostgreSQL database and one Mosquitto broker, with real agents and
// simulated scanners, to check that replicas apply every op exactly once
// (also across kill -9) and to measure what a round-robin shared
// subscription costs. It needs SHELFSYNC_TEST_PG and Mosquitto
// (deploy/dev/services.sh; `make test-integration` runs it).
package replicas

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
)

const devDSN = "postgres://shelfsync:shelfsync@127.0.0.1:5432/shelfsync?sslmode=disable"

// env returns the PostgreSQL URL and the mosquitto binary, or skips.
func env(t *testing.T) (dsn, mosquitto string) {
	t.Helper()
	dsn = os.Getenv("SHELFSYNC_TEST_PG")
	if dsn == "" && os.Getenv("SHELFSYNC_INTEGRATION") != "" {
		dsn = devDSN // what deploy/dev/services.sh provisions
	}
	if dsn == "" {
		t.Skip("SHELFSYNC_TEST_PG is not set: run deploy/dev/services.sh, then eval \"$(deploy/dev/env.sh)\"")
	}
	mosquitto = os.Getenv("SHELFSYNC_TEST_MOSQUITTO")
	if mosquitto == "" {
		mosquitto = "/usr/sbin/mosquitto"
	}
	if _, err := os.Stat(mosquitto); err != nil {
		if os.Getenv("SHELFSYNC_INTEGRATION") != "" {
			t.Fatalf("mosquitto not found at %s: run deploy/dev/services.sh mosquitto", mosquitto)
		}
		t.Skipf("mosquitto not found at %s: run deploy/dev/services.sh mosquitto", mosquitto)
	}
	return dsn, mosquitto
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// build compiles the three binaries once per test binary run, unless
// SHELFSYNC_TEST_BIN_DIR names a directory that already holds them.
func build(t *testing.T) {
	buildOnce.Do(func() {
		if dir := os.Getenv("SHELFSYNC_TEST_BIN_DIR"); dir != "" {
			binDir = dir
			return
		}
		binDir, buildErr = os.MkdirTemp("", "shelfsync-replicas-bin")
		if buildErr != nil {
			return
		}
		for _, b := range []struct{ name, pkg string }{
			{"shelfsync-server", "./server/cmd/shelfsync-server"},
			{"shelfsync-agent", "./agent/cmd/shelfsync-agent"},
			{"shelfsync-sim", "./firmware-sim/cmd/shelfsync-sim"},
		} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, b.name), b.pkg)
			cmd.Dir = "../.." // the go.work workspace
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", b.name, err, out)
				return
			}
		}
	})
	require.NoError(t, buildErr)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" && os.Getenv("SHELFSYNC_TEST_BIN_DIR") == "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// proc is a child process whose output is kept for failure reports.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	in   io.WriteCloser
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func start(t *testing.T, name string, stdin bool, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if stdin {
		w, err := p.cmd.StdinPipe()
		require.NoError(t, err)
		p.in = w
	}
	require.NoError(t, p.cmd.Start())
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("---- %s output (tail) ----\n%s", p.name, tail(p.output(), 40))
		}
		if dir := os.Getenv("SHELFSYNC_REPLICAS_LOGS"); dir != "" { // keep every process's output
			_ = os.WriteFile(filepath.Join(dir, strings.NewReplacer("/", "_", "#", "_").Replace(t.Name()+"-"+p.name)+".log"), []byte(p.output()), 0o644)
		}
	})
	return p
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// kill signals the process (only the one this test started) and waits.
func (p *proc) kill(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// mode is how replicas split the gateways.
type mode string

const (
	modeShared mode = "shared" // $share/GROUP/… as the broker distributes it (Mosquitto: round robin)
	modeLeases mode = "leases" // every replica subscribes; a PostgreSQL lease picks the one that handles a gateway
)

// cluster is one Mosquitto, one PostgreSQL schema, server replicas and
// gateways.
type cluster struct {
	t        *testing.T
	dir      string
	dsn      string
	mqtt     string // host:port
	mode     mode
	mosq     *proc
	replicas []*replica
	gateways []*gateway
	obs      *observer
}

type replica struct {
	c    *cluster
	i    int
	http string
	p    *proc
	runs int
}

func newCluster(t *testing.T, replicas int, m mode) *cluster {
	dsn, mosquitto := env(t)
	build(t)
	c := &cluster{t: t, dir: t.TempDir(), mode: m}
	c.dsn = freshSchema(t, dsn)
	c.mqtt = freePort(t)
	_, port, _ := net.SplitHostPort(c.mqtt)
	conf := filepath.Join(c.dir, "mosquitto.conf")
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf(`# plain TCP, no authentication: test only
listener %s 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
log_type notice
max_queued_messages 100000
max_inflight_messages 0
set_tcp_nodelay true
`, port)), 0o644))
	c.mosq = start(t, "mosquitto", false, mosquitto, "-c", conf)
	waitFor(t, 10*time.Second, "mosquitto listening", func() bool {
		conn, err := net.Dial("tcp", c.mqtt)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	// The schema comes from the migrate command, as an operator would run it.
	out, err := exec.Command(filepath.Join(binDir, "shelfsync-server"), "migrate", "--store", c.dsn).CombinedOutput()
	require.NoError(t, err, "migrate: %s", out)
	require.Contains(t, string(out), "applied 0001_")
	c.obs = newObserver(t, c.mqtt)
	for i := range replicas {
		r := &replica{c: c, i: i, http: freePort(t)}
		c.replicas = append(c.replicas, r)
		r.start()
	}
	return c
}

// freshSchema makes an empty schema for this test (dropped at cleanup) and
// returns a DSN that uses it.
func freshSchema(t *testing.T, dsn string) string {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err, "connect to %s", dsn)
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "shelfsync_replicas_" + hex.EncodeToString(b[:])
	_, err = conn.Exec(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		if conn, err := pgx.Connect(context.Background(), dsn); err == nil {
			_, _ = conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			conn.Close(context.Background())
		}
	})
	u, err := url.Parse(dsn)
	require.NoError(t, err, "SHELFSYNC_TEST_PG must be a postgres:// URL")
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func (r *replica) start() {
	r.runs++
	c := r.c
	args := []string{"run", "--store", c.dsn, "--broker", "tcp://" + c.mqtt, "--http", r.http,
		"--data", filepath.Join(c.dir, fmt.Sprint("server", r.i)), "--workers", "4", "--gateway-rate", "-1"}
	switch c.mode {
	case modeShared:
		args = append(args, "--share-group", "shelfsync")
	case modeLeases:
		args = append(args, "--gateway-leases", "--lease-ttl", "3s")
	}
	r.p = start(c.t, fmt.Sprintf("server%d#%d", r.i, r.runs), false, filepath.Join(binDir, "shelfsync-server"), args...)
	waitFor(c.t, 20*time.Second, "replica connected to the broker", func() bool { return httpOK("http://" + r.http + "/healthz") })
}

func httpOK(u string) bool {
	resp, err := http.Get(u)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

func getJSON(u string, v any) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// metric sums the samples of a Prometheus counter whose labels contain
// match (e.g. `verdict="gap"`), from a replica's /metrics.
func (r *replica) metric(name, match string) float64 {
	resp, err := http.Get("http://" + r.http + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || !strings.Contains(line, match) {
			continue
		}
		if rest := line[len(name):]; rest != "" && rest[0] != '{' && rest[0] != ' ' {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
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
	c        *cluster
	wh, gw   string
	dir      string
	http     string
	link     string
	agent    *proc
	sim      *proc
	mu       sync.Mutex
	scanned  []string
	runs     int
	ackAfter string
}

func (c *cluster) addGateway(wh, gw string) *gateway {
	g := &gateway{c: c, wh: wh, gw: gw, dir: filepath.Join(c.dir, wh+"-"+gw), http: freePort(c.t),
		link: filepath.Join(c.dir, wh+"-"+gw+".tty"), ackAfter: "1s"}
	g.sim = start(c.t, wh+"/"+gw+"/sim", true, filepath.Join(binDir, "shelfsync-sim"), "barcode", "--link", g.link, "--suffix", "CRLF")
	waitFor(c.t, 10*time.Second, "pty link", func() bool { _, err := os.Stat(g.link); return err == nil })
	g.startAgent()
	c.gateways = append(c.gateways, g)
	return g
}

func (g *gateway) startAgent() {
	g.runs++
	g.agent = start(g.c.t, fmt.Sprintf("%s/%s/agent#%d", g.wh, g.gw, g.runs), false, filepath.Join(binDir, "shelfsync-agent"), "run",
		"--data", g.dir, "--warehouse", g.wh, "--gateway", g.gw, "--broker", "tcp://"+g.c.mqtt,
		"--http", g.http, "--device", "s1=barcode:"+g.link+",feedback=honeywell", "--ack-timeout", g.ackAfter)
	waitFor(g.c.t, 15*time.Second, "agent healthy", func() bool { return httpOK("http://" + g.http + "/healthz") })
	waitFor(g.c.t, 15*time.Second, "scanner connected", func() bool {
		st, _ := g.status()
		return len(st.Devices) == 1 && st.Devices[0].Connected
	})
}

type agentStatus struct {
	LastSeq     uint64 `json:"last_seq"`
	AckedSeq    uint64 `json:"acked_seq"`
	DownSeq     uint64 `json:"down_seq"`
	OutboxDepth uint64 `json:"outbox_depth"`
	Connected   bool   `json:"connected"`
	Uplink      struct {
		Resends   uint64 `json:"resends"`
		Batches   uint64 `json:"batches_sent"`
		LastError string `json:"last_error"`
	} `json:"uplink"`
	Devices []struct {
		Name      string
		Connected bool
	}
}

func (g *gateway) status() (agentStatus, error) {
	var st agentStatus
	err := getJSON("http://"+g.http+"/api/v1/status", &st)
	return st, err
}

// scan types lines into the simulated scanner.
func (g *gateway) scan(lines ...string) error {
	g.mu.Lock()
	g.scanned = append(g.scanned, lines...)
	g.mu.Unlock()
	for _, l := range lines {
		if _, err := io.WriteString(g.sim.in, l+"\n"); err != nil {
			return fmt.Errorf("scan on %s/%s: %w", g.wh, g.gw, err)
		}
	}
	return nil
}

// beeps counts the feedback the simulated scanner received, by signal.
func (g *gateway) beeps() map[string]int {
	out := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(g.sim.output()))
	for sc.Scan() {
		if _, sig, ok := strings.Cut(sc.Text(), "feedback: "); ok {
			out[strings.Fields(sig)[0]]++
		}
	}
	return out
}

func (g *gateway) scannedCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.scanned)
}

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
			var a alertMsg
			if json.Unmarshal(m.Payload(), &a) == nil {
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
