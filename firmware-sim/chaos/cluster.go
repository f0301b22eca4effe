package chaos

import (
	"context"
	"fmt"
	"github.com/shelfsync/shelfsync/testbed"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/shelfsync/shelfsync/firmware-sim/barcodesim"
)

// broker is an MQTT broker (nats-server with JetStream and its MQTT
// listener, as the server embeds) run inside the harness, so that it can
// be restarted on its own: the server is started with --broker pointing at
// it. Its store outlives restarts, as a real broker's would.
type broker struct {
	addr  string
	store string
	mu    sync.Mutex
	srv   *natsserver.Server
}

func (b *broker) start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		return nil
	}
	host, p, err := net.SplitHostPort(b.addr)
	if err != nil {
		return err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return err
	}
	if b.store == "" {
		if b.store, err = os.MkdirTemp("", "chaos-broker-"); err != nil {
			return err
		}
	}
	var srv *natsserver.Server
	for try := 0; try < 100; try++ { // the old listener may take a moment to let go
		srv, err = natsserver.NewServer(&natsserver.Options{ServerName: "chaos", DontListen: true, JetStream: true, StoreDir: b.store,
			NoSigs: true, MQTT: natsserver.MQTTOpts{Host: host, Port: port}})
		if err != nil {
			return err
		}
		if l, lerr := net.Listen("tcp", b.addr); lerr == nil {
			l.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return fmt.Errorf("broker on %s did not start", b.addr)
	}
	b.srv = srv
	return nil
}

func (b *broker) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
		b.srv = nil
	}
}

// server is the shelfsync-server process.
type server struct {
	bin, dir, logPath string
	httpAddr, broker  string
	mu                sync.Mutex
	p                 *testbed.Proc
	runs              int
}

func (s *server) start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs++
	p, err := testbed.Start(testbed.Spec{Name: fmt.Sprintf("server#%d", s.runs), LogFile: s.logPath, Bin: s.bin, Args: []string{"run",
		"--data", filepath.Join(s.dir, "data"), "--http", s.httpAddr, "--broker", "tcp://" + s.broker,
		"--log-level", "warn"}})
	if err != nil {
		return err
	}
	s.p = p
	return testbed.WaitFor(ctx, 60*time.Second, "server healthy", func() bool {
		if !p.Alive() {
			return true
		}
		var v map[string]any
		err := testbed.GetJSON(ctx, "http://"+s.httpAddr+"/healthz", &v)
		return err == nil
	})
}

func (s *server) kill() {
	s.mu.Lock()
	p := s.p
	s.mu.Unlock()
	p.Stop(syscall.SIGKILL)
}

func (s *server) base() string { return "http://" + s.httpAddr }

// takeBackup takes an online backup of the running server into a new file.
func (s *server) takeBackup(ctx context.Context) (string, error) {
	s.mu.Lock()
	file := filepath.Join(s.dir, fmt.Sprintf("backup-%d.bak", s.runs))
	s.mu.Unlock()
	out, err := exec.CommandContext(ctx, s.bin, "backup", "--url", s.base(), "--out", file).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("shelfsync-server backup: %w: %s", err, out)
	}
	return file, nil
}

// restore stops the server, puts the backup file back as its data and
// starts it again (a new identity: the agents resend from retention).
func (s *server) restore(ctx context.Context, file string) error {
	s.mu.Lock()
	p := s.p
	s.mu.Unlock()
	p.Stop(syscall.SIGTERM)
	out, err := exec.CommandContext(ctx, s.bin, "restore", "--data", filepath.Join(s.dir, "data"), "--from", file).CombinedOutput()
	if err != nil {
		return fmt.Errorf("shelfsync-server restore: %w: %s", err, out)
	}
	// The data it replaced is not needed again.
	if old, _ := filepath.Glob(filepath.Join(s.dir, "data.before-restore-*")); len(old) > 0 {
		for _, d := range old {
			_ = os.RemoveAll(d)
		}
	}
	return s.start(ctx)
}

// agent is one shelfsync-agent process with its simulated scanners and the
// proxy between it and the broker.
type agent struct {
	idx      int
	wh, gw   string
	bin      string
	dir      string
	logPath  string
	httpAddr string
	proxy    *Proxy
	devs     []string // device names; the last one is the scenario scanner
	sims     map[string]*barcodesim.Sim
	gate     *gate
	extra    []string // extra agent flags
	broker   string   // when set, the agent dials this instead of its proxy
	disk     string   // its data directory when that is a tmpfs of its own (disk-full faults)

	mu   sync.Mutex // serialises kill/restart/resync
	p    *testbed.Proc
	runs int
}

func (a *agent) link(dev string) string { return filepath.Join(a.dir, "tty-"+dev) }

func (a *agent) openSims(seed uint64) error {
	a.sims = map[string]*barcodesim.Sim{}
	for i, d := range a.devs {
		sim, err := barcodesim.New(barcodesim.Config{Link: a.link(d), Suffix: "CRLF", Seed: seed + uint64(i)})
		if err != nil {
			return err
		}
		a.sims[d] = sim
	}
	return nil
}

func (a *agent) closeSims() {
	for _, s := range a.sims {
		_ = s.Close()
	}
}

// Agent data disks (disk-full faults): a tmpfs per agent, with the agent's
// reserve set to agentDiskReserve.
const (
	agentDiskSize    = "256m"
	agentDiskReserve = 32 << 20
)

