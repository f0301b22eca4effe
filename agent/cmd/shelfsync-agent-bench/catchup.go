package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/shelfsync/shelfsync/agent/internal/store"
	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/testbed"
)

// benchCatchup builds a backlog of n ops in an agent store (as a gateway
// offline for a long shift would have), then starts the real server and
// the real agent on it and times until the server has acknowledged every
// op (or, past opts.timeout, extrapolates from the rate reached). The RSS
// figure is the agent's peak with the backlog queued and no server to
// drain it, against the same agent with an empty outbox. The catch-up's
// baseline is a raw Badger batch write of the same ops with the server's
// Badger defaults.
// catchupOpts tune the catch-up run.
type catchupOpts struct {
	timeout               time.Duration
	serverArgs, agentArgs []string
	keep                  bool // keep the work directory (logs, stores)
	// rssOnly measures only agent_rss_mib_*_outbox: no server is built or
	// started and the backlog is not drained (the "rss" group, ~1 min).
	rssOnly bool
	// drainOnly measures only catchup_*_s, without the RSS steps.
	drainOnly bool
}

func benchCatchup(ctx context.Context, n int, opts catchupOpts) ([]Result, error) {
	bins, err := testbed.Build(ctx)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "shelfsync-bench-catchup-")
	if err != nil {
		return nil, err
	}
	if opts.keep {
		logf("catch-up: keeping %s", work)
	} else {
		defer os.RemoveAll(work)
	}
	serverBin, agentBin := bins.Server, bins.Agent

	ops := backlogOps(n)
	agentDir := filepath.Join(work, "agent")
	t := time.Now()
	if err := writeBacklog(ctx, agentDir, ops); err != nil {
		return nil, err
	}
	logf("catch-up: %d ops committed to the agent store in %s", n, time.Since(t).Round(time.Millisecond))
	var raw float64
	if !opts.rssOnly {
		if raw, err = rawBatchWrite(filepath.Join(work, "raw"), ops); err != nil {
			return nil, err
		}
		logf("catch-up: raw Badger batch write of the same ops: %.2f s", raw)
	}

	runAgent := func(dir, gw, broker string, until func(agentStatus) bool, timeout time.Duration) (time.Duration, int64, agentStatus, error) {
		addr, err := testbed.FreeAddr()
		if err != nil {
			return 0, 0, agentStatus{}, err
		}
		t0 := time.Now()
		args := append([]string{"run", "--data", dir, "--warehouse", "wh1", "--gateway", gw,
			"--broker", "tcp://" + broker, "--http", addr, "--log-level", "warn"}, opts.agentArgs...)
		p, err := testbed.Start(testbed.Spec{Name: gw, LogFile: filepath.Join(work, gw+".log"), Bin: agentBin, Args: args})
		if err != nil {
			return 0, 0, agentStatus{}, err
		}
		defer p.Stop(syscall.SIGTERM)
		var peak int64
		var st agentStatus
		err = testbed.WaitFor(ctx, timeout, gw, func() bool {
			peak = max(peak, testbed.PeakRSS(p.Pid()))
			st = agentStatus{}
			return testbed.GetJSON(ctx, "http://"+addr+"/api/v1/status", &st) == nil && until(st)
		})
		took := time.Since(t0)
		peak = max(peak, testbed.PeakRSS(p.Pid()))
		logf("%s: peak RSS %.1f MiB; now %s; CPU %.1f s", gw, mib(peak), rssParts(p.Pid()), cpuSeconds(p.Pid()))
		return took, peak, st, err
	}
	upFor := func(d time.Duration) func(agentStatus) bool {
		var since time.Time
		return func(agentStatus) bool {
			if since.IsZero() {
				since = time.Now()
			}
			return time.Since(since) > d
		}
	}

	label := fmt.Sprintf("catchup_%dm_s", n/1_000_000)
	rss := fmt.Sprintf("agent_rss_mib_%dm_outbox", n/1_000_000)
	if n%1_000_000 != 0 {
		label, rss = fmt.Sprintf("catchup_%d_s", n), fmt.Sprintf("agent_rss_mib_%d_outbox", n)
	}
	backlogRSS := func() ([]Result, error) {
		// RSS with the backlog queued (no server reachable: nothing drains),
		// against the same agent with an empty outbox.
		nowhere, err := testbed.FreeAddr()
		if err != nil {
			return nil, err
		}
		_, idle, _, err := runAgent(filepath.Join(work, "idle"), "gw-idle", nowhere, upFor(5*time.Second), time.Minute)
		if err != nil {
			return nil, err
		}
		_, queued, st, err := runAgent(agentDir, "gw-backlog", nowhere, upFor(5*time.Second), time.Minute)
		if err != nil {
			return nil, err
		}
		if st.LastSeq != uint64(n) {
			return nil, fmt.Errorf("backlog agent reports last_seq %d, want %d", st.LastSeq, n)
		}
		logf("rss: agent with %d ops queued %.1f MiB, with an empty outbox %.1f MiB", n, mib(queued), mib(idle))
		rssResult := result(rss, mib(queued), "MiB", "the same agent with an empty outbox", mib(idle))

		// The same backlog left by a process killed with SIGKILL right after
		// its last commit (memtables not flushed, compactions owed): the start
		// that follows replays and compacts.
		killedDir := filepath.Join(work, "killed")
		if err := writeBacklogKilled(ctx, killedDir, n); err != nil {
			return nil, err
		}
		// Watched for 30 s: the compactions of a start after a crash outlast
		// the first seconds.
		_, afterKill, st, err := runAgent(killedDir, "gw-killed", nowhere, upFor(30*time.Second), 2*time.Minute)
		if err != nil {
			return nil, err
		}
		if st.LastSeq != uint64(n) {
			return nil, fmt.Errorf("agent started after kill -9 reports last_seq %d, want %d", st.LastSeq, n)
		}
		logf("rss: agent started on %d ops left by kill -9: %.1f MiB", n, mib(afterKill))
		killResult := result(rss+"_after_kill", mib(afterKill), "MiB", "the same agent with an empty outbox", mib(idle))
		return []Result{rssResult, killResult}, nil
	}
	var rssResults []Result
	if !opts.drainOnly {
		if rssResults, err = backlogRSS(); err != nil {
			return nil, err
		}
	}
	if opts.rssOnly {
		return rssResults, nil
	}

	addrs, err := testbed.FreeAddrs(2)
	if err != nil {
		return nil, err
	}
	httpAddr, mqttAddr := addrs[0], addrs[1]
	srv := &testbed.Server{Bin: serverBin, HTTP: httpAddr, LogFile: filepath.Join(work, "server.log"),
		Args: append([]string{"--data", filepath.Join(work, "server"), "--mqtt", mqttAddr, "--log-level", "warn"}, opts.serverArgs...)}
	if err := srv.Start(ctx); err != nil {
		return nil, err
	}
	defer srv.Proc().Stop(syscall.SIGTERM)
	took, peak, st, err := runAgent(agentDir, "gw-backlog", mqttAddr, func(st agentStatus) bool { return st.AckedSeq >= uint64(n) }, opts.timeout)
	logf("catch-up: server CPU %.1f s", cpuSeconds(srv.Proc().Pid()))
	value, unit := took.Seconds(), "s"
	if err != nil {
		if st.AckedSeq == 0 {
			return nil, fmt.Errorf("catch-up: nothing acked in %s; see %s", opts.timeout, work)
		}
		// Not done in time: extrapolate from the rate reached, and say so.
		value = took.Seconds() * float64(n) / float64(st.AckedSeq)
		unit = fmt.Sprintf("s (extrapolated: %d acked in %s)", st.AckedSeq, took.Round(time.Second))
		logf("catch-up: NOT DONE in %s — %d of %d acked (%.0f ops/s); %.0f s extrapolated. Agent's last error: %q",
			took.Round(time.Second), st.AckedSeq, n, float64(st.AckedSeq)/took.Seconds(), value, st.Uplink.LastError)
	} else {
		logf("catch-up: %d ops acked in %s (%.0f ops/s); agent peak RSS while draining %.1f MiB", n, took.Round(time.Millisecond), float64(n)/took.Seconds(), mib(peak))
	}
	return append([]Result{
		result(label, value, unit, "raw Badger batch write of the same ops (server's Badger defaults, synced)", raw),
	}, rssResults...), nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// cpuSeconds returns the user and system CPU seconds process pid has used
