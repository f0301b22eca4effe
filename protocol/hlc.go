package protocol

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// MaxHLCMillis is the largest wall part a valid HLC carries:
// 9999-12-31T23:59:59.999Z. A receiver rejects a message with a larger
// value (ErrClockRange): 2^64-2, say, would freeze a key's merge order for
// ever and, added to, wrap the clock to 1970.
const MaxHLCMillis = 253402300799999

// DefaultMaxOffset is how far ahead of a node's wall clock a peer's clock
// may be before the node refuses it (SPEC.md §4).
const DefaultMaxOffset = 5 * time.Minute

var (
	// ErrClockRange reports an hlc whose wall part is past MaxHLCMillis.
	ErrClockRange = errors.New("hlc out of range")
	// ErrClockAhead reports a peer clock more than the maximum offset
	// ahead of this node's wall clock; see ClockAheadError.
	ErrClockAhead = errors.New("peer clock ahead")
)

// Check reports whether h is in range (ErrClockRange otherwise).
func (h HLC) Check() error {
	if h.Millis() > MaxHLCMillis {
		return fmt.Errorf("%w: %d ms is past year 9999", ErrClockRange, h.Millis())
	}
	return nil
}

// ClockAheadError is a peer clock refused for running ahead.
type ClockAheadError struct {
	Remote HLC           // the refused value
	Wall   time.Time     // this node's wall clock when it refused
	Max    time.Duration // the maximum offset
}

// Ahead returns how far the refused value is ahead of the wall clock.
func (e *ClockAheadError) Ahead() time.Duration {
	return time.Duration(e.Remote.Millis()-e.Wall.UnixMilli()) * time.Millisecond
}

func (e *ClockAheadError) Error() string {
	return fmt.Sprintf("%v: hlc %s (%s) is %s ahead of this node's clock (%s), more than the %s allowed: set the peer's time right (NTP)",
		ErrClockAhead, e.Remote, e.Remote.Time().Format(time.RFC3339), e.Ahead().Round(time.Millisecond), e.Wall.UTC().Format(time.RFC3339), e.Max)
}

// Unwrap makes errors.Is(err, ErrClockAhead) hold.
func (e *ClockAheadError) Unwrap() error { return ErrClockAhead }

// CheckAhead returns a *ClockAheadError when h is more than max ahead of
// wall, and nil otherwise.
func CheckAhead(h HLC, wall time.Time, max time.Duration) error {
	if h.Millis()-wall.UnixMilli() > max.Milliseconds() {
		return &ClockAheadError{Remote: h, Wall: wall, Max: max}
	}
	return nil
}

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

// Clock issues monotonic HLC values. It is safe for concurrent use. It
// takes no peer value more than its maximum offset ahead of its wall clock
// (CockroachDB's rule): one peer with a clock years ahead cannot drag every
// node's stamps along.
type Clock struct {
	mu        sync.Mutex
	now       func() time.Time
	last      HLC
	maxOffset time.Duration
}

// NewClock returns a clock reading wall time from now (time.Now when nil)
// with DefaultMaxOffset.
func NewClock(now func() time.Time) *Clock {
	if now == nil {
		now = time.Now
	}
	return &Clock{now: now, maxOffset: DefaultMaxOffset}
}

// SetMaxOffset sets how far ahead of the wall clock a peer value Update
// takes may be (d > 0).
func (c *Clock) SetMaxOffset(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maxOffset = d
}

// MaxOffset returns the clock's maximum offset.
func (c *Clock) MaxOffset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxOffset
}

// Wall returns the clock's wall time.
func (c *Clock) Wall() time.Time { return c.now() }

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
// greater than it. A value more than the maximum offset ahead of the wall
// clock is not merged: Update returns a *ClockAheadError (so is one out of
// range: ErrClockRange) and the clock is unchanged.
func (c *Clock) Update(remote HLC) error {
	if err := remote.Check(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := CheckAhead(remote, c.now(), c.maxOffset); err != nil {
		return err
	}
	if remote > c.last {
		c.last = remote
	}
	return nil
}

// Last returns the highest value issued or observed.
func (c *Clock) Last() HLC {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}
