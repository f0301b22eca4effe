package testbed

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a child process whose output is kept: in memory, and appended
// to a log file when one is named (one file then tells the story of every
// restart of a daemon).
type Proc struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	in   io.WriteCloser

	mu  sync.Mutex
	out bytes.Buffer
	log *os.File
}

// Spec says how to start a Proc.
type Spec struct {
	Name    string   // for reports: "server#2", "dock1/agent#1"
	Bin     string   // program path
	Args    []string // its arguments
	Stdin   bool     // give it a pipe as stdin (Proc.Stdin)
	LogFile string   // when set, output is appended here, not kept in memory
	Env     []string // added to the caller's environment (KEY=value)
	Dir     string   // working directory (empty: the caller's)
}

// Start starts a process. It runs in a process group of its own (a Ctrl-C
// of the caller is not delivered to it as well) and is killed if the
// caller dies first, so no daemon outlives the test that started it.
func Start(s Spec) (*Proc, error) {
	p := &Proc{Name: s.Name, done: make(chan struct{})}
	if s.LogFile != "" {
		f, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(f, "==== %s start %s\n", s.Name, time.Now().Format(time.RFC3339Nano))
		p.log = f
	}
	p.cmd = exec.Command(s.Bin, s.Args...)
	if len(s.Env) > 0 {
		p.cmd.Env = append(os.Environ(), s.Env...)
	}
	p.cmd.Dir = s.Dir
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if s.Stdin {
		w, err := p.cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		p.in = w
	}
	if err := p.cmd.Start(); err != nil {
		if p.log != nil {
			p.log.Close()
		}
		return nil, fmt.Errorf("start %s: %w", s.Name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.mu.Lock()
		if p.log != nil {
			fmt.Fprintf(p.log, "==== %s exit %s: %s\n", s.Name, time.Now().Format(time.RFC3339Nano), p.cmd.ProcessState)
			p.log.Close()
			p.log = nil
		}
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// Write keeps output; it is the process's stdout and stderr.
func (p *Proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.log != nil {
		return p.log.Write(b)
	}
	return p.out.Write(b)
}

// Output returns what the process wrote so far (empty with a log file).
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Tail returns the last n lines of Output.
func (p *Proc) Tail(n int) string {
	lines := strings.Split(p.Output(), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Stdin is the process's stdin (nil unless Spec.Stdin).
func (p *Proc) Stdin() io.WriteCloser { return p.in }

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Alive reports whether the process has not exited.
func (p *Proc) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Exit returns how the process ended, or nil while it runs.
func (p *Proc) Exit() *os.ProcessState {
	if p.Alive() {
		return nil
	}
	return p.cmd.ProcessState
}

// Signal sends sig and returns at once.
func (p *Proc) Signal(sig syscall.Signal) {
	if p != nil && p.Alive() {
		_ = p.cmd.Process.Signal(sig)
	}
}

// StopGrace is how long Stop waits after its signal before SIGKILL.
var StopGrace = 10 * time.Second

// Stop sends sig and waits for the exit, sending SIGKILL if the process
// is still there after StopGrace. A nil or exited Proc is left alone.
func (p *Proc) Stop(sig syscall.Signal) {
	if p == nil || !p.Alive() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(StopGrace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// PeakRSS returns the peak resident set size (VmHWM) of process pid in
// bytes, or 0 when /proc does not tell.
func PeakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		var kb int64
		if _, err := fmt.Sscanf(line, "VmHWM: %d kB", &kb); err == nil {
			return kb << 10
		}
	}
	return 0
}