// so far (0 when /proc does not tell).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) in its
	// parentheses: state is field 3, utime 14 and stime 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return (ut + st) / 100 // USER_HZ: 100 on Linux
}

// backlogOps are n receive ops as a dock's scans make them.
func backlogOps(n int) []protocol.Op {
	ops := make([]protocol.Op, n)
	for i := range ops {
		sku := ean13(400638133000 + int64(i%1000))
		ops[i] = protocol.Op{Kind: protocol.OpReceive, Location: fmt.Sprintf("DOCK-%02d", i%20), SKU: "0" + sku, Qty: 1,
			Device: "d1", Operator: "op7", Raw: []string{sku}}
	}
	return ops
}

// writeBacklog commits ops to an agent store in commits of 1,000.
func writeBacklog(ctx context.Context, dir string, ops []protocol.Op) error {
	st, err := store.Open(store.Options{Dir: dir, Small: true})
	if err != nil {
		return err
	}
	for i := 0; i < len(ops); i += 1000 {
		chunk := append([]protocol.Op(nil), ops[i:min(i+1000, len(ops))]...)
		if _, err := st.Commit(ctx, &store.Commit{Device: "d1", Ops: chunk, KeepSession: true}); err != nil {
			st.Close()
			return err
		}
	}
	return st.Close()
}

