// Package chaos is shelfsync's soak test under faults. It runs the real
// binaries — one shelfsync-server and several shelfsync-agent processes,
// built with `go build` — with simulated barcode scanners behind real ptys
// and simulated operators who scan, wait for the beep, and log every scan
// a good beep confirmed. Between each agent and the broker sits a TCP
// fault proxy (partitions, stalls, latency, slow links, resets); agents and
// the server are killed with SIGKILL at random moments and the broker (run
// in-process, so it restarts on its own) is restarted. Every random choice
// of the workload and of the fault schedule comes from one seed.
//
// After the workload stops and every fault is healed, the checker asserts:
// every confirmed op, by the (gateway, seq) the agent gave it, is in the
// server's op log once, and the log holds no other op than those of scans
// whose beep never came; the ledger equals the fold of the op log; the
// ledger equals the fold of every confirmed op (plus, for scans whose beep
// never came, the op or nothing); every
// agent's view equals the server ledger; every conflict the schedule
// provoked is listed by the server's conflict API. The harness is black
// box: it talks to the server and agents over their HTTP APIs only.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/testbed"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Config is one soak run.
type Config struct {
	// Seed drives the workload and the fault schedule (default 1).
	Seed uint64
	// Agents is the number of gateways (default 10), spread over
	// Warehouses warehouses (default 2).
	Agents     int
	Warehouses int
	// Devices is the number of workload scanners per gateway (default 2);
	// each gateway has one more, for the conflict scenarios.
	Devices int
	// Ops and Faults: the workload runs until at least Ops ops were
	// scanned and Faults faults injected (defaults 100,000 and 100), or
	// MaxDuration passed (default 30 min).
	Ops         int
	Faults      int
	MaxDuration time.Duration
	// FaultEvery is the mean gap between faults (default 700 ms);
	// ScenarioEvery the gap between conflict scenarios (default 1 s).
	FaultEvery    time.Duration
	ScenarioEvery time.Duration
	// BeepTimeout is how long an operator waits for a beep (default 10 s).
	BeepTimeout time.Duration
	// HealTimeout bounds the wait for convergence after healing (default 5 min).
	HealTimeout time.Duration
	// Root is the repository root (default: found from the working
	// directory); Bin, when set, are prebuilt binaries.
	Root string
	Bin  *testbed.Bins
	// WorkDir holds data and logs (default: a new temporary directory,
	// removed after a clean run). Keep keeps it.
	WorkDir string
	Keep    bool
	// AgentArgs are extra `shelfsync-agent run` flags. Default:
	// --acl-backoff 2s — the agent's guard against an ACL disconnect loop
	// takes three resets right after a publish for a refused identity and
	// then stops sending for 5 minutes, which the soak's resets and broker
	// restarts trigger on healthy gateways (see the report of issue 9);
	// nil keeps that default here, an empty non-nil slice runs the agent's.
	AgentArgs []string
	// Log receives progress lines (default: discarded).
	Log io.Writer
	// FaultKinds, when set, restricts the fault schedule to these kinds
	// (Fault* constants).
	FaultKinds []string
}

