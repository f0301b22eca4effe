package device

import (
	"fmt"
	"time"

	"github.com/shelfsync/shelfsync/drivers/feedback"
	"github.com/shelfsync/shelfsync/drivers/linemode"
	"github.com/shelfsync/shelfsync/drivers/ssi"
)

// Frame is one unit a Framer decoded: a scan or tag read, or a framing
// error.
type Frame struct {
	Text      string // the scan or tag text
	Symbology string // when the protocol says (SSI code type); else ""
	Raw       []byte // bytes behind Text; the Frame's owner may keep them
	Err       error  // non-nil for a framing error event; Text is then empty
}

// Framer is the byte protocol of one device kind. The Device calls it from
// one goroutine only, and makes a fresh one (or calls Reset) per
// connection.
type Framer interface {
	// Reset readies the Framer for a freshly opened port, dropping any
	// partial frame, and returns bytes to write first, or nil.
	Reset() []byte
	// Feed consumes bytes read from the port, calls emit for each frame in
	// order, and returns bytes to write back (acknowledgements) appended to
	// reply.
	Feed(p, reply []byte, emit func(Frame)) []byte
	// Idle is called when a read brought nothing; quiet is the time since
	// the last byte. It may emit frames and return bytes to write (a poll
	// command).
	Idle(quiet time.Duration, reply []byte, emit func(Frame)) []byte
}

// FeedbackEncoder is implemented by Framers that encode feedback
// themselves, used when Config.Feedback is empty. It must be safe to call
// concurrently with the Framer's other methods.
type FeedbackEncoder interface {
	Feedback(sig feedback.Signal) ([]byte, error)
}

// Counter is implemented by Framers that drop bytes or frames silently;
// the Device adds the counts to its Stats after every Feed.
type Counter interface {
	// Counts returns bytes skipped as garbage and frames dropped as
	// corrupt (and already answered, e.g. NAKed), since the last Reset.
	Counts() (garbage, corrupt uint64)
}

// NewFramer returns the built-in Framer for cfg.Framing.
func NewFramer(cfg Config) (Framer, error) {
	cfg = cfg.EnsureDefaults()
	switch cfg.Framing {
	case FramingLine:
		return &lineFramer{cfg: cfg.Line, idle: cfg.IdleFlush}, nil
	case FramingSSI:
		return &ssiFramer{}, nil
	}
	return nil, fmt.Errorf("device: unknown framing %q (want %q or %q)", cfg.Framing, FramingLine, FramingSSI)
}

// lineFramer frames line-mode scanners.
type lineFramer struct {
	cfg  linemode.Config
	idle time.Duration
	f    *linemode.Framer
	emit func(Frame)
	push func(linemode.Line, error)
}

var _ Framer = (*lineFramer)(nil)

func (l *lineFramer) Reset() []byte {
	l.f = linemode.NewFramer(l.cfg)
	l.push = func(line linemode.Line, err error) {
		l.emit(Frame{Text: line.Text, Raw: line.Raw, Err: err})
	}
	return nil
}

func (l *lineFramer) Feed(p, reply []byte, emit func(Frame)) []byte {
	l.emit = emit
	l.f.Feed(p, l.push)
	l.emit = nil
	return reply
}

func (l *lineFramer) Idle(quiet time.Duration, reply []byte, emit func(Frame)) []byte {
	if l.idle > 0 && quiet >= l.idle && l.f.Pending() > 0 {
		l.emit = emit
		l.f.Flush(l.push)
		l.emit = nil
	}
	return reply
}

// ssiFramer is the host side of Zebra SSI: it ACKs decode data and NAKs
// corrupt packets so the scanner resends them.
type ssiFramer struct {
	h *ssi.Host
}

var (
	_ Framer  = (*ssiFramer)(nil)
	_ Counter = (*ssiFramer)(nil)
)

func (s *ssiFramer) Reset() []byte {
	s.h = ssi.NewHost()
	return nil
}

func (s *ssiFramer) Feed(p, reply []byte, emit func(Frame)) []byte {
	return s.h.Feed(p, reply, func(sc ssi.Scan) {
		emit(Frame{Text: string(sc.Data), Symbology: sc.Symbology(), Raw: sc.Data})
	})
}

func (s *ssiFramer) Idle(_ time.Duration, reply []byte, _ func(Frame)) []byte { return reply }

func (s *ssiFramer) Counts() (garbage, corrupt uint64) {
	st := s.h.Stats()
	return st.Garbage, st.BadChecksum + st.Oversize
}