// killedBacklogEnv makes the bench binary, started by writeBacklogKilled,
// write a backlog ("DIR N"), say so on stdout and wait to be killed.
const killedBacklogEnv = "SHELFSYNC_BENCH_KILLED_BACKLOG"

// writeBacklogKilled commits n backlog ops in a child process (this
// binary) and kills it with SIGKILL once the last commit is durable, as a
// gateway losing power would.
func writeBacklogKilled(ctx context.Context, dir string, n int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d", killedBacklogEnv, dir, n))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if err != nil || line != "committed\n" {
		return fmt.Errorf("backlog writer: %q, %v", line, err)
	}
	return nil
}

// killedBacklogChild is the child side of writeBacklogKilled.
func killedBacklogChild(spec string) {
	var dir string
	var n int
	if _, err := fmt.Sscanf(spec, "%s %d", &dir, &n); err != nil {
		logf("%s: %v", killedBacklogEnv, err)
		os.Exit(2)
	}
	st, err := store.Open(store.Options{Dir: dir, Small: true})
	if err != nil {
		logf("open: %v", err)
		os.Exit(1)
	}
	ops := backlogOps(n)
	for i := 0; i < len(ops); i += 1000 {
		if _, err := st.Commit(context.Background(), &store.Commit{Device: "d1", Ops: ops[i:min(i+1000, len(ops))], KeepSession: true}); err != nil {
			logf("commit: %v", err)
			os.Exit(1)
		}
	}
	fmt.Println("committed")
	select {} // killed here, store open
}

// rawBatchWrite writes the ops (CBOR, keyed like the server's op log) with
// a Badger WriteBatch and returns the seconds it took.
func rawBatchWrite(dir string, ops []protocol.Op) (float64, error) {
	db, err := badger.Open(badger.DefaultOptions(dir).WithSyncWrites(true).WithLogger(nil).WithNumVersionsToKeep(1))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	start := time.Now()
	wb := db.NewWriteBatch()
	for i := range ops {
		op := ops[i]
		op.Seq = uint64(i + 1)
		b, err := protocol.Marshal(&op)
		if err != nil {
			wb.Cancel()
			return 0, err
		}
		k := make([]byte, 0, 32)
		k = append(k, "o/wh1\x00gw\x00"...)
		k = binary.BigEndian.AppendUint64(k, op.Seq)
		if err := wb.Set(k, b); err != nil {
			wb.Cancel()
			return 0, err
		}
	}
	if err := wb.Flush(); err != nil {
		return 0, err
	}
	return time.Since(start).Seconds(), nil
}

type agentStatus struct {
	LastSeq   uint64 `json:"last_seq"`
	AckedSeq  uint64 `json:"acked_seq"`
	Connected bool   `json:"connected"`
	Uplink    struct {
		LastError string `json:"last_error"`
	} `json:"uplink"`
}

// rssParts reports the anonymous and file-backed (mmapped Badger tables
// and value log) parts of a process's resident set.
func rssParts(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "exited"
	}
	out := ""
	for _, line := range splitLines(string(b)) {
		for _, k := range []string{"RssAnon:", "RssFile:"} {
			var kb int64
			if _, err := fmt.Sscanf(line, k+" %d kB", &kb); err == nil {
				out += fmt.Sprintf("%s %.1f MiB ", k, float64(kb)/1024)
			}
		}
	}
	return out
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