func (c *Config) defaults() {
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Agents <= 0 {
		c.Agents = 10
	}
	if c.Warehouses <= 0 {
		c.Warehouses = 2
	}
	c.Warehouses = min(c.Warehouses, c.Agents)
	if c.Devices <= 0 {
		c.Devices = 2
	}
	if c.Ops <= 0 {
		c.Ops = 100_000
	}
	if c.Faults < 0 {
		c.Faults = 0
	}
	if c.MaxDuration <= 0 {
		c.MaxDuration = 30 * time.Minute
	}
	if c.FaultEvery <= 0 {
		c.FaultEvery = 700 * time.Millisecond
	}
	if c.ScenarioEvery <= 0 {
		c.ScenarioEvery = time.Second
	}
	if c.BeepTimeout <= 0 {
		c.BeepTimeout = 10 * time.Second
	}
	if c.HealTimeout <= 0 {
		c.HealTimeout = 5 * time.Minute
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.AgentArgs == nil {
		c.AgentArgs = []string{"--acl-backoff", "2s"}
	}
}

// Summary is the result of a run.
type Summary struct {
	Seed       uint64
	Agents     int
	Ops        int64 // ops committed by the agents (Σ last_seq)
	Confirmed  int   // ops confirmed with a good beep
	Unknown    int   // op-producing scans whose beep never came
	Faults     int64
	FaultKinds string
	Restores   int64 // server restores carried out (restore-server)
	// Lost and Duplicated are exact counts of ops (exactCheck): each
	// confirmed scan's ops are matched by (gateway, seq) with the server's
	// op log, and the op log with the ledger.
	Lost       int64 // confirmed ops missing from the server's op log or ledger
	Duplicated int64 // ops applied more than once, or applied with no scan behind them
	// Problems are every other failed assertion (view divergence, a
	// missing conflict, a ledger mismatch), one line each.
	Problems []string
	// Conflicts says what the conflict check found, or why it was skipped.
	Conflicts string
	// Exact says what the exact check compared.
	Exact    string
	Duration time.Duration
	WorkDir  string
}

// Line is the one-line result: `chaos: seed=S agents=N ops=N faults=N lost=N duplicated=N`.
func (s Summary) Line() string {
	return fmt.Sprintf("chaos: seed=%d agents=%d ops=%d faults=%d lost=%d duplicated=%d",
		s.Seed, s.Agents, s.Ops, s.Faults, s.Lost, s.Duplicated)
}

// OK reports whether nothing was lost or duplicated and every other
// assertion held.
func (s Summary) OK() bool { return s.Lost == 0 && s.Duplicated == 0 && len(s.Problems) == 0 }

// Report writes the detail lines and then Line.
func (s Summary) Report(w io.Writer) {
	fmt.Fprintf(w, "chaos: confirmed=%d unknown=%d duration=%s faults: %s\n", s.Confirmed, s.Unknown, s.Duration.Round(time.Second), s.FaultKinds)
	fmt.Fprintf(w, "chaos: exact: %s\n", s.Exact)
	fmt.Fprintf(w, "chaos: conflicts: %s\n", s.Conflicts)
	for i, p := range s.Problems {
		if i == 40 {
			fmt.Fprintf(w, "chaos: problem: … and %d more\n", len(s.Problems)-40)
			break
		}
		fmt.Fprintf(w, "chaos: problem: %s\n", p)
	}
	if s.WorkDir != "" {
		fmt.Fprintf(w, "chaos: data and logs kept in %s\n", s.WorkDir)
	}
	fmt.Fprintln(w, s.Line())
}

// Run runs the soak and checks the result. An error means the harness
// itself could not run (a build failed, a process would not start); the
// assertions are in the Summary.
func Run(ctx context.Context, cfg Config) (sum Summary, err error) {
	cfg.defaults()
	sum = Summary{Seed: cfg.Seed, Agents: cfg.Agents}
	for _, k := range cfg.FaultKinds {
		if !slices.ContainsFunc(faultWeights, func(w struct {
			kind   string
			weight int
		}) bool {
			return w.kind == k
		}) {
			return sum, fmt.Errorf("unknown fault kind %q", k)
		}
	}
	start := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "chaos: %6.1fs "+format+"\n", append([]any{time.Since(start).Seconds()}, args...)...)
	}

	work := cfg.WorkDir
	if work == "" {
		d, err := os.MkdirTemp("", "shelfsync-chaos-")
		if err != nil {
			return sum, err
		}
		work = d
	}
	keep := cfg.Keep
	defer func() {
		if keep || !sum.OK() {
			sum.WorkDir = work
			return
		}
		os.RemoveAll(work)
	}()
	if err := mkdirs(filepath.Join(work, "logs")); err != nil {
		return sum, err
	}

	bin := cfg.Bin
	if bin == nil {
		logf("building shelfsync-server and shelfsync-agent")
		b, err := testbed.BuildAt(ctx, cfg.Root)
		if err != nil {
			return sum, err
		}
		bin = &b
	}

	h, err := newHarness(ctx, cfg, *bin, work, logf)
	if h != nil {
		defer h.close()
	}
	if err != nil {
		keep = true
		return sum, err
	}
	if err := h.run(ctx, &sum); err != nil {
		keep = true
		return sum, err
	}
	sum.Duration = time.Since(start)
	return sum, nil
}

