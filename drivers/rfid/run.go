package rfid

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// wait blocks until bytes arrive from the pump (fed to dec), the port
// fails, timer fires, or ctx is done.
func (r *Reader) wait(ctx context.Context, p *pump, dec *MercuryDecoder, timer <-chan time.Time) (fired bool, err error) {
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case err := <-p.errc:
		return false, fmt.Errorf("rfid %s: read: %w", r.cfg.Protocol, err)
	case buf := <-p.filled:
		_, _ = dec.Write(buf)
		p.release(buf)
		r.garbage.Store(dec.Garbage())
		return false, nil
	case <-timer:
		return true, nil
	}
}

// runUHF18 polls: an inventory command every Interval, then the response
// frames until a final status or Timeout; a tick that comes while a
// response is still awaited is skipped.
func (r *Reader) runUHF18(ctx context.Context, p *pump, handle func(TagRead)) error {
	dec := &UHF18Decoder{}
	cmd, _ := AppendUHF18Command(nil, r.cfg.Address, UHF18CmdInventory, nil)
	tick := time.NewTicker(r.cfg.Interval)
	defer tick.Stop()
	timeout := time.NewTimer(r.cfg.Timeout)
	defer timeout.Stop()
	waiting := true
	if err := r.write(cmd); err != nil {
		return err
	}
	emit := func(epc []byte) {
		r.reads.Add(1)
		handle(TagRead{EPC: epc, Antenna: r.cfg.Antenna, At: r.cfg.Now(), Count: 1})
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-p.errc:
			return fmt.Errorf("rfid %s: read: %w", r.cfg.Protocol, err)
		case <-tick.C:
			if !waiting {
				waiting = true
				timeout.Reset(r.cfg.Timeout)
				if err := r.write(cmd); err != nil {
					return err
				}
			}
		case <-timeout.C:
			if waiting {
				r.timeouts.Add(1)
				r.cfg.Logger.Warn("rfid: no complete inventory response in time", logKeyProtocol, UHF18)
				waiting = false
			}
		case buf := <-p.filled:
			_, _ = dec.Write(buf)
			p.release(buf)
			if r.drainUHF18(dec, emit) {
				waiting = false
				timeout.Stop()
			}
			r.garbage.Store(dec.Garbage())
		}
	}
}

// drainUHF18 handles the decoded frames and reports whether a final
// inventory frame arrived.
func (r *Reader) drainUHF18(dec *UHF18Decoder, emit func([]byte)) (final bool) {
	for frame, ok := dec.Next(); ok; frame, ok = dec.Next() {
		r.frames.Add(1)
		f, err := ParseUHF18Response(frame)
		if err != nil || f.Cmd != UHF18CmdInventory {
			continue // a reply to another command
		}
		switch f.Status {
		case UHF18StatusNoTag:
		case UHF18StatusDone, UHF18StatusTimeout, UHF18StatusMoreFrames, UHF18StatusMemoryFull:
			if _, err := ForEachUHF18Tag(f.Data, emit); err != nil {
				r.badFrames.Add(1)
				r.cfg.Logger.Warn("rfid: bad inventory data", logKeyProtocol, UHF18, logKeyError, err)
			}
		default:
			r.cfg.Logger.Warn("rfid: inventory failed", logKeyProtocol, UHF18, logKeyStatus, f.Status)
		}
		if f.Status != UHF18StatusMoreFrames {
			final = true
		}
	}
	return final
}

