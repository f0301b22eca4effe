package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// userHZ is the unit of the times in /proc/PID/stat (USER_HZ, 100 on
// every Linux ABI).
const userHZ = 100

// procTimes returns a process's CPU seconds from /proc/PID/stat: its own
// (utime + stime) and those of its children it has waited for (cutime +
// cstime), and its parent's pid and command name.
func procTimes(pid int) (own, children float64, ppid int, comm string, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, "", err
	}
	// pid (comm) state ppid … — comm may hold spaces and parentheses
	open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || close < open {
		return 0, 0, 0, "", fmt.Errorf("/proc/%d/stat: unreadable", pid)
	}
	comm = string(b[open+1 : close])
	f := bytes.Fields(b[close+1:])
	// after comm: 0 state, 1 ppid, … 11 utime, 12 stime, 13 cutime, 14 cstime
	if len(f) < 15 {
		return 0, 0, 0, "", fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	n := func(i int) float64 { v, _ := strconv.ParseFloat(string(f[i]), 64); return v / userHZ }
	ppid, _ = strconv.Atoi(string(f[1]))
	return n(11) + n(12), n(13) + n(14), ppid, comm, nil
}

// selfCPU returns the CPU seconds (user + system) this process has used.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// cpuEach returns the CPU seconds each process of pids has used so far.
func cpuEach(pids []int) ([]float64, error) {
	out := make([]float64, len(pids))
	for i, pid := range pids {
		own, _, _, _, err := procTimes(pid)
		if err != nil {
			return nil, err
		}
		out[i] = own
	}
	return out, nil
}

// postgresCPU returns the CPU seconds used so far by the local PostgreSQL
// server: every postgres process (the postmaster, its backends and
// background workers) plus what the postmaster's exited children used
// (a backend whose connection closed). ok is false when no PostgreSQL
// runs on this machine (a remote database cannot be measured from here).
func postgresCPU() (sec float64, ok bool) {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	type proc struct {
		own, children float64
		ppid          int
	}
	pg := map[int]proc{}
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		own, children, ppid, comm, err := procTimes(pid)
		if err != nil || comm != "postgres" {
			continue
		}
		pg[pid] = proc{own, children, ppid}
	}
	for _, p := range pg {
		sec += p.own
		if _, child := pg[p.ppid]; !child { // the postmaster
			sec += p.children
		}
	}
	return sec, len(pg) > 0
}
