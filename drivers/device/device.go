package device

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shelfsync/shelfsync/drivers/feedback"
	"github.com/shelfsync/shelfsync/drivers/serialport"
)

// ErrNotConnected is returned by Feedback while the device is away.
var ErrNotConnected = errors.New("device: not connected")

// readSize is the read buffer size.
const readSize = 4096

// Read is one scan, tag read or framing error from a device.
type Read struct {
	Device    string    // Config.Name
	Text      string    // as sent, AIM prefix and all: the agent parses it
	Symbology string    // when the protocol says (SSI); else ""
	Raw       []byte    // bytes behind Text, the receiver's to keep
	At        time.Time // when the frame was complete
	Err       error     // non-nil for a framing error event (e.g. linemode.ErrLineTooLong)
}

// Stats counts a device's activity since Open.
type Stats struct {
	Reads         uint64 // Reads delivered without Err
	FramingErrors uint64 // Reads delivered with Err, plus corrupt frames answered by the protocol
	Garbage       uint64 // bytes the framer skipped
	Reconnects    uint64 // successful opens after the first
	Connected     bool
	Path          string // the device path last opened
}

// Device is one scanner or reader. Run drives it; the other methods may be
// called from any goroutine.
type Device struct {
	cfg Config

	connected atomic.Bool
	reads     atomic.Uint64
	errs      atomic.Uint64
	corrupt   atomic.Uint64 // from the framer's Counter, current connection
	corruptB  atomic.Uint64 // from the framer's Counter, closed connections
	garbage   atomic.Uint64
	garbageB  atomic.Uint64
	reconns   atomic.Uint64
	opens     atomic.Uint64

	mu    sync.Mutex // guards port, path, fb
	port  serialport.Port
	path  string
	fb    func(feedback.Signal) ([]byte, error)
	wmu   sync.Mutex // serialises writes to port
	runMu sync.Mutex // one Run at a time
}

// Open returns a Device for cfg; nothing is opened until Run.
func Open(cfg Config) *Device {
	return &Device{cfg: cfg.EnsureDefaults()}
}

// Name returns Config.Name.
func (d *Device) Name() string { return d.cfg.Name }

// Connected reports whether the port is open now.
func (d *Device) Connected() bool { return d.connected.Load() }

// Path returns the device path last opened, or "" before the first open.
func (d *Device) Path() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.path
}

// Stats returns the counters so far.
func (d *Device) Stats() Stats {
	return Stats{
		Reads:         d.reads.Load(),
		FramingErrors: d.errs.Load() + d.corrupt.Load() + d.corruptB.Load(),
		Garbage:       d.garbage.Load() + d.garbageB.Load(),
		Reconnects:    d.reconns.Load(),
		Connected:     d.Connected(),
		Path:          d.Path(),
	}
}

// Feedback writes the bytes that signal sig to the operator. It returns
// ErrNotConnected (wrapped) while the device is away, and the write error
// if the device went away meanwhile.
func (d *Device) Feedback(sig feedback.Signal) error {
	d.mu.Lock()
	port, encode := d.port, d.fb
	d.mu.Unlock()
	if port == nil {
		return fmt.Errorf("feedback %s to %s: %w", sig, d.cfg.Name, ErrNotConnected)
	}
	b, err := encode(sig)
	if err != nil {
		return fmt.Errorf("feedback %s to %s: %w", sig, d.cfg.Name, err)
	}
	if len(b) == 0 {
		return nil
	}
	if err := d.write(port, b); err != nil {
		return fmt.Errorf("feedback %s to %s: %w", sig, d.cfg.Name, err)
	}
	return nil
}

func (d *Device) write(port serialport.Port, b []byte) error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	_, err := port.Write(b)
	return err
}

