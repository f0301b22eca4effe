package rfidsim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shelfsync/shelfsync/drivers/rfid"
	"github.com/shelfsync/shelfsync/firmware-sim/pty"
)

// Stats counts a simulator's activity.
type Stats struct {
	Commands uint64 // valid host commands received
	Frames   uint64 // frames sent
	Reads    uint64 // tag reads reported (inventory entries or stream records)
	Faults   uint64 // faults injected
}

// Sim is a simulated RFID reader. Its methods may be called from any
// goroutine.
type Sim struct {
	cfg   Config
	p     *pty.PTY
	start time.Time

	mu        sync.Mutex // guards the fields below and serialises writes
	rnd       *rand.Rand
	tags      []Tag
	frameNo   int
	streaming chan struct{} // non-nil while a continuous read runs; closed to stop it

	done chan struct{}
	wg   sync.WaitGroup

	commands, frames, reads, faults atomic.Uint64
}

// New opens the pty at cfg.Link and starts answering the driver.
func New(cfg Config) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.EnsureDefaults()
	p, err := pty.Open(cfg.Link)
	if err != nil {
		return nil, fmt.Errorf("rfidsim: %w", err)
	}
	s := &Sim{
		cfg:   cfg,
		p:     p,
		start: time.Now(),
		rnd:   rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x7a9)),
		done:  make(chan struct{}),
	}
	s.wg.Add(1)
	go s.listen()
	return s, nil
}

// Link returns the path drivers open.
func (s *Sim) Link() string { return s.p.Link() }

// SetTags replaces the tag population; the next inventory or stream
// record uses it.
func (s *Sim) SetTags(tags []Tag) {
	cp := make([]Tag, len(tags))
	for i, t := range tags {
		cp[i] = Tag{EPC: bytes.Clone(t.EPC), Antenna: t.Antenna}
	}
	s.mu.Lock()
	s.tags = cp
	s.mu.Unlock()
}

// Tags returns a copy of the tag population.
func (s *Sim) Tags() []Tag {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Tag, len(s.tags))
	for i, t := range s.tags {
		out[i] = Tag{EPC: bytes.Clone(t.EPC), Antenna: t.Antenna}
	}
	return out
}

// Stats returns the counters so far.
func (s *Sim) Stats() Stats {
	return Stats{Commands: s.commands.Load(), Frames: s.frames.Load(), Reads: s.reads.Load(), Faults: s.faults.Load()}
}

// Unplug makes the reader vanish as a USB device does; a continuous read
// stops. Replug brings it back at the same link.
func (s *Sim) Unplug() error {
	s.stopStream()
	return s.p.Unplug()
}

// Replug plugs the reader back in.
func (s *Sim) Replug() error { return s.p.Replug() }

// Close stops the simulator and removes the link.
func (s *Sim) Close() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	close(s.done)
	// The port first: a continuous read blocked writing to a driver that
	// no longer reads holds s.mu; closing the port fails that write and
	// lets it go (stopping the stream first waited for s.mu for ever).
	err := s.p.Close()
	s.stopStream()
	s.wg.Wait()
	return err
}

// listen decodes host commands and answers them until Close.
func (s *Sim) listen() {
	defer s.wg.Done()
	var uhf rfid.UHF18Decoder
	uhf.MinLen = 4
	var merc rfid.MercuryDecoder
	buf := make([]byte, 1024)
	for {
		n, err := s.p.Read(buf)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.cfg.Logger.Debug("rfidsim: read", "err", err)
			}
			select {
			case <-s.done:
				return
			default:
			}
			if errors.Is(err, io.EOF) {
				return
			}
			time.Sleep(10 * time.Millisecond) // a driver hung up; wait for the next one
			continue
		}
		if s.cfg.Protocol == rfid.UHF18 {
			_, _ = uhf.Write(buf[:n])
			for f, ok := uhf.Next(); ok; f, ok = uhf.Next() {
				s.answerUHF18(f)
			}
			continue
		}
		_, _ = merc.Write(buf[:n])
		for f, ok := merc.Next(); ok; f, ok = merc.Next() {
			s.answerMercury(f)
		}
	}
}

// visible returns the EPCs antenna ant (0: any) sees.
func (s *Sim) visible(ant int) [][]byte {
	var out [][]byte
	for _, t := range s.tags {
		if t.Antenna == 0 || t.Antenna == ant || ant == 0 && t.Antenna <= s.cfg.Antennas {
			if !slices.ContainsFunc(out, func(e []byte) bool { return bytes.Equal(e, t.EPC) }) {
				out = append(out, t.EPC)
			}
		}
	}
	return out
}

// send writes frames (already encoded, one after another in b, each of
// the given lengths), injecting the configured fault into every
// FaultEvery-th frame. Called with mu held.
func (s *Sim) send(b []byte, lengths ...int) error {
	var out []byte
	for _, l := range lengths {
		frame := b[:l]
		b = b[l:]
		s.frameNo++
		if s.cfg.Fault != FaultNone && s.frameNo%s.cfg.FaultEvery == 0 {
			s.faults.Add(1)
			switch s.cfg.Fault {
			case FaultGarbage:
				for range 1 + s.rnd.IntN(8) {
					out = append(out, byte(s.rnd.UintN(256)))
				}
			case FaultBadCRC:
				frame = bytes.Clone(frame)
				frame[len(frame)-1] ^= 0x5A
			}
		}
		out = append(out, frame...)
	}
	s.frames.Add(uint64(len(lengths)))
	_, err := s.p.Write(out)
	return err
}

func (s *Sim) rssi() int {
	return s.cfg.RSSIMin + s.rnd.IntN(s.cfg.RSSIMax-s.cfg.RSSIMin+1)
}
