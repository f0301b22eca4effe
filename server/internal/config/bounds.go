package config

import (
	"flag"
	"fmt"
	"time"
)

// Bounds are the limits that keep a hostile or broken peer from hurting
// the server: HTTP timeouts and connection limit, the largest CSV upload,
// and how far ahead of this server's clock a gateway's clock may be.
type Bounds struct {
	// HTTPReadTimeout bounds reading a whole request, body included (a
	// slow body is cut); CSV uploads get HTTPUploadTimeout instead.
	HTTPReadTimeout time.Duration
	// HTTPUploadTimeout bounds reading a CSV upload.
	HTTPUploadTimeout time.Duration
	// HTTPIdleTimeout closes a keep-alive connection idle this long.
	HTTPIdleTimeout time.Duration
	// HTTPMaxConns caps open HTTP connections; more wait in the kernel's
	// accept queue until one closes.
	HTTPMaxConns int
	// MaxImportBytes bounds a CSV upload (413 beyond).
	MaxImportBytes int64
	// ClockMaxOffset is how far ahead of this server's wall clock a
	// gateway's hybrid logical clock may be; a hello or batch beyond it is
	// refused (protocol SPEC.md §4).
	ClockMaxOffset time.Duration
	// DiskReserve: while the data directory's disk has less free space,
	// the Badger store refuses writes (nothing is acknowledged) instead of
	// crashing when the disk fills; DiskLow: warn below it.
	DiskReserve, DiskLow int64
	// MemoryLimit is the Go runtime's soft memory limit in bytes
	// (runtime/debug.SetMemoryLimit), unless GOMEMLIMIT is set; 0: none.
	MemoryLimit int64
}

func (c *Bounds) register(fs *flag.FlagSet) {
	fs.DurationVar(&c.HTTPReadTimeout, "http-read-timeout", time.Minute, "longest time to read one HTTP request, body included (slow bodies are cut)")
	fs.DurationVar(&c.HTTPUploadTimeout, "http-upload-timeout", 30*time.Minute, "longest time to read one CSV upload")
	fs.DurationVar(&c.HTTPIdleTimeout, "http-idle-timeout", 2*time.Minute, "close HTTP keep-alive connections idle this long")
	fs.IntVar(&c.HTTPMaxConns, "http-max-conns", 1024, "most HTTP connections open at once (more wait to be accepted); keep it below the process's file-descriptor limit")
	fs.Int64Var(&c.MaxImportBytes, "max-import-bytes", 1<<30, "largest CSV upload in bytes (a larger one is refused with 413 before any row is applied); uploads are spooled under --data")
	fs.Int64Var(&c.DiskReserve, "disk-reserve", 1<<30, "bytes kept free on the data disk: below this the server applies and acknowledges nothing (gateways keep their ops) and /healthz says why, until space returns")
	fs.Int64Var(&c.DiskLow, "disk-low", 4<<30, "warn (log, metric) when the data disk has less free space than this many bytes")
	fs.Int64Var(&c.MemoryLimit, "memory-limit", 200<<20, "soft limit in bytes on the Go heap and runtime (the garbage collector works harder near it instead of letting freed memory pile up; the GOMEMLIMIT environment variable wins; 0: none). Not a hard cap: a larger live heap still grows")
	fs.DurationVar(&c.ClockMaxOffset, "clock-max-offset", 5*time.Minute, "refuse a gateway whose clock runs more than this ahead of the server's (its hello and batches get an error; fix its NTP)")
}

// validate checks the bounds; a zero field stands for its default.
func (c Bounds) validate() []error {
	c = c.Defaulted()
	var errs []error
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"http-read-timeout", c.HTTPReadTimeout}, {"http-upload-timeout", c.HTTPUploadTimeout}, {"http-idle-timeout", c.HTTPIdleTimeout}} {
		if f.d < time.Second {
			errs = append(errs, fmt.Errorf("%s: %s must be at least 1s", f.name, f.d))
		}
	}
	if c.HTTPMaxConns < 1 {
		errs = append(errs, fmt.Errorf("http-max-conns: %d must be at least 1", c.HTTPMaxConns))
	}
	if c.MaxImportBytes < 1<<10 {
		errs = append(errs, fmt.Errorf("max-import-bytes: %d must be at least 1024", c.MaxImportBytes))
	}
	if c.DiskReserve < 0 || c.DiskLow < c.DiskReserve {
		errs = append(errs, fmt.Errorf("disk-reserve, disk-low: %d, %d: want 0 ≤ disk-reserve ≤ disk-low", c.DiskReserve, c.DiskLow))
	}
	if c.ClockMaxOffset < time.Second || c.ClockMaxOffset > 24*time.Hour {
		errs = append(errs, fmt.Errorf("clock-max-offset: %s must be 1s..24h", c.ClockMaxOffset))
	}
	return errs
}

// Defaulted returns the bounds with every zero field set to its flag's
// default (a Config built in code rather than from flags).
func (c Bounds) Defaulted() Bounds {
	var d Bounds
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	d.register(fs)
	orDefault(&c.HTTPReadTimeout, d.HTTPReadTimeout)
	orDefault(&c.HTTPUploadTimeout, d.HTTPUploadTimeout)
	orDefault(&c.HTTPIdleTimeout, d.HTTPIdleTimeout)
	orDefault(&c.HTTPMaxConns, d.HTTPMaxConns)
	orDefault(&c.MaxImportBytes, d.MaxImportBytes)
	orDefault(&c.ClockMaxOffset, d.ClockMaxOffset)
	orDefault(&c.DiskReserve, d.DiskReserve)
	orDefault(&c.DiskLow, d.DiskLow)
	return c
}

// orDefault sets *v to d when *v is its zero value.
func orDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}
