package barcodesim

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/shelfsync/shelfsync/drivers/feedback"
	"github.com/shelfsync/shelfsync/drivers/ssi"
	"github.com/shelfsync/shelfsync/firmware-sim/pty"
)

// ErrNoAck is returned by Scan when an SSI host never acknowledged a scan.
var ErrNoAck = errors.New("barcodesim: no ACK from host")

// feedbackBuffer is how many signals Feedback buffers before dropping.
const feedbackBuffer = 256

// Stats counts a simulator's activity.
type Stats struct {
	Scans       uint64 // Scan calls that wrote their frame
	Faults      uint64 // faults injected
	Acks        uint64 // SSI ACKs received from the host
	Naks        uint64 // SSI NAKs received from the host
	Retransmits uint64 // SSI packets resent
	Feedback    uint64 // feedback signals decoded
	Dropped     uint64 // feedback signals dropped: nobody read Feedback
}

// Sim is a simulated barcode scanner. Scan may be called from one
// goroutine at a time (calls are serialised); the other methods from any.
type Sim struct {
	cfg Config
	p   *pty.PTY

	scanMu   sync.Mutex // serialises Scan
	rnd      *rand.Rand
	count    int
	held     []byte       // line frames held back by the merge fault
	heldPkts []ssi.Packet // SSI packets held back by the merge fault

	wmu  sync.Mutex // serialises writes to the pty
	fb   chan feedback.Signal
	acks chan byte // OpAck or OpNak from the host
	done chan struct{}
	wg   sync.WaitGroup

	scans, faults, nacks, naks, resent, fbs, dropped atomic.Uint64
}

// New opens the pty at cfg.Link and starts listening for the driver.
func New(cfg Config) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.EnsureDefaults()
	p, err := pty.Open(cfg.Link)
	if err != nil {
		return nil, fmt.Errorf("barcodesim: %w", err)
	}
	s := &Sim{
		cfg:  cfg,
		p:    p,
		rnd:  rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed)),
		fb:   make(chan feedback.Signal, feedbackBuffer),
		acks: make(chan byte, 64),
		done: make(chan struct{}),
	}
	s.wg.Add(1)
	go s.listen()
	return s, nil
}

// Link returns the path drivers open.
func (s *Sim) Link() string { return s.p.Link() }

// Feedback delivers each good/bad/warn signal the driver sent. Signals
// are dropped (and counted) when nobody reads.
func (s *Sim) Feedback() <-chan feedback.Signal { return s.fb }

// Stats returns the counters so far.
func (s *Sim) Stats() Stats {
	return Stats{
		Scans: s.scans.Load(), Faults: s.faults.Load(), Acks: s.nacks.Load(), Naks: s.naks.Load(),
		Retransmits: s.resent.Load(), Feedback: s.fbs.Load(), Dropped: s.dropped.Load(),
	}
}

// Unplug pulls the simulated USB cable: the driver's reads fail.
func (s *Sim) Unplug() error { return s.p.Unplug() }

// Replug plugs the scanner back in at the same link.
func (s *Sim) Replug() error { return s.p.Replug() }

// Plugged reports whether the scanner is plugged in.
func (s *Sim) Plugged() bool { return s.p.Plugged() }

// Close unplugs the scanner, removes the link and stops listening. The
// Feedback channel is closed.
func (s *Sim) Close() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	close(s.done)
	err := s.p.Close()
	s.wg.Wait()
	close(s.fb)
	return err
}

func (s *Sim) write(b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := s.p.Write(b)
	return err
}

// listen decodes what the driver writes: feedback and, for SSI, the
// handshake.
func (s *Sim) listen() {
	defer s.wg.Done()
	var dec ssi.Decoder
	hw, _ := feedback.NewDecoder(feedback.KindHoneywell)
	dl, _ := feedback.NewDecoder(feedback.KindDatalogic)
	buf := make([]byte, 1024)
	for {
		n, err := s.p.Read(buf)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.cfg.Logger.Debug("sim read", "err", err)
			}
			return
		}
		if s.cfg.Framing == FramingSSI {
			dec.Feed(buf[:n], s.hostPacket)
			continue
		}
		for _, sig := range append(hw.Feed(buf[:n]), dl.Feed(buf[:n])...) {
			s.signal(sig)
		}
	}
}

// hostPacket answers one SSI packet from the host.
func (s *Sim) hostPacket(p ssi.Packet, err error) {
	if err != nil {
		s.reply(ssi.Packet{Opcode: ssi.OpNak, Source: ssi.SourceDecoder, Data: []byte{ssi.NakResend}})
		return
	}
	if p.Source != ssi.SourceHost {
		return
	}
	switch p.Opcode {
	case ssi.OpAck, ssi.OpNak:
		if p.Opcode == ssi.OpAck {
			s.nacks.Add(1)
		} else {
			s.naks.Add(1)
		}
		select {
		case s.acks <- p.Opcode:
		default:
		}
		return
	case ssi.OpBeep:
		if len(p.Data) == 1 {
			if sig, ok := feedback.SignalForBeep(p.Data[0]); ok {
				s.signal(sig)
			}
		}
	}
	// Every host command gets an ACK, as from a real decoder.
	s.reply(ssi.Packet{Opcode: ssi.OpAck, Source: ssi.SourceDecoder})
}

func (s *Sim) reply(p ssi.Packet) {
	if err := s.write(ssi.MustEncode(p)); err != nil {
		s.cfg.Logger.Debug("sim reply", "err", err)
	}
}

func (s *Sim) signal(sig feedback.Signal) {
	s.fbs.Add(1)
	s.cfg.Logger.Debug("feedback", "signal", sig.String())
	select {
	case s.fb <- sig:
	default:
		s.dropped.Add(1)
	}
}
