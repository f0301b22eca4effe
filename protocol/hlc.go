package protocol

import (
	"fmt"
	"sync"
	"time"
)

// HLC is a hybrid logical clock value: the high 48 bits are Unix
// milliseconds, the low 16 bits a logical counter. Values compare as plain
// integers.
type HLC uint64

// MakeHLC builds an HLC from wall milliseconds and a logical counter.
func MakeHLC(ms int64, logical uint16) HLC {
	return HLC(uint64(ms)<<16 | uint64(logical))
}

// Millis returns the wall-clock part in Unix milliseconds.
func (h HLC) Millis() int64 { return int64(uint64(h) >> 16) }

// Logical returns the logical counter part.
func (h HLC) Logical() uint16 { return uint16(h) }

// Time returns the wall-clock part as a time.Time.
func (h HLC) Time() time.Time { return time.UnixMilli(h.Millis()).UTC() }

// String formats the clock as "millis.logical".
func (h HLC) String() string { return fmt.Sprintf("%d.%d", h.Millis(), h.Logical()) }

// Clock issues monotonic HLC values. It is safe for concurrent use.
type Clock struct {
	mu   sync.Mutex
	now  func() time.Time
	last HLC
}

// NewClock returns a clock reading wall time from now (time.Now when nil).
func NewClock(now func() time.Time) *Clock {
	if now == nil {
		now = time.Now
	}
	return &Clock{now: now}
}

// Now returns a value greater than every value previously returned or
// observed by Update.
func (c *Clock) Now() HLC {
	c.mu.Lock()
	defer c.mu.Unlock()
	wall := MakeHLC(c.now().UnixMilli(), 0)
	if wall > c.last {
		c.last = wall
	} else {
		c.last++
	}
	return c.last
}

// Update merges a value received from a peer so that later Now values are
// greater than it.
func (c *Clock) Update(remote HLC) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if remote > c.last {
		c.last = remote
	}
}

// Last returns the highest value issued or observed.
func (c *Clock) Last() HLC {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}
