// Package diskspace guards the server's data disk. Badger maps its
// memtable and value-log files into memory, and a write into a mapped page
// the file system cannot back is SIGBUS, not an error: the process dies,
// and dies again after each restart. A Guard lets the store refuse writes
// (ErrFull) while free space is below a reserve large enough for Badger to
// finish what it has started, and says when it is low.
package diskspace

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
)

// ErrFull reports a write refused because the data disk is below its
// reserve.
var ErrFull = errors.New("data disk full")

// State is the data disk as last measured.
type State struct {
	FreeBytes    uint64
	ReserveBytes uint64
	Low          bool // below the low-disk threshold: warn
	Full         bool // below the reserve: writes refused
}

// Guard measures a directory's file system.
type Guard struct {
	dir          string
	reserve, low uint64
	free         func(dir string) uint64
	// OnChange, when set, is called when the disk turns low or full, or
	// recovers.
	OnChange func(State)

	mu    sync.Mutex
	state State
}

// New returns a guard of dir's file system; free replaces the statfs query
// when not nil (tests).
func New(dir string, reserve, low uint64, free func(dir string) uint64) *Guard {
	if free == nil {
		free = FreeBytes
	}
	return &Guard{dir: dir, reserve: reserve, low: low, free: free}
}

// FreeBytes returns the space an unprivileged writer may still use on
// dir's file system (all of it when it cannot be measured).
func FreeBytes(dir string) uint64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return ^uint64(0)
	}
	return st.Bavail * uint64(st.Bsize)
}

// Check measures the disk now (statfs: about a microsecond).
func (g *Guard) Check() State {
	free := g.free(g.dir)
	st := State{FreeBytes: free, ReserveBytes: g.reserve, Low: free < g.low, Full: free < g.reserve}
	g.mu.Lock()
	was := g.state
	g.state = st
	g.mu.Unlock()
	if (st.Low != was.Low || st.Full != was.Full) && g.OnChange != nil {
		g.OnChange(st)
	}
	return st
}

// Err returns an ErrFull error while the disk is below the reserve, and
// nil otherwise. A nil guard never refuses.
func (g *Guard) Err() error {
	if g == nil {
		return nil
	}
	st := g.Check()
	if !st.Full {
		return nil
	}
	return fmt.Errorf("%w: %d MiB free under %s, %d MiB are kept in reserve; the server acknowledges nothing until space is freed there (it resumes by itself)",
		ErrFull, st.FreeBytes>>20, g.dir, st.ReserveBytes>>20)
}
