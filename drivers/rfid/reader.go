// Package rfid speaks the serial protocols of two UHF RFID reader families
// — the UHFReader18 / CF-RU5102 "Len Adr Cmd" protocol and the ThingMagic
// Mercury "FF Len Op" protocol — and turns what they report into TagRead
// values: frame encoders, stream decoders that resynchronise after
// garbage, a polling/continuous Reader driver over any io.ReadWriter, and
// a Dedup that merges repeated reads of a tag within a time window at
// hundreds of thousands of reads per second.
//
// Codecs do no I/O; Reader does the I/O and takes its clock and logger
// from Config.
package rfid

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// TagRead is one observation of a tag (or, after Dedup, Count merged
// observations).
type TagRead struct {
	EPC     []byte    // EPC bank contents without PC and CRC
	Antenna int       // antenna port, from 1
	RSSI    int       // dBm; 0 when the reader does not report it
	At      time.Time // when it was read (first read, after Dedup)
	Count   int       // observations merged into this one
}

// Protocol names a reader protocol.
type Protocol string

// Protocols Reader speaks.
const (
	UHF18   Protocol = "uhf18"
	Mercury Protocol = "mercury"
)

// Log attribute keys.
const (
	logKeyProtocol = "protocol"
	logKeyStatus   = "status"
	logKeyError    = "err"
)

// Config configures a Reader. Zero fields take the documented defaults.
type Config struct {
	Protocol Protocol // uhf18 or mercury (required)
	// Address is the UHFReader18 reader address (default 0x00; 0xFF
	// addresses any reader).
	Address byte
	// Interval is the UHFReader18 inventory period (default 200ms).
	Interval time.Duration
	// Timeout bounds the wait for a response; Mercury continuous reading
	// restarts after 3×Timeout without a frame (default 2s).
	Timeout time.Duration
	// Antenna is the port reported for UHFReader18 reads, whose inventory
	// response has none (default 1).
	Antenna int
	// Now is the clock for TagRead.At (default time.Now).
	Now func() time.Time
	// Logger receives protocol warnings (default: discard).
	Logger *slog.Logger
}

// Validate reports a configuration error naming the field.
func (c Config) Validate() error {
	switch {
	case c.Protocol != UHF18 && c.Protocol != Mercury:
		return fmt.Errorf("rfid: Config.Protocol %q: want %q or %q", c.Protocol, UHF18, Mercury)
	case c.Interval < 0, c.Timeout < 0:
		return errors.New("rfid: Config.Interval and Config.Timeout must not be negative")
	case c.Antenna < 0:
		return fmt.Errorf("rfid: Config.Antenna %d must not be negative", c.Antenna)
	}
	return nil
}