// harness is one running soak.
type harness struct {
	cfg    Config
	work   string
	logf   func(string, ...any)
	brk    *broker
	srv    *server
	agents []*agent
	ops    []*operator // workload operators
	scen   *scenarios
	tr     *tracker
	st     *stats
	inj    *injector
	whs    []string
}

func newHarness(ctx context.Context, cfg Config, bin testbed.Bins, work string, logf func(string, ...any)) (*harness, error) {
	h := &harness{cfg: cfg, work: work, logf: logf, tr: newTracker(), st: &stats{}}
	brokerAddr, err := testbed.FreeAddr()
	if err != nil {
		return nil, err
	}
	h.brk = &broker{addr: brokerAddr, store: filepath.Join(work, "broker")}
	if err := h.brk.start(); err != nil {
		return nil, err
	}
	httpAddr, err := testbed.FreeAddr()
	if err != nil {
		return h, err
	}
	h.srv = &server{bin: bin.Server, dir: filepath.Join(work, "server"), logPath: filepath.Join(work, "logs", "server.log"), httpAddr: httpAddr, broker: brokerAddr}
	if err := mkdirs(h.srv.dir); err != nil {
		return h, err
	}
	logf("starting broker %s and server %s", brokerAddr, httpAddr)
	if err := h.srv.start(ctx); err != nil {
		return h, err
	}
	for w := 1; w <= cfg.Warehouses; w++ {
		h.whs = append(h.whs, fmt.Sprintf("wh%d", w))
	}
	h.scen = &scenarios{ops: map[string]*operator{}, byWH: map[string][]string{}, whs: h.whs,
		rnd: rand.New(rand.NewPCG(cfg.Seed, 0x5ce0))}
	logf("starting %d agents with %d+1 scanners each", cfg.Agents, cfg.Devices)
	var wg sync.WaitGroup
	errs := make([]error, cfg.Agents)
	for i := 0; i < cfg.Agents; i++ {
		a := &agent{idx: i, wh: h.whs[i%len(h.whs)], gw: fmt.Sprintf("g%02d", i+1), bin: bin.Agent, gate: newGate(), extra: cfg.AgentArgs}
		a.dir = filepath.Join(work, a.gw)
		a.logPath = filepath.Join(work, "logs", a.gw+".log")
		if a.httpAddr, err = testbed.FreeAddr(); err != nil {
			return h, err
		}
		if a.proxy, err = NewProxy("127.0.0.1:0", brokerAddr); err != nil {
			return h, err
		}
		for d := 0; d < cfg.Devices; d++ {
			a.devs = append(a.devs, fmt.Sprintf("s%d", d))
		}
		a.devs = append(a.devs, "x")
		if err := mkdirs(a.dir); err != nil {
			return h, err
		}
		if err := a.mountDisk(); err != nil {
			return h, err
		}
		if err := a.openSims(cfg.Seed*1000 + uint64(i)*10); err != nil {
			return h, err
		}
		h.agents = append(h.agents, a)
		for j, d := range a.devs {
			o := &operator{a: a, dev: d, sim: a.sims[d], tr: h.tr, st: h.st, timeout: cfg.BeepTimeout,
				rnd: rand.New(rand.NewPCG(cfg.Seed, uint64(i)<<8|uint64(j)))}
			if d == "x" {
				h.scen.ops[a.gw] = o
				h.scen.byWH[a.wh] = append(h.scen.byWH[a.wh], a.gw)
				continue
			}
			o.declare()
			h.ops = append(h.ops, o)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.mu.Lock()
			defer a.mu.Unlock()
			errs[i] = a.startLocked(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return h, err
	}
	h.inj = &injector{rnd: rand.New(rand.NewPCG(cfg.Seed, 0xfa017)), agents: h.agents, srv: h.srv, brk: h.brk,
		busy: make([]atomic.Bool, len(h.agents))}
	if len(cfg.FaultKinds) > 0 {
		h.inj.only = map[string]bool{}
		for _, k := range cfg.FaultKinds {
			h.inj.only[k] = true
		}
	}
	// The first restore-server goes back to the state at the start.
	if h.inj.backup, err = h.srv.takeBackup(ctx); err != nil {
		return h, err
	}
	f, err := os.Create(filepath.Join(work, "logs", "faults.log"))
	if err != nil {
		return h, err
	}
	h.inj.log = f
	return h, nil
}

func (h *harness) close() {
	var wg sync.WaitGroup
	for _, a := range h.agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.mu.Lock()
			a.p.Stop(syscall.SIGTERM)
			a.mu.Unlock()
			a.closeSims()
			a.proxy.Close()
			a.unmountDisk()
		}()
	}
	wg.Wait()
	if h.srv != nil && h.srv.p != nil {
		h.srv.p.Stop(syscall.SIGTERM)
	}
	if h.brk != nil {
		h.brk.stop()
	}
	if h.inj != nil {
		if c, ok := h.inj.log.(io.Closer); ok {
			c.Close()
		}
	}
}