// Run opens the device and sends its Reads to out until ctx is done. When
// the device goes away (any read or write error) it closes the port and
// opens it again, waiting Config.Backoff between attempts. It returns nil
// once ctx is done, or an error for an invalid Config.
func (d *Device) Run(ctx context.Context, out chan<- Read) error {
	if err := d.cfg.Validate(); err != nil {
		return err
	}
	if !d.runMu.TryLock() {
		return fmt.Errorf("device %q: already running", d.cfg.Name)
	}
	defer d.runMu.Unlock()
	sel, _ := serialport.ParseSelector(d.cfg.Selector) // checked by Validate
	log := d.cfg.Logger.With(logDevice, d.cfg.Name)
	attempt := 0
	for ctx.Err() == nil {
		productive, err := d.session(ctx, sel, out)
		if ctx.Err() != nil {
			break
		}
		if productive {
			attempt = 0
		}
		wait := d.cfg.Backoff.backoff(attempt, d.cfg.Rand())
		level := log.Warn
		if attempt > 0 {
			level = log.Debug // keep a long unplug from flooding the log
		}
		level("device unavailable", logErr, err, logBackoff, wait, logAttempt, attempt)
		attempt++
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	return nil
}

// session opens the port once and reads until it fails. productive reports
// whether the connection was good for long enough, or brought data, to
// reset the backoff.
func (d *Device) session(ctx context.Context, sel serialport.Selector, out chan<- Read) (productive bool, err error) {
	path, err := sel.Resolve()
	if err != nil {
		return false, err
	}
	framer, err := d.newFramer()
	if err != nil {
		return false, err
	}
	port, err := d.cfg.OpenPort(path, d.cfg.Baud)
	if err != nil {
		return false, err
	}
	stop := context.AfterFunc(ctx, func() { port.Close() })
	defer stop()
	opened := time.Now()
	if d.opens.Add(1) > 1 {
		d.reconns.Add(1)
	}
	d.connect(port, path, framer)
	defer d.disconnect(port)
	d.cfg.Logger.Info("device connected", logDevice, d.cfg.Name, logPath, path)

	if init := framer.Reset(); len(init) > 0 {
		if err := d.write(port, init); err != nil {
			return false, fmt.Errorf("write init to %s: %w", path, err)
		}
	}
	s := &reader{d: d, ctx: ctx, out: out, framer: framer, port: port, path: path}
	err = s.loop()
	return s.gotData || time.Since(opened) >= d.cfg.Backoff.Max, err
}

func (d *Device) newFramer() (Framer, error) {
	if d.cfg.NewFramer != nil {
		return d.cfg.NewFramer()
	}
	return NewFramer(d.cfg)
}

func (d *Device) connect(port serialport.Port, path string, framer Framer) {
	encode := feedback.For(d.cfg.Feedback).Encode
	if fe, ok := framer.(FeedbackEncoder); ok && d.cfg.Feedback == "" {
		encode = fe.Feedback
	}
	d.mu.Lock()
	d.port, d.path, d.fb = port, path, encode
	d.mu.Unlock()
	d.connected.Store(true)
}

func (d *Device) disconnect(port serialport.Port) {
	d.connected.Store(false)
	d.mu.Lock()
	d.port = nil
	d.mu.Unlock()
	port.Close()
	d.corruptB.Add(d.corrupt.Swap(0))
	d.garbageB.Add(d.garbage.Swap(0))
}

// reader is the read loop of one connection.
type reader struct {
	d       *Device
	ctx     context.Context
	out     chan<- Read
	framer  Framer
	port    serialport.Port
	path    string
	gotData bool

	pending []Read // frames of the current Feed, sent after it returns
	reply   []byte
}

func (r *reader) emit(f Frame) {
	r.pending = append(r.pending, Read{
		Device: r.d.cfg.Name, Text: f.Text, Symbology: f.Symbology, Raw: f.Raw, At: r.d.cfg.Now(), Err: f.Err,
	})
}

// loop reads until the port fails or ctx ends.
func (r *reader) loop() error {
	buf := make([]byte, readSize)
	last := time.Now()
	for r.ctx.Err() == nil {
		n, err := r.port.Read(buf)
		if n > 0 {
			r.gotData = true
			last = time.Now()
			r.reply = r.framer.Feed(buf[:n], r.reply[:0], r.emit)
		} else if err == nil {
			r.reply = r.framer.Idle(time.Since(last), r.reply[:0], r.emit)
		}
		r.count()
		if len(r.reply) > 0 {
			if werr := r.d.write(r.port, r.reply); werr != nil {
				return fmt.Errorf("write to %s: %w", r.path, werr)
			}
		}
		if !r.deliver() {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", r.path, err)
		}
	}
	return nil
}

// count copies the framer's silent counters into the Device.
func (r *reader) count() {
	if c, ok := r.framer.(Counter); ok {
		garbage, corrupt := c.Counts()
		r.d.garbage.Store(garbage)
		r.d.corrupt.Store(corrupt)
	}
}

// deliver sends the pending Reads; it reports false if ctx ended first.
func (r *reader) deliver() bool {
	defer func() { r.pending = r.pending[:0] }()
	for i, rd := range r.pending {
		select {
		case r.out <- rd:
			r.pending[i] = Read{}
			if rd.Err != nil {
				r.d.errs.Add(1)
			} else {
				r.d.reads.Add(1)
			}
		case <-r.ctx.Done():
			return false
		}
	}
	return true
}