// mountDisk gives the agent a data disk of its own when the harness may
// mount one (root); without, disk-full faults on it become resets.
func (a *agent) mountDisk() error {
	dir := filepath.Join(a.dir, "data")
	if err := mkdirs(dir); err != nil {
		return err
	}
	if testbed.MountTmpfs(dir, agentDiskSize) != nil {
		return nil
	}
	a.disk = dir
	// The small disk must not turn retention off (it keeps acknowledged
	// ops only above --retain-min-free): restore-server faults need it.
	a.extra = append(append([]string(nil), a.extra...), "--disk-reserve", fmt.Sprint(agentDiskReserve), "--retain-min-free", "-1")
	return nil
}

// unmountDisk releases the agent's data disk.
func (a *agent) unmountDisk() {
	if a.disk != "" {
		_ = testbed.UnmountTmpfs(a.disk)
	}
}

// startLocked starts the process and waits until it serves HTTP with every
// scanner connected. The caller holds a.mu.
func (a *agent) startLocked(ctx context.Context) error {
	a.runs++
	broker := a.broker
	if broker == "" {
		broker = a.proxy.Addr()
	}
	args := []string{"run", "--data", filepath.Join(a.dir, "data"), "--warehouse", a.wh, "--gateway", a.gw,
		"--broker", "tcp://" + broker, "--http", a.httpAddr, "--ack-timeout", "1s", "--log-level", "warn"}
	for _, d := range a.devs {
		args = append(args, "--device", d+"=barcode:"+a.link(d)+",feedback=honeywell")
	}
	args = append(args, a.extra...)
	p, err := testbed.Start(testbed.Spec{Name: fmt.Sprintf("%s#%d", a.gw, a.runs), LogFile: a.logPath, Bin: a.bin, Args: args})
	if err != nil {
		return err
	}
	a.p = p
	err = testbed.WaitFor(ctx, 60*time.Second, a.gw+" healthy with scanners connected", func() bool {
		if !p.Alive() {
			return true
		}
		st, err := a.status(ctx)
		if err != nil || len(st.Devices) != len(a.devs) {
			return false
		}
		for _, d := range st.Devices {
			if !d.Connected {
				return false
			}
		}
		return true
	})
	if err == nil && !p.Alive() {
		err = fmt.Errorf("%s exited at start; see %s", a.gw, a.logPath)
	}
	if err != nil {
		return err
	}
	a.gate.setUp()
	return nil
}

// crash kills the agent with SIGKILL, pulls its scanners (the pty buffers
// go with them, so no scan typed into a dead gateway reaches the next
// one), waits down, and starts it again.
func (a *agent) crash(ctx context.Context, down time.Duration) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gate.setDown()
	a.p.Stop(syscall.SIGKILL)
	for _, s := range a.sims {
		_ = s.Unplug()
	}
	sleep(ctx, down)
	for _, s := range a.sims {
		if err := s.Replug(); err != nil {
			return err
		}
	}
	return a.startLocked(ctx)
}

// resync pulls and replugs one scanner after a scan whose beep never came,
// then drains its feedback, so a late beep is never taken for the next
// scan's.
func (a *agent) resync(ctx context.Context, dev string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	sim := a.sims[dev]
	_ = sim.Unplug()
	sleep(ctx, 300*time.Millisecond)
	if err := sim.Replug(); err != nil {
		return err
	}
	err := testbed.WaitFor(ctx, 30*time.Second, a.gw+"/"+dev+" reconnected", func() bool {
		st, err := a.status(ctx)
		if err != nil {
			return false
		}
		for _, d := range st.Devices {
			if d.Name == dev {
				return d.Connected
			}
		}
		return false
	})
	sleep(ctx, 300*time.Millisecond)
	for {
		select {
		case <-sim.Feedback():
			continue
		default:
		}
		break
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// agentStatus is the part of GET /api/v1/status the harness reads.
type agentStatus struct {
	LastSeq     uint64 `json:"last_seq"`
	AckedSeq    uint64 `json:"acked_seq"`
	OutboxDepth uint64 `json:"outbox_depth"`
	Connected   bool   `json:"connected"`
	Uplink      struct {
		LastError   string `json:"last_error"`
		Resends     uint64 `json:"resends"`
		ClockSkewMS int64  `json:"clock_skew_ms"`
	} `json:"uplink"`
	Devices []struct {
		Name      string `json:"name"`
		Connected bool   `json:"connected"`
	} `json:"devices"`
}

func (a *agent) status(ctx context.Context) (agentStatus, error) {
	var st agentStatus
	err := testbed.GetJSON(ctx, "http://"+a.httpAddr+"/api/v1/status", &st)
	return st, err
}

// stockRow is one row of a stock API (server or agent).
type stockRow struct {
	Warehouse string `json:"warehouse"`
	Location  string `json:"location"`
	SKU       string `json:"sku"`
	Lot       string `json:"lot"`
	OnHand    int64  `json:"on_hand"`
}

type stockKey struct{ WH, Loc, SKU string }

func (k stockKey) String() string { return k.WH + "/" + k.Loc + "/" + k.SKU }

func fetchStock(ctx context.Context, base, wh string) (map[stockKey]int64, error) {
	var body struct {
		Items []stockRow `json:"items"`
	}
	if err := testbed.GetJSON(ctx, base+"/api/v1/stock?warehouse="+wh, &body); err != nil {
		return nil, err
	}
	out := make(map[stockKey]int64, len(body.Items))
	for _, r := range body.Items {
		out[stockKey{wh, r.Location, r.SKU}] += r.OnHand
	}
	return out, nil
}

func mkdirs(dirs ...string) error {
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}