func (h *harness) run(ctx context.Context, sum *Summary) error {
	cfg := h.cfg
	h.logf("set-up: stocking the pick and move sources")
	var wg sync.WaitGroup
	errs := make([]error, len(h.ops))
	for i, o := range h.ops {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = o.setup(ctx) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}

	t0 := time.Now()
	h.inj.t0 = t0
	stop := func() bool {
		if time.Since(t0) > cfg.MaxDuration || ctx.Err() != nil {
			return true
		}
		c, u := h.tr.totals()
		return c+u >= cfg.Ops && h.inj.count.Load() >= int64(cfg.Faults)
	}
	h.logf("workload: %d operators until %d ops and %d faults (seed %d)", len(h.ops), cfg.Ops, cfg.Faults, cfg.Seed)
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				c, u := h.tr.totals()
				h.logf("ops confirmed=%d unknown=%d scans=%d faults=%d unheard=%d", c, u, h.st.scans.Load(), h.inj.count.Load(), h.st.unheard.Load())
			}
		}
	}()
	var bg sync.WaitGroup
	bg.Add(2)
	go func() { defer bg.Done(); h.inj.loop(ctx, cfg.FaultEvery, stop) }()
	go func() { defer bg.Done(); h.scen.loop(ctx, cfg.ScenarioEvery, stop) }()
	for _, o := range h.ops {
		wg.Add(1)
		go func() { defer wg.Done(); o.run(ctx, stop) }()
	}
	wg.Wait()
	bg.Wait()
	h.inj.wg.Wait()
	close(done)
	if h.inj.err != nil {
		return h.inj.err
	}
	sum.Faults, sum.FaultKinds = h.inj.count.Load(), h.inj.kinds()
	sum.Restores = h.inj.restores.Load()
	sum.Confirmed, sum.Unknown = h.tr.totals()
	h.logf("workload done in %s: confirmed=%d unknown=%d faults=%d; healing", time.Since(t0).Round(time.Second), sum.Confirmed, sum.Unknown, sum.Faults)

	if err := h.heal(ctx); err != nil {
		return err
	}
	converged := h.converge(ctx)
	h.logf("converged=%v; checking", converged == nil)
	h.check(ctx, sum)
	if converged != nil {
		sum.Problems = append([]string{converged.Error()}, sum.Problems...)
	}
	return nil
}