// runMercury quiets the reader, checks it answers (get version), selects
// Gen2 and starts a continuous read, then decodes the stream of tag
// records, restarting the read after 3×Timeout of silence. On return it
// sends the stop command.
func (r *Reader) runMercury(ctx context.Context, p *pump, handle func(TagRead)) error {
	dec := &MercuryDecoder{FromReader: true}
	var buf []byte
	command := func(op byte, data []byte) error {
		buf, _ = AppendMercuryCommand(buf[:0], op, data)
		return r.write(buf)
	}
	// Stop any continuous read a previous session left running; the reply
	// is not awaited.
	if err := command(MercuryOpMultiProtocol, MercuryStopContinuous); err != nil {
		return err
	}
	defer func() { _ = command(MercuryOpMultiProtocol, MercuryStopContinuous) }()

	for _, step := range []struct {
		op   byte
		data []byte
	}{
		{MercuryOpVersion, nil},
		{MercuryOpSetProtocol, []byte{MercuryProtocolGen2}},
		{MercuryOpMultiProtocol, MercuryStartContinuous},
	} {
		// A reply lost on the line (bad CRC) is retried, as the Mercury
		// API does.
		var err error
		for range setupAttempts {
			if err = command(step.op, step.data); err != nil {
				return err
			}
			if err = r.awaitMercury(ctx, p, dec, step.op); !errors.Is(err, ErrNoReply) {
				break
			}
		}
		if err != nil {
			return err
		}
	}

	idle := 3 * r.cfg.Timeout
	watchdog := time.NewTimer(idle)
	defer watchdog.Stop()
	for {
		// Frames that came with the last reply are handled before waiting.
		for frame, ok := dec.Next(); ok; frame, ok = dec.Next() {
			r.frames.Add(1)
			watchdog.Reset(idle)
			r.mercuryRecord(frame, handle)
		}
		fired, err := r.wait(ctx, p, dec, watchdog.C)
		if err != nil {
			return err
		}
		if fired {
			r.timeouts.Add(1)
			r.cfg.Logger.Warn("rfid: continuous read silent, restarting", logKeyProtocol, Mercury)
			if err := command(MercuryOpMultiProtocol, MercuryStartContinuous); err != nil {
				return err
			}
			watchdog.Reset(idle)
		}
	}
}

// mercuryRecord delivers the tag record in frame, if it is one.
func (r *Reader) mercuryRecord(frame []byte, handle func(TagRead)) {
	f, err := ParseMercury(frame, true)
	if err != nil || f.Op != MercuryOpReadMultiple || f.Status != MercuryStatusOK || len(f.Data) == 0 {
		return // keep-alives (status 0x0400, no data), acks, other replies
	}
	t, err := ParseMercuryTag(f.Data)
	if err != nil {
		r.badFrames.Add(1)
		r.cfg.Logger.Warn("rfid: bad tag record", logKeyProtocol, Mercury, logKeyError, err)
		return
	}
	r.reads.Add(1)
	handle(TagRead{EPC: t.EPC, Antenna: t.RxAntenna, RSSI: t.RSSI, At: r.cfg.Now(), Count: 1})
}

// Errors of the Mercury setup exchange.
var (
	// ErrReaderStatus is wrapped when the reader answers a setup command
	// with a non-zero status.
	ErrReaderStatus = errors.New("reader returned an error status")
	// ErrNoReply is wrapped when the reader does not answer a setup
	// command within Config.Timeout, setupAttempts times in a row.
	ErrNoReply = errors.New("no reply")
)

// setupAttempts is how often a Mercury setup command is sent before Run
// gives up.
const setupAttempts = 3

// awaitMercury waits up to Timeout for the reply to op, skipping other
// frames (for instance records of a read still streaming).
func (r *Reader) awaitMercury(ctx context.Context, p *pump, dec *MercuryDecoder, op byte) error {
	t := time.NewTimer(r.cfg.Timeout)
	defer t.Stop()
	for {
		for frame, ok := dec.Next(); ok; frame, ok = dec.Next() {
			r.frames.Add(1)
			f, err := ParseMercury(frame, true)
			if err != nil || f.Op != op {
				continue
			}
			if f.Status != MercuryStatusOK {
				return fmt.Errorf("rfid mercury: opcode %02X: status %04X: %w", op, f.Status, ErrReaderStatus)
			}
			return nil
		}
		fired, err := r.wait(ctx, p, dec, t.C)
		if err != nil {
			return err
		}
		if fired {
			r.timeouts.Add(1)
			return fmt.Errorf("rfid mercury: %w to opcode %02X within %v: is a Mercury reader on this port?", ErrNoReply, op, r.cfg.Timeout)
		}
	}
}
