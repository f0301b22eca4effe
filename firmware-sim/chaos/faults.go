package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shelfsync/shelfsync/testbed"
)

// Fault kinds.
const (
	FaultPartition     = "partition"      // agent↔broker link reset and refused
	FaultStall         = "stall"          // agent↔broker link frozen, nothing lost
	FaultLatency       = "latency"        // every chunk delayed
	FaultSlow          = "slow"           // bandwidth-limited link
	FaultReset         = "reset"          // open connections reset once
	FaultKillAgent     = "kill-agent"     // SIGKILL of an agent, restarted after a pause
	FaultKillServer    = "kill-server"    // SIGKILL of the server, restarted after a pause
	FaultBrokerRestart = "broker-restart" // the broker stops and comes back
	// FaultRestoreServer stops the server, replaces its data with the
	// online backup taken at the previous restore (or at the start) and
	// starts it again: the state goes back in time, with a new identity,
	// and every agent must resend what it lacks from its retention.
	FaultRestoreServer = "restore-server"
	// FaultDiskFull fills an agent's data disk (a tmpfs of its own, when
	// the harness runs as root) below the agent's reserve for a while: its
	// scans get bad beeps and nothing is committed, then it resumes.
	FaultDiskFull = "disk-full"
	// FaultClockJump has a gateway whose clock jumped ahead (10 min to 10
	// years) say hello and send an op (rogue.go): the server must refuse
	// it, and no other gateway's clock may follow.
	FaultClockJump = "clock-jump"
)

var faultWeights = []struct {
	kind   string
	weight int
}{
	{FaultPartition, 18}, {FaultStall, 8}, {FaultLatency, 14}, {FaultSlow, 10},
	{FaultReset, 14}, {FaultKillAgent, 20}, {FaultKillServer, 8}, {FaultBrokerRestart, 8},
	{FaultRestoreServer, 4}, {FaultDiskFull, 6}, {FaultClockJump, 4},
}

// injector applies a seeded sequence of faults.
type injector struct {
	rnd    *rand.Rand
	agents []*agent
	srv    *server
	brk    *broker
	log    io.Writer
	t0     time.Time
	// only, when set, restricts the schedule to these kinds.
	only map[string]bool
	// backup is the file the next restore-server puts back (taken at the
	// start, then a while after each restore); only a goroutine holding
	// infra touches it.
	backup   string
	restores atomic.Int64 // restore-server faults carried out
	// clockJumps counts rogue hellos and batches the broker took.
	clockJumps atomic.Int64

	infra   sync.Mutex // one server kill or broker restart at a time
	busy    []atomic.Bool
	wg      sync.WaitGroup
	count   atomic.Int64
	byKind  sync.Map // kind → *atomic.Int64
	errOnce sync.Once
	err     error
}

func (in *injector) fail(err error) {
	in.errOnce.Do(func() { in.err = err })
}

