package config

import (
	"flag"
	"fmt"
	"time"
)

// Expiry holds the settings of the expiry sweep (docs/DESIGN.md,
// "Inventory behaviour the server owns").
type Expiry struct {
	// ExpiryEvery is how often lots are judged against their expiry date
	// (0: DefaultExpiryEvery).
	ExpiryEvery time.Duration
	// ExpiryClockOffset shifts the date lots are judged by, for testing
	// and rehearsal only: the expiry sweep, the near-expiry list and FEFO
	// pick routing act as if it were now + offset. The ops the sweep
	// issues keep the real clock's stamps.
	ExpiryClockOffset time.Duration
}

// DefaultExpiryEvery is how often lots are judged by default.
const DefaultExpiryEvery = 15 * time.Minute

// maxExpiryClockOffset bounds --expiry-clock-offset (ten years either way).
const maxExpiryClockOffset = 10 * 366 * 24 * time.Hour

func (e *Expiry) register(fs *flag.FlagSet) {
	fs.DurationVar(&e.ExpiryEvery, "expiry-every", DefaultExpiryEvery, "how often lots are judged against their expiry date: a lot past it becomes expired (a server-origin status op, sent to the gateways); one within the warehouse's near_expiry_days raises a near-expiry alert, cleared when the lot expires or is gone")
	fs.DurationVar(&e.ExpiryClockOffset, "expiry-clock-offset", 0, "TESTING ONLY, leave 0 in production: judge lot expiry (the expiry sweep, the near-expiry list, FEFO pick routing) as if the date were now plus this offset, e.g. 240h to rehearse what expires in ten days; op timestamps keep the real clock, and the server logs a warning at start while it is set")
}

func (e *Expiry) validate() []error {
	var errs []error
	if e.ExpiryEvery < 0 || (e.ExpiryEvery > 0 && e.ExpiryEvery < time.Second) || e.ExpiryEvery > 24*time.Hour {
		errs = append(errs, fmt.Errorf("expiry-every: %s must be between 1s and 24h (0: default)", e.ExpiryEvery))
	}
	if e.ExpiryClockOffset < -maxExpiryClockOffset || e.ExpiryClockOffset > maxExpiryClockOffset {
		errs = append(errs, fmt.Errorf("expiry-clock-offset: %s must be within ±%s", e.ExpiryClockOffset, maxExpiryClockOffset))
	}
	return errs
}

// ExpirySweepEvery is ExpiryEvery, defaulted.
func (e *Expiry) ExpirySweepEvery() time.Duration {
	if e.ExpiryEvery <= 0 {
		return DefaultExpiryEvery
	}
	return e.ExpiryEvery
}

// ExpiryClock returns the clock lot expiry is judged by: the wall clock
// shifted by ExpiryClockOffset.
func (e *Expiry) ExpiryClock() func() time.Time {
	off := e.ExpiryClockOffset
	if off == 0 {
		return time.Now
	}
	return func() time.Time { return time.Now().Add(off) }
}
