package devices

import (
	"sync"
	"time"
)

// noiseGate keeps a device that sends garbage at machine speed (a wrong
// baud rate, a broken cable, a hostile dongle) from flooding the log and
// beeping without end: past maxBad rejected reads in one second the device
// is "noisy", further rejections that second are only counted, and one
// summary line is logged per second. Valid scans are never suppressed.
type noiseGate struct {
	mu         sync.Mutex
	maxBad     int
	window     time.Time
	bad        int
	suppressed uint64 // total, for the status API
	lastReport time.Time
}

// admit reports whether a rejected read at now should be handled (logged,
// recorded, beeped) and, when the device just went noisy or a second
// passed, how many were suppressed since the last report.
func (g *noiseGate) admit(now time.Time) (handle bool, report int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Sub(g.window) >= time.Second {
		g.window, g.bad = now, 0
	}
	g.bad++
	if g.bad <= g.maxBad {
		return true, 0
	}
	g.suppressed++
	if now.Sub(g.lastReport) >= time.Second {
		g.lastReport = now
		return false, g.bad - g.maxBad
	}
	return false, 0
}

// Suppressed returns how many rejected reads were dropped silently.
func (g *noiseGate) Suppressed() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.suppressed
}