func (in *injector) note(kind, format string, args ...any) {
	in.count.Add(1)
	v, _ := in.byKind.LoadOrStore(kind, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
	fmt.Fprintf(in.log, "%8.3fs %-14s %s\n", time.Since(in.t0).Seconds(), kind, fmt.Sprintf(format, args...))
}

func (in *injector) pick() string {
	total := 0
	for _, w := range faultWeights {
		if in.only == nil || in.only[w.kind] {
			total += w.weight
		}
	}
	r := in.rnd.IntN(total)
	for _, w := range faultWeights {
		if in.only != nil && !in.only[w.kind] {
			continue
		}
		if r < w.weight {
			return w.kind
		}
		r -= w.weight
	}
	return FaultReset
}

func (in *injector) dur(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(in.rnd.Int64N(int64(hi-lo)+1))
}

// loop injects a fault every gap on average until ctx ends or stop says so.
func (in *injector) loop(ctx context.Context, gap time.Duration, stop func() bool) {
	for ctx.Err() == nil && !stop() {
		sleep(ctx, in.dur(gap/4, gap*7/4))
		if ctx.Err() != nil || stop() {
			return
		}
		in.inject(ctx, in.pick())
	}
}

// targets returns the proxies a link fault hits: one agent's, or (one
// time in six) every agent's.
func (in *injector) targets() ([]*Proxy, string) {
	if in.rnd.IntN(6) == 0 {
		ps := make([]*Proxy, len(in.agents))
		for i, a := range in.agents {
			ps[i] = a.proxy
		}
		return ps, "all agents"
	}
	a := in.agents[in.rnd.IntN(len(in.agents))]
	return []*Proxy{a.proxy}, a.gw
}

func (in *injector) inject(ctx context.Context, kind string) {
	// Draw every random number here, in order, so the schedule depends on
	// the seed only, not on how long the processes took.
	switch kind {
	case FaultPartition, FaultStall, FaultLatency, FaultSlow:
		ps, who := in.targets()
		d := in.dur(500*time.Millisecond, 5*time.Second)
		lat := in.dur(20*time.Millisecond, 400*time.Millisecond)
		rate := 2_000 + in.rnd.IntN(30_000)
		for _, p := range ps {
			switch kind {
			case FaultPartition:
				p.Partition()
			case FaultStall:
				p.Stall()
			case FaultLatency:
				p.SetLatency(lat)
			case FaultSlow:
				p.SetRate(rate)
			}
		}
		switch kind {
		case FaultLatency:
			in.note(kind, "%s: +%s for %s", who, lat.Round(time.Millisecond), d.Round(time.Millisecond))
		case FaultSlow:
			in.note(kind, "%s: %d B/s for %s", who, rate, d.Round(time.Millisecond))
		default:
			in.note(kind, "%s for %s", who, d.Round(time.Millisecond))
		}
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			sleep(ctx, d)
			for _, p := range ps {
				p.Heal()
			}
		}()
	case FaultReset:
		ps, who := in.targets()
		for _, p := range ps {
			p.Reset()
		}
		in.note(kind, "%s", who)
	case FaultKillAgent:
		i := in.rnd.IntN(len(in.agents))
		down := in.dur(0, 2*time.Second)
		if !in.busy[i].CompareAndSwap(false, true) {
			in.note(kind, "%s already down: partition instead", in.agents[i].gw)
			in.agents[i].proxy.Partition()
			in.wg.Add(1)
			go func() { defer in.wg.Done(); sleep(ctx, time.Second); in.agents[i].proxy.Heal() }()
			return
		}
		a := in.agents[i]
		in.note(kind, "%s, restarted after %s", a.gw, down.Round(time.Millisecond))
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			defer in.busy[i].Store(false)
			if err := a.crash(ctx, down); err != nil && ctx.Err() == nil {
				in.fail(fmt.Errorf("restart %s: %w", a.gw, err))
			}
		}()
	case FaultClockJump:
		ahead := in.dur(10*time.Minute, 10*365*24*time.Hour)
		wh := in.agents[in.rnd.IntN(len(in.agents))].wh
		n := in.count.Load()
		in.note(kind, "a gateway of %s %s ahead says hello and sends an op", wh, ahead.Round(time.Minute))
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			// The broker may be down (another fault): then nothing was
			// sent and nothing is checked.
			if rogueClock(ctx, in.brk.addr, wh, n, ahead) == nil {
				in.clockJumps.Add(1)
			}
		}()
	case FaultDiskFull:
		i := in.rnd.IntN(len(in.agents))
		d := in.dur(time.Second, 4*time.Second)
		a := in.agents[i]
		if a.disk == "" || !in.busy[i].CompareAndSwap(false, true) {
			in.note(kind, "%s: no disk of its own (not root) or already faulted: reset instead", a.gw)
			a.proxy.Reset()
			return
		}
		in.note(kind, "%s for %s", a.gw, d.Round(time.Millisecond))
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			defer in.busy[i].Store(false)
			filler := filepath.Join(a.disk, "chaos-filler")
			if err := testbed.FillDisk(filler, agentDiskReserve/2); err != nil && ctx.Err() == nil {
				in.fail(fmt.Errorf("fill %s's disk: %w", a.gw, err))
			}
			sleep(ctx, d)
			if err := os.Remove(filler); err != nil && ctx.Err() == nil {
				in.fail(fmt.Errorf("free %s's disk: %w", a.gw, err))
			}
		}()
	case FaultRestoreServer:
		if !in.infra.TryLock() {
			in.note(kind, "server/broker already down: reset all links instead")
			for _, a := range in.agents {
				a.proxy.Reset()
			}
			return
		}
		// The next restore goes back to a backup taken this long after
		// this one, while the workload runs on.
		later := in.dur(time.Second, 8*time.Second)
		in.note(kind, "back to %s; next backup %s later", filepath.Base(in.backup), later.Round(time.Millisecond))
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			err := in.srv.restore(ctx, in.backup)
			in.infra.Unlock()
			if err != nil {
				if ctx.Err() == nil {
					in.fail(fmt.Errorf("restore server: %w", err))
				}
				return
			}
			in.restores.Add(1)
			sleep(ctx, later)
			in.infra.Lock() // the server is up: no kill or restart under way
			defer in.infra.Unlock()
			if ctx.Err() != nil {
				return
			}
			next, err := in.srv.takeBackup(ctx)
			if err != nil {
				if ctx.Err() == nil {
					in.fail(fmt.Errorf("backup after restore: %w", err))
				}
				return
			}
			in.backup = next
		}()
	case FaultKillServer, FaultBrokerRestart:
		down := in.dur(200*time.Millisecond, 3*time.Second)
		if !in.infra.TryLock() {
			in.note(kind, "server/broker already down: reset all links instead")
			for _, a := range in.agents {
				a.proxy.Reset()
			}
			return
		}
		in.note(kind, "back after %s", down.Round(time.Millisecond))
		in.wg.Add(1)
		go func() {
			defer in.wg.Done()
			defer in.infra.Unlock()
			if kind == FaultKillServer {
				in.srv.kill()
				sleep(ctx, down)
				if err := in.srv.start(ctx); err != nil && ctx.Err() == nil {
					in.fail(fmt.Errorf("restart server: %w", err))
				}
				return
			}
			in.brk.stop()
			sleep(ctx, down)
			if err := in.brk.start(); err != nil {
				in.fail(fmt.Errorf("restart broker: %w", err))
			}
		}()
	}
}

// kinds returns "kind=N" for every kind injected, in table order.
func (in *injector) kinds() string {
	s := ""
	for _, w := range faultWeights {
		if v, ok := in.byKind.Load(w.kind); ok {
			if s != "" {
				s += " "
			}
			s += fmt.Sprintf("%s=%d", w.kind, v.(*atomic.Int64).Load())
		}
	}
	return s
}