// heal removes every toxic and brings every process back.
func (h *harness) heal(ctx context.Context) error {
	for _, a := range h.agents {
		a.proxy.Heal()
	}
	if err := h.brk.start(); err != nil {
		return err
	}
	if !h.srv.p.Alive() {
		if err := h.srv.start(ctx); err != nil {
			return err
		}
	}
	for _, a := range h.agents {
		a.mu.Lock()
		var err error
		if !a.p.Alive() {
			err = a.startLocked(ctx)
		}
		a.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// converge waits until every agent's outbox is empty, the server acked
// its last op, and its view equals the server's ledger.
func (h *harness) converge(ctx context.Context) error {
	var why string
	err := testbed.WaitFor(ctx, h.cfg.HealTimeout, "convergence", func() bool {
		srv := map[string]map[stockKey]int64{}
		for _, wh := range h.whs {
			s, err := fetchStock(ctx, h.srv.base(), wh)
			if err != nil {
				why = err.Error()
				return false
			}
			srv[wh] = s
		}
		for _, a := range h.agents {
			st, err := a.status(ctx)
			if err != nil {
				why = a.gw + ": " + err.Error()
				return false
			}
			if st.OutboxDepth != 0 || st.AckedSeq != st.LastSeq {
				why = fmt.Sprintf("%s: outbox %d, acked %d of %d", a.gw, st.OutboxDepth, st.AckedSeq, st.LastSeq)
				return false
			}
			view, err := fetchStock(ctx, "http://"+a.httpAddr, a.wh)
			if err != nil {
				why = a.gw + ": " + err.Error()
				return false
			}
			if d := diff(srv[a.wh], view); d != "" {
				why = a.gw + " view: " + d
				return false
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("%w (last: %s)", err, why)
	}
	return nil
}

// diff describes how b differs from a (missing keys count as 0).
func diff(a, b map[stockKey]int64) string {
	var out []string
	for k, v := range a {
		if b[k] != v {
			out = append(out, fmt.Sprintf("%s server %d agent %d", k, v, b[k]))
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok && v != 0 {
			out = append(out, fmt.Sprintf("%s server 0 agent %d", k, v))
		}
	}
	sort.Strings(out)
	if len(out) > 3 {
		out = append(out[:3], fmt.Sprintf("… %d keys differ", len(out)))
	}
	return strings.Join(out, "; ")
}

// check runs every assertion and fills sum.
func (h *harness) check(ctx context.Context, sum *Summary) {
	problem := func(format string, args ...any) { sum.Problems = append(sum.Problems, fmt.Sprintf(format, args...)) }
	ledger := map[stockKey]int64{}
	for _, wh := range h.whs {
		s, err := fetchStock(ctx, h.srv.base(), wh)
		if err != nil {
			problem("server stock of %s: %v", wh, err)
			continue
		}
		for k, v := range s {
			ledger[k] = v
		}
	}

	// Ledger = fold of the confirmed ops (and maybe the unknown ones).
	h.tr.mu.Lock()
	keys := make([]stockKey, 0, len(h.tr.keys))
	for k := range h.tr.keys {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	// The per-key judge explains each on-hand from the operators' ops
	// alone: a second, independent view of the same ledger. Its counts are
	// the fewest that explain a key (a lost op and a duplicated one on the
	// same key cancel out there), so lost and duplicated come from the
	// exact check below; its mismatches fail the run too.
	var conf, unk []opRec
	for _, k := range keys {
		kr := h.tr.keys[k]
		if v := judge(k, kr, ledger[k]); v.mismatch != "" {
			problem("ledger %s", v.mismatch)
		}
		for _, o := range kr.ops {
			if o.st == confirmed {
				conf = append(conf, o)
			} else {
				unk = append(unk, o)
			}
		}
	}
	for _, why := range h.tr.unplacedOps {
		problem("exact check could not place a confirmed scan's ops: %s", why)
	}
	for k, v := range ledger {
		if _, ok := h.tr.keys[k]; !ok && v != 0 {
			problem("ledger %s: on-hand %d on a key no operator scanned", k, v)
		}
	}
	h.tr.mu.Unlock()
	hist := map[stockKey][]logEntry{}
	for _, k := range append(keys, slices.Collect(maps.Keys(ledger))...) {
		if _, done := hist[k]; done {
			continue
		}
		es, err := fetchHistory(ctx, h.srv.base(), k)
		if err != nil {
			problem("op log of %s: %v", k, err)
			continue
		}
		hist[k] = es
	}
	var exact []string
	sum.Lost, sum.Duplicated, exact = exactCheck(conf, unk, hist, ledger)
	placed, entries := map[gwSeq]bool{}, 0
	for _, o := range conf {
		if o.seq != 0 {
			placed[gwSeq{o.gw, o.seq}] = true
		}
	}
	for _, es := range hist {
		entries += len(es)
	}
	sum.Exact = fmt.Sprintf("%d confirmed ops placed by (gateway, seq), %d unplaced; %d op-log entries of %d keys read",
		len(placed), len(h.tr.unplacedOps), entries, len(hist))
	sum.Problems = append(sum.Problems, exact...)
	h.tr.mu.Lock()
	tallies := map[string]gwTally{}
	for gw, t := range h.tr.byGW {
		tallies[gw] = *t
	}
	var countOps []provoked
	for _, k := range keys {
		kr := h.tr.keys[k]
		if kr.role != primary || kr.unit != 0 {
			continue
		}
		for _, o := range kr.ops {
			if o.count && o.st == confirmed {
				countOps = append(countOps, provoked{Kind: kindVariance, Key: k, Observed: o.qty, Why: "a count of a location whose records said otherwise"})
			}
		}
	}
	h.tr.mu.Unlock()

	// Agents: committed ops, acks, and views.
	for _, a := range h.agents {
		st, err := a.status(ctx)
		if err != nil {
			problem("%s status: %v", a.gw, err)
			continue
		}
		sum.Ops += int64(st.LastSeq)
		t := tallies[a.gw]
		if int(st.LastSeq) < t.confirmed {
			problem("%s committed %d ops (last_seq) but its operators heard %d confirmed", a.gw, st.LastSeq, t.confirmed)
		}
		if int(st.LastSeq) > t.confirmed+t.unknown {
			problem("%s committed %d ops (last_seq) but its operators scanned only %d (%d confirmed, %d unheard): ops nobody scanned, or a scan committed twice",
				a.gw, st.LastSeq, t.confirmed+t.unknown, t.confirmed, t.unknown)
		}
		if st.OutboxDepth != 0 || st.AckedSeq != st.LastSeq {
			problem("%s: after healing outbox_depth=%d acked_seq=%d last_seq=%d", a.gw, st.OutboxDepth, st.AckedSeq, st.LastSeq)
		}
		if skew := time.Duration(st.Uplink.ClockSkewMS) * time.Millisecond; skew > protocol.DefaultMaxOffset || skew < -protocol.DefaultMaxOffset {
			problem("%s: the server's clock is %s off this gateway's: a jumped clock spread", a.gw, skew)
		}
		if strings.Contains(st.Uplink.LastError, "server acked seq") {
			problem("%s: %s", a.gw, st.Uplink.LastError)
		}
		view, err := fetchStock(ctx, "http://"+a.httpAddr, a.wh)
		if err != nil {
			problem("%s stock: %v", a.gw, err)
			continue
		}
		srv := map[stockKey]int64{}
		for k, v := range ledger {
			if k.WH == a.wh {
				srv[k] = v
			}
		}
		if d := diff(srv, view); d != "" {
			problem("%s view differs from the server ledger: %s", a.gw, d)
		}
	}

	// Conflicts the schedule provoked.
	want := append(h.scen.list(), countOps...)
	for k, v := range ledger {
		if v < 0 && !slices.ContainsFunc(want, func(p provoked) bool { return p.Kind == kindNegative && p.Key == k }) {
			want = append(want, provoked{Kind: kindNegative, Key: k, Why: fmt.Sprintf("on-hand %d", v)})
		}
	}
	rows := map[string][]conflictRow{}
	for _, wh := range h.whs {
		r, err := fetchConflicts(ctx, h.srv.base(), wh)
		var none errNoConflictAPI
		if errors.As(err, &none) {
			// A check that cannot run is a failed check, not a pass.
			sum.Conflicts = fmt.Sprintf("NOT RUN — %v; %d provoked conflicts not checked", err, len(want))
			problem("conflict check could not run: %v", err)
			return
		}
		if err != nil {
			problem("conflicts of %s: %v", wh, err)
			sum.Conflicts = "error: " + err.Error()
			return
		}
		rows[wh] = r
	}
	missing := 0
	byKind := map[string]int{}
	for _, p := range want {
		byKind[p.Kind]++
		if !listed(rows[p.Key.WH], p) {
			missing++
			problem("conflict not listed: %s at %s (%s)", p.Kind, p.Key, p.Why)
		}
	}
	sum.Conflicts = fmt.Sprintf("%d provoked (negative-stock=%d variance=%d count-race=%d), %d listed, %d missing",
		len(want), byKind[kindNegative], byKind[kindVariance], byKind[kindRace], len(want)-missing, missing)
}