func (c *Config) ensureDefaults() {
	if c.Interval == 0 {
		c.Interval = 200 * time.Millisecond
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Second
	}
	if c.Antenna == 0 {
		c.Antenna = 1
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Stats counts what a Reader saw.
type Stats struct {
	Frames    int64 // valid frames received
	BadFrames int64 // frames with a valid CRC but contents that do not parse
	Garbage   int64 // bytes skipped while resynchronising (noise, bad CRCs)
	Reads     int64 // tag reads delivered
	Timeouts  int64 // commands that got no answer in time
}

// Reader drives one RFID reader over a serial port (or pty, or pipe).
type Reader struct {
	rw  io.ReadWriter
	cfg Config

	frames, badFrames, reads, timeouts, garbage atomic.Int64
}

// New returns a Reader for rw. It does no I/O until Run.
func New(rw io.ReadWriter, cfg Config) (*Reader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.ensureDefaults()
	return &Reader{rw: rw, cfg: cfg}, nil
}

// Stats returns the counters so far. It is safe to call during Run.
func (r *Reader) Stats() Stats {
	return Stats{
		Frames: r.frames.Load(), BadFrames: r.badFrames.Load(), Garbage: r.garbage.Load(),
		Reads: r.reads.Load(), Timeouts: r.timeouts.Load(),
	}
}

// Run reads tags until ctx is done or the port fails, calling handle for
// every read from Run's goroutine. The EPC passed to handle is only valid
// during the call: copy it to keep it (Dedup.Add does). Run returns
// ctx.Err() on cancellation, or the I/O error that ended it.
//
// Run reads the port on a second goroutine, which has ended when Run
// returns if rw has SetReadDeadline (os.File, net.Conn: Run interrupts the
// read) or SetReadTimeout (go.bug.st/serial: Run sets a 100ms timeout);
// otherwise it ends when the caller closes the port.
func (r *Reader) Run(ctx context.Context, handle func(TagRead)) error {
	p := startPump(r.rw)
	defer p.stop()
	switch r.cfg.Protocol {
	case UHF18:
		return r.runUHF18(ctx, p, handle)
	default:
		return r.runMercury(ctx, p, handle)
	}
}

// RunDedup is Run with reads merged by a Dedup of the given window: emit
// gets one TagRead per EPC and antenna per window (EPC valid during the
// call only). Windows are flushed every window/4 even when no read comes,
// and all open windows when Run ends. Calls to emit are serialised.
func (r *Reader) RunDedup(ctx context.Context, window time.Duration, emit func(TagRead)) error {
	if window <= 0 {
		return fmt.Errorf("rfid: dedup window %v must be positive", window)
	}
	var mu sync.Mutex
	d := NewDedup(window, emit)
	stop, flushed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(flushed)
		t := time.NewTicker(max(window/4, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				mu.Lock()
				d.Flush(r.cfg.Now())
				mu.Unlock()
			}
		}
	}()
	err := r.Run(ctx, func(tr TagRead) {
		mu.Lock()
		d.Add(tr)
		mu.Unlock()
	})
	close(stop)
	<-flushed
	d.FlushAll()
	return err
}

func (r *Reader) write(frame []byte) error {
	if _, err := r.rw.Write(frame); err != nil {
		return fmt.Errorf("rfid %s: write: %w", r.cfg.Protocol, err)
	}
	return nil
}

// pump reads the port on its own goroutine, passing filled buffers to
// Run and getting them back for reuse (two buffers, no allocation).
type pump struct {
	rw     io.Reader
	filled chan []byte
	empty  chan []byte
	errc   chan error
	quit   chan struct{}
	done   chan struct{}
}

type deadliner interface{ SetReadDeadline(time.Time) error }

// timeouter is a serial port with a read timeout (go.bug.st/serial.Port):
// Read returns (0, nil) when it passes.
type timeouter interface{ SetReadTimeout(time.Duration) error }

// pumpReadTimeout is the read timeout Run sets on a timeouter so that its
// reading goroutine notices Run returning.
const pumpReadTimeout = 100 * time.Millisecond

func startPump(rw io.Reader) *pump {
	p := &pump{rw: rw, filled: make(chan []byte), empty: make(chan []byte, 2),
		errc: make(chan error, 1), quit: make(chan struct{}), done: make(chan struct{})}
	p.empty <- make([]byte, 4096)
	p.empty <- make([]byte, 4096)
	if t, ok := rw.(timeouter); ok {
		_ = t.SetReadTimeout(pumpReadTimeout)
	}
	go p.loop()
	return p
}

func (p *pump) loop() {
	defer close(p.done)
	for {
		var buf []byte
		select {
		case buf = <-p.empty:
		case <-p.quit:
			return
		}
		n, err := p.rw.Read(buf[:cap(buf)])
		if n > 0 {
			select {
			case p.filled <- buf[:n]:
			case <-p.quit:
				return
			}
		} else {
			p.empty <- buf
		}
		if err != nil {
			p.errc <- err
			return
		}
	}
}

// release gives a buffer back to the pump.
func (p *pump) release(buf []byte) { p.empty <- buf }

func (p *pump) stop() {
	close(p.quit)
	switch d := p.rw.(type) {
	case deadliner:
		_ = d.SetReadDeadline(time.Now())
		<-p.done
		_ = d.SetReadDeadline(time.Time{})
	case timeouter:
		<-p.done // within pumpReadTimeout
	}
}
