package store

import (
	"errors"
	"fmt"
	"sync"
)

// The disk guard: Badger maps its memtable and value-log files into
// memory, and a write into a mapped page the file system cannot back any
// more is SIGBUS, not an error. So the store stops taking commits while
// its file system has less free space than a reserve (enough for Badger
// to finish the memtable it is filling, flush it and compact): the scan
// gets a bad beep and "disk full", nothing is recorded, and commits resume
// by themselves when space returns. Below a larger threshold it warns.

// Disk guard defaults (Options.DiskReserve, Options.DiskLow).
const (
	DefaultDiskReserve = 64 << 20
	DefaultDiskLow     = 512 << 20
)

// ErrDiskFull reports a commit refused because the store's file system is
// below its reserve.
var ErrDiskFull = errors.New("disk full")

// DiskState is the store's file system as the guard last saw it.
type DiskState struct {
	FreeBytes    uint64 `json:"free_bytes"`
	ReserveBytes uint64 `json:"reserve_bytes"`
	Low          bool   `json:"low"`  // below the low-disk threshold: warn
	Full         bool   `json:"full"` // below the reserve: commits refused
}

// diskGuard measures free space on every check (statfs costs about a
// microsecond; commits are paced by people).
type diskGuard struct {
	dir          string
	reserve, low uint64
	free         func(dir string) uint64
	onChange     func(DiskState)

	mu    sync.Mutex
	state DiskState
}

func (g *diskGuard) check() DiskState {
	free := g.free(g.dir)
	st := DiskState{FreeBytes: free, ReserveBytes: g.reserve, Low: free < g.low, Full: free < g.reserve}
	g.mu.Lock()
	was := g.state
	g.state = st
	g.mu.Unlock()
	if (st.Low != was.Low || st.Full != was.Full) && g.onChange != nil {
		g.onChange(st)
	}
	return st
}

// Disk returns the state of the store's file system, measured now.
func (s *Store) Disk() DiskState { return s.disk.check() }

// checkDisk refuses a commit while the file system is below the reserve.
func (s *Store) checkDisk() error {
	st := s.disk.check()
	if !st.Full {
		return nil
	}
	return fmt.Errorf("%w: %d MiB free on the gateway's data disk, %d MiB are kept in reserve: free space there (old logs?) and scan again",
		ErrDiskFull, st.FreeBytes>>20, st.ReserveBytes>>20)
}

func (s *Store) logDisk(st DiskState) {
	switch {
	case st.Full:
		s.log.Error("data disk below its reserve: scans are refused until space is freed", "free_bytes", st.FreeBytes, "reserve_bytes", st.ReserveBytes)
	case st.Low:
		s.log.Warn("data disk low", "free_bytes", st.FreeBytes)
	default:
		s.log.Info("data disk has room again", "free_bytes", st.FreeBytes)
	}
}
