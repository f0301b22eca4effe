package testbed

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// StartTimeout bounds each wait for a daemon to come up.
const StartTimeout = 60 * time.Second

// Server is a shelfsync-server process: `run --http HTTP` and Args.
type Server struct {
	Bin     string
	HTTP    string   // API host:port
	Args    []string // after `run`, besides --http: --data, --mqtt or --broker, --store …
	LogFile string   // optional; see Spec.LogFile
	Name    string   // for reports (default "server")

	mu   sync.Mutex
	proc *Proc
	runs int
}

// Start starts the server (again, after a Stop) and waits until /healthz
// answers 200, or returns the error and the process's last output.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	s.runs++
	name := s.Name
	if name == "" {
		name = "server"
	}
	p, err := Start(Spec{Name: fmt.Sprintf("%s#%d", name, s.runs), Bin: s.Bin,
		Args: append([]string{"run", "--http", s.HTTP}, s.Args...), LogFile: s.LogFile})
	if err == nil {
		s.proc = p
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return waitUp(ctx, p, name+" healthy", func() bool { return HTTPOK(s.Base() + "/healthz") })
}

// Proc is the current run of the server.
func (s *Server) Proc() *Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// Runs is how many times the server was started.
func (s *Server) Runs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs
}

// Base is the API's base URL.
func (s *Server) Base() string { return "http://" + s.HTTP }

// waitUp waits for up, and fails at once if p exits first.
func waitUp(ctx context.Context, p *Proc, what string, up func() bool) error {
	var exited bool
	err := WaitFor(ctx, StartTimeout, what, func() bool {
		if !p.Alive() {
			exited = true
			return true
		}
		return up()
	})
	if exited {
		return fmt.Errorf("%s exited (%v) before %s:\n%s", p.Name, p.Exit(), what, p.Tail(40))
	}
	if err != nil {
		return fmt.Errorf("%w:\n%s", err, p.Tail(40))
	}
	return nil
}

// Gateway is a shelfsync-agent with one simulated barcode scanner
// (shelfsync-sim behind a pty) as device "s1".
type Gateway struct {
	Bins       Bins
	WH, GW     string
	Dir        string   // the agent's --data; the pty link is made beside it
	HTTP       string   // the agent's API host:port
	Broker     string   // tcp://host:port
	DevOpts    string   // the --device options after the path (default "feedback=honeywell")
	AckTimeout string   // --ack-timeout (default "1s")
	SimArgs    []string // more shelfsync-sim barcode flags
	AgentArgs  []string // more shelfsync-agent run flags
	LogDir     string   // optional: agent and sim output appended to files here

	mu      sync.Mutex
	agent   *Proc
	sim     *Proc
	runs    int
	scanned []string
}

// Link is the pty link the scanner is reached at.
func (g *Gateway) Link() string { return g.Dir + ".tty" }

// Start starts the simulated scanner, waits for its pty, then starts the
// agent (StartAgent).
func (g *Gateway) Start(ctx context.Context) error {
	args := append([]string{"barcode", "--link", g.Link(), "--suffix", "CRLF"}, g.SimArgs...)
	sim, err := Start(Spec{Name: g.WH + "/" + g.GW + "/sim", Bin: g.Bins.Sim, Args: args, Stdin: true})
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.sim = sim
	g.mu.Unlock()
	if err := waitUp(ctx, sim, "pty link "+g.Link(), func() bool { _, err := os.Stat(g.Link()); return err == nil }); err != nil {
		return err
	}
	return g.StartAgent(ctx)
}

// StartAgent starts the agent (again, after a Stop) and waits until it is
// healthy with its scanner connected.
func (g *Gateway) StartAgent(ctx context.Context) error {
	devOpts, ack := g.DevOpts, g.AckTimeout
	if devOpts == "" {
		devOpts = "feedback=honeywell"
	}
	if ack == "" {
		ack = "1s"
	}
	g.mu.Lock()
	g.runs++
	name := fmt.Sprintf("%s/%s/agent#%d", g.WH, g.GW, g.runs)
	g.mu.Unlock()
	args := append([]string{"run", "--data", g.Dir, "--warehouse", g.WH, "--gateway", g.GW, "--broker", g.Broker,
		"--http", g.HTTP, "--device", "s1=barcode:" + g.Link() + "," + devOpts, "--ack-timeout", ack}, g.AgentArgs...)
	spec := Spec{Name: name, Bin: g.Bins.Agent, Args: args}
	if g.LogDir != "" {
		spec.LogFile = filepath.Join(g.LogDir, g.WH+"-"+g.GW+"-agent.log")
	}
	p, err := Start(spec)
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.agent = p
	g.mu.Unlock()
	return waitUp(ctx, p, name+" healthy with its scanner connected", func() bool {
		st, err := g.Status()
		return err == nil && len(st.Devices) == 1 && st.Devices[0].Connected
	})
}

// Agent is the current run of the agent; Sim the scanner.
func (g *Gateway) Agent() *Proc {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.agent
}

// Sim is the simulated scanner's process.
func (g *Gateway) Sim() *Proc {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sim
}

// AgentStatus is what the system tests read of GET /api/v1/status.
type AgentStatus struct {
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
	Disk struct {
		Full bool `json:"full"`
		Low  bool `json:"low"`
	} `json:"disk"`
}

// Status reads the agent's status.
func (g *Gateway) Status() (AgentStatus, error) {
	var st AgentStatus
	err := GetJSON(context.Background(), "http://"+g.HTTP+"/api/v1/status", &st)
	return st, err
}

// Scan types lines into the simulated scanner.
func (g *Gateway) Scan(lines ...string) error {
	sim := g.Sim()
	for _, l := range lines {
		if _, err := io.WriteString(sim.Stdin(), l+"\n"); err != nil {
			return fmt.Errorf("scan on %s/%s: %w", g.WH, g.GW, err)
		}
		g.mu.Lock()
		g.scanned = append(g.scanned, l)
		g.mu.Unlock()
	}
	return nil
}

// Scanned returns the lines Scan typed, in order.
func (g *Gateway) Scanned() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.scanned...)
}

// Beeps counts the feedback the simulated scanner heard, by signal
// ("good", "bad", "warn").
func (g *Gateway) Beeps() map[string]int {
	out := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(g.Sim().Output()))
	for sc.Scan() {
		if _, sig, ok := strings.Cut(sc.Text(), "feedback: "); ok {
			if f := strings.Fields(sig); len(f) > 0 {
				out[f[0]]++
			}
		}
	}
	return out
}

// WaitBeeps waits (up to d) until the scanner has heard n beeps in all and
// returns them by signal.
func (g *Gateway) WaitBeeps(ctx context.Context, d time.Duration, n int) (map[string]int, error) {
	var b map[string]int
	err := WaitFor(ctx, d, fmt.Sprintf("%d beeps on %s/%s", n, g.WH, g.GW), func() bool {
		b = g.Beeps()
		return b["good"]+b["bad"]+b["warn"] >= n
	})
	return b, err
}
