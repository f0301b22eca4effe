package linemode

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Framer is the push-style core of a Reader: Feed it bytes as they arrive
// and it calls back once per complete line or too-long line. It holds at
// most MaxLine plus the terminator's length in memory. A Framer is not safe
// for concurrent use.
type Framer struct {
	max    int
	limit  int    // bytes buf may hold: max plus an explicit terminator
	auto   bool   // CR, LF or CRLF
	term   []byte // explicit terminator
	last   byte   // term's last byte: where a match can end
	prefix string
	suffix string

	buf      []byte // the current line (and, explicit, its terminator so far)
	dropping bool   // the current line passed limit: counting, not keeping
	dropped  int    // bytes of the current line seen while dropping
	tail     []byte // last len(term) bytes seen while dropping
}

// NewFramer returns a Framer for cfg, with defaults applied. A MaxLine
// below 1 means DefaultMaxLine.
func NewFramer(cfg Config) *Framer {
	cfg = cfg.EnsureDefaults()
	if cfg.MaxLine < 1 {
		cfg.MaxLine = DefaultMaxLine
	}
	f := &Framer{max: cfg.MaxLine, limit: cfg.MaxLine, prefix: cfg.Prefix, suffix: cfg.Suffix}
	if cfg.Terminator == AutoTerminator {
		f.auto = true
	} else {
		f.term = []byte(cfg.Terminator)
		f.last = f.term[len(f.term)-1]
		f.limit += len(f.term)
		f.tail = make([]byte, 0, 2*len(f.term))
	}
	f.buf = make([]byte, 0, min(f.limit, 256))
	return f
}

// Pending reports how many bytes of an unterminated line the Framer holds
// or has counted.
func (f *Framer) Pending() int {
	if f.dropping {
		return f.dropped
	}
	return len(f.buf)
}

// Feed consumes p and calls emit, in stream order, with each complete
// non-empty line (err nil) and with an error wrapping ErrLineTooLong for
// each line longer than MaxLine. emit must not keep Line.Raw's backing
// array beyond the call unless it owns it: Feed hands out fresh copies, so
// it may.
func (f *Framer) Feed(p []byte, emit func(Line, error)) {
	for len(p) > 0 {
		i := f.index(p)
		if i < 0 {
			f.add(p)
			return
		}
		if f.auto {
			f.add(p[:i])
			f.end(0, emit)
		} else {
			f.add(p[:i+1])
			if f.matched() {
				f.end(len(f.term), emit)
			}
		}
		p = p[i+1:]
	}
}

// Flush ends the pending line as if its terminator had arrived: at end of
// input, or when a scanner that sends no terminator has gone quiet.
func (f *Framer) Flush(emit func(Line, error)) {
	if f.dropping || len(f.buf) > 0 {
		f.end(0, emit)
	}
}

// index returns the position in p of the next byte that may end a line.
func (f *Framer) index(p []byte) int {
	if !f.auto {
		return bytes.IndexByte(p, f.last)
	}
	lf := bytes.IndexByte(p, '\n')
	search := p
	if lf >= 0 {
		search = p[:lf]
	}
	if cr := bytes.IndexByte(search, '\r'); cr >= 0 {
		return cr
	}
	return lf
}

// add appends seg to the current line, switching to dropping when the line
// would outgrow limit.
func (f *Framer) add(seg []byte) {
	if f.dropping {
		f.dropped += len(seg)
		f.keepTail(seg)
		return
	}
	if len(f.buf)+len(seg) <= f.limit {
		f.buf = append(f.buf, seg...)
		return
	}
	f.dropping = true
	f.dropped = len(f.buf) + len(seg)
	f.tail = f.tail[:0]
	f.keepTail(f.buf)
	f.keepTail(seg)
	f.buf = f.buf[:0]
}

// keepTail remembers the last len(term) bytes of the dropped stream, so
// that an explicit terminator split across Feeds is still seen.
func (f *Framer) keepTail(seg []byte) {
	n := len(f.term)
	if n == 0 {
		return
	}
	if len(seg) > n {
		seg = seg[len(seg)-n:]
	}
	f.tail = append(f.tail, seg...)
	if extra := len(f.tail) - n; extra > 0 {
		f.tail = f.tail[:copy(f.tail, f.tail[extra:])]
	}
}

// matched reports whether the bytes seen so far end with the explicit
// terminator.
func (f *Framer) matched() bool {
	if f.dropping {
		return bytes.HasSuffix(f.tail, f.term)
	}
	return bytes.HasSuffix(f.buf, f.term)
}

// end finishes the current line, whose last termLen bytes are its
// terminator, and emits it unless it is empty.
func (f *Framer) end(termLen int, emit func(Line, error)) {
	if f.dropping {
		n := f.dropped - termLen
		f.dropping, f.dropped, f.tail = false, 0, f.tail[:0]
		emit(Line{}, fmt.Errorf("%w: %d bytes, max %d", ErrLineTooLong, n, f.max))
		return
	}
	raw := f.buf[:len(f.buf)-termLen]
	f.buf = f.buf[:0]
	if len(raw) > f.max {
		// Only reachable through Flush with a partial explicit terminator.
		emit(Line{}, fmt.Errorf("%w: %d bytes, max %d", ErrLineTooLong, len(raw), f.max))
		return
	}
	text := raw
	text = bytes.TrimPrefix(text, []byte(f.prefix))
	text = bytes.TrimSuffix(text, []byte(f.suffix))
	if len(text) == 0 {
		return
	}
	emit(Line{Text: string(text), Raw: bytes.Clone(raw)}, nil)
}

// readSize is the size of a Reader's read buffer.
const readSize = 4096

// Reader reads scans from a line-mode scanner's byte stream.
type Reader struct {
	r     io.Reader
	f     *Framer
	buf   []byte
	queue []result
	head  int
	err   error
	emit  func(Line, error)
}

type result struct {
	line Line
	err  error
}

// NewReader returns a Reader of r framed by cfg.
func NewReader(r io.Reader, cfg Config) *Reader {
	rd := &Reader{r: r, f: NewFramer(cfg), buf: make([]byte, readSize)}
	rd.emit = rd.push
	return rd
}

func (r *Reader) push(l Line, err error) {
	r.queue = append(r.queue, result{line: l, err: err})
}

// Next returns the next scan. A line longer than MaxLine comes back as an
// error wrapping ErrLineTooLong, after which Next may be called again. At
// the end of input an unterminated last line is returned, then io.EOF; other
// read errors are wrapped and returned once the lines before them are.
// A reader that returns (0, nil), such as a serial port with a read
// timeout, makes Next wait for more.
func (r *Reader) Next() (Line, error) {
	for {
		if r.head < len(r.queue) {
			res := r.queue[r.head]
			r.queue[r.head] = result{}
			r.head++
			return res.line, res.err
		}
		r.queue, r.head = r.queue[:0], 0
		if r.err != nil {
			return Line{}, r.err
		}
		n, err := r.r.Read(r.buf)
		if n > 0 {
			r.f.Feed(r.buf[:n], r.emit)
		}
		switch {
		case errors.Is(err, io.EOF):
			r.f.Flush(r.emit)
			r.err = io.EOF
		case err != nil:
			r.err = fmt.Errorf("linemode: read: %w", err)
		}
	}
}
