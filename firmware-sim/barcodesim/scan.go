package barcodesim

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shelfsync/shelfsync/drivers/ssi"
)

// Scan sends one scan of text, framed as configured, injecting the fault
// when this scan's turn has come. With SSI framing it returns once the host
// ACKed every packet, resending on NAK or after AckTimeout, or ErrNoAck.
// A scan held back by the merge fault returns nil at once and goes out
// with the next Scan or Flush.
func (s *Sim) Scan(text string) error {
	s.scanMu.Lock()
	defer s.scanMu.Unlock()
	s.count++
	fault := FaultNone
	if s.cfg.Fault != FaultNone && s.count%s.cfg.FaultEvery == 0 {
		fault = s.cfg.Fault
		s.faults.Add(1)
		s.cfg.Logger.Debug("fault", "kind", fault, "scan", s.count)
	}
	text = s.cfg.AIM + text
	if s.cfg.GSMode == GSStrip {
		text = strings.ReplaceAll(text, "\x1d", "")
	}
	if fault == FaultUnplug {
		if err := s.unplugFor(s.cfg.UnplugFor); err != nil {
			return err
		}
	}
	var err error
	if s.cfg.Framing == FramingSSI {
		err = s.sendSSI(s.packets(text), fault)
	} else {
		err = s.sendLine([]byte(text+suffixes[s.cfg.Suffix]), fault)
	}
	if err == nil {
		s.scans.Add(1)
	}
	return err
}

// Flush writes a frame held back by the merge fault.
func (s *Sim) Flush() error {
	s.scanMu.Lock()
	defer s.scanMu.Unlock()
	if s.cfg.Framing == FramingSSI {
		if len(s.heldPkts) == 0 {
			return nil
		}
		return s.sendSSI(nil, FaultNone)
	}
	if len(s.held) == 0 {
		return nil
	}
	return s.sendLine(nil, FaultNone)
}

func (s *Sim) unplugFor(d time.Duration) error {
	if err := s.p.Unplug(); err != nil {
		return err
	}
	s.pause(context.Background(), d)
	return s.p.Replug()
}

// junk returns 4-16 random bytes, none of them in avoid.
func (s *Sim) junk(avoid string) []byte {
	b := make([]byte, 4+s.rnd.IntN(13))
	for i := range b {
		for {
			b[i] = byte(s.rnd.UintN(256))
			if !strings.ContainsRune(avoid, rune(b[i])) {
				break
			}
		}
	}
	return b
}

// sendLine writes a line-mode frame (nil: only what is held).
func (s *Sim) sendLine(frame []byte, fault string) error {
	suffix := suffixes[s.cfg.Suffix]
	var out []byte
	out = append(out, s.held...)
	s.held = nil
	switch fault {
	case FaultMerge:
		s.held = append(out, frame...)
		return nil
	case FaultGarbage:
		// Line noise ends up as a junk line of its own.
		out = append(out, s.junk("\r\n\t"+suffix)...)
		out = append(out, suffix...)
	case FaultLongLine:
		out = append(out, strings.Repeat("X", s.cfg.LongLine)...)
	}
	out = append(out, frame...)
	return s.send(out, fault == FaultSplit)
}

// send writes out, in two parts SplitGap apart when split.
func (s *Sim) send(out []byte, split bool) error {
	if split && len(out) > 1 {
		half := len(out) / 2
		if err := s.write(out[:half]); err != nil {
			return fmt.Errorf("barcodesim: write: %w", err)
		}
		s.pause(context.Background(), s.cfg.SplitGap)
		out = out[half:]
	}
	if err := s.write(out); err != nil {
		return fmt.Errorf("barcodesim: write: %w", err)
	}
	return nil
}

// packets cuts text into DECODE_DATA packets; each repeats the code type.
func (s *Sim) packets(text string) []ssi.Packet {
	ct := s.cfg.CodeType
	if ct == 0 {
		ct = GuessCodeType(text)
	}
	const chunk = ssi.MaxData - 1
	var out []ssi.Packet
	for data := []byte(text); ; {
		n := min(len(data), chunk)
		p := ssi.DecodeData(ct, data[:n])
		data = data[n:]
		if len(data) > 0 {
			p.Status |= ssi.StatusContinuation
		}
		out = append(out, p)
		if len(data) == 0 {
			return out
		}
	}
}

// sendSSI writes held and new packets and waits for the host's ACK of
// each, resending as a real decoder does.
func (s *Sim) sendSSI(pkts []ssi.Packet, fault string) error {
	if fault == FaultMerge {
		s.heldPkts = append(s.heldPkts, pkts...)
		return nil
	}
	firstNew := len(s.heldPkts)
	all := append(s.heldPkts, pkts...)
	s.heldPkts = nil
	for len(s.acks) > 0 { // stale answers from an earlier exchange
		<-s.acks
	}
	var out []byte
	if fault == FaultGarbage {
		out = s.junk("")
	}
	for i, p := range all {
		b := ssi.MustEncode(p)
		if fault == FaultBadSum && i == firstNew {
			b[len(b)-1] ^= 0x5A
		}
		out = append(out, b...)
	}
	if err := s.send(out, fault == FaultSplit); err != nil {
		return err
	}
	for _, p := range all {
		if err := s.awaitAck(p); err != nil {
			return err
		}
	}
	return nil
}

// awaitAck waits for the host's answer to p, resending p with the
// retransmit bit on a NAK or a timeout, at most Retries times.
func (s *Sim) awaitAck(p ssi.Packet) error {
	for try := 0; ; try++ {
		t := time.NewTimer(s.cfg.AckTimeout)
		select {
		case op := <-s.acks:
			t.Stop()
			if op == ssi.OpAck {
				return nil
			}
		case <-t.C:
		case <-s.done:
			t.Stop()
			return errors.New("barcodesim: closed")
		}
		if try == s.cfg.Retries {
			return fmt.Errorf("%w after %d tries", ErrNoAck, try+1)
		}
		p.Status |= ssi.StatusRetransmit
		s.resent.Add(1)
		if err := s.write(ssi.MustEncode(p)); err != nil {
			return fmt.Errorf("barcodesim: resend: %w", err)
		}
	}
}

// GuessCodeType picks the SSI code type a scanner would report for text:
// GS1-128 for AIM ]C1 or text with GS, EAN-8, UPC-A, EAN-13 and ITF-14 by
// digit count, QR Code for URLs, else Code 128.
func GuessCodeType(text string) byte {
	code := func(name string) byte {
		c, _ := ssi.CodeType(name)
		return c
	}
	body := text
	if len(body) >= 3 && body[0] == ']' {
		if body[:3] == "]C1" {
			return code("GS1-128")
		}
		body = body[3:]
	}
	switch {
	case strings.ContainsRune(body, 0x1d):
		return code("GS1-128")
	case strings.HasPrefix(body, "http://"), strings.HasPrefix(body, "https://"):
		return code("QR Code")
	case strings.Trim(body, "0123456789") == "":
		switch len(body) {
		case 8:
			return code("EAN-8")
		case 12:
			return code("UPC-A")
		case 13:
			return code("EAN-13")
		case 14:
			return code("Interleaved 2 of 5")
		}
	}
	return code("Code 128")
}
