package rfidsim

import (
	"encoding/binary"
	"time"

	"github.com/shelfsync/shelfsync/drivers/rfid"
)

// uhf18StatusBadCommand is the UHFReader18 status for a command it does
// not know.
const uhf18StatusBadCommand = 0xFE

// uhf18ReaderInfo is the reader-information (0x21) reply data: version
// 2.0, type 0x09 (UHFReader18), protocol bits (6B and Gen2), max/min
// frequency indices, power 30 dBm, inventory scan time 1 s (×100 ms).
var uhf18ReaderInfo = []byte{0x02, 0x00, 0x09, 0x03, 0x4E, 0x00, 0x1E, 0x0A}

// answerUHF18 answers one UHFReader18 command frame.
func (s *Sim) answerUHF18(frame []byte) {
	c, err := rfid.ParseUHF18Command(frame)
	if err != nil || c.Adr != s.cfg.Address && c.Adr != rfid.UHF18Broadcast {
		return // not for this reader
	}
	s.commands.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []byte
	switch c.Cmd {
	case rfid.UHF18CmdInventory:
		epcs := s.visible(0)
		out, err = rfid.AppendUHF18Inventory(nil, s.cfg.Address, epcs, rfid.UHF18StatusDone)
		if err != nil {
			s.cfg.Logger.Warn("rfidsim: inventory", "err", err)
			return
		}
		s.reads.Add(uint64(len(epcs)))
	case rfid.UHF18CmdReaderInfo:
		out, _ = rfid.AppendUHF18Response(nil, s.cfg.Address, c.Cmd, 0x00, uhf18ReaderInfo)
	default:
		out, _ = rfid.AppendUHF18Response(nil, s.cfg.Address, c.Cmd, uhf18StatusBadCommand, nil)
	}
	if err := s.send(out, frameLengthsUHF18(out)...); err != nil {
		s.cfg.Logger.Debug("rfidsim: write", "err", err)
	}
}

// frameLengthsUHF18 splits concatenated UHFReader18 frames.
func frameLengthsUHF18(b []byte) []int {
	var ls []int
	for len(b) > 0 {
		l := int(b[0]) + 1
		ls = append(ls, l)
		b = b[l:]
	}
	return ls
}

// mercuryVersion is the get-version (0x03) reply data: bootloader,
// hardware, firmware date and firmware version (4 bytes each), then the
// supported-protocols bit mask (Gen2).
var mercuryVersion = []byte{
	0x12, 0x12, 0x06, 0x00, 0x18, 0x00, 0x00, 0x02, 0x20, 0x24, 0x01, 0x15,
	0x01, 0x0B, 0x02, 0x05, 0x00, 0x00, 0x00, 0x10,
}

// answerMercury answers one Mercury host command.
func (s *Sim) answerMercury(frame []byte) {
	c, err := rfid.ParseMercury(frame, false)
	if err != nil {
		return
	}
	s.commands.Add(1)
	status, data := uint16(rfid.MercuryStatusOK), []byte(nil)
	switch c.Op {
	case rfid.MercuryOpVersion:
		data = mercuryVersion
	case rfid.MercuryOpMultiProtocol:
		if len(c.Data) >= 3 && c.Data[2] == 0x01 {
			s.startStream()
		} else {
			s.stopStream()
		}
		data = c.Data[:min(3, len(c.Data))]
	case rfid.MercuryOpReadMultiple:
		s.mu.Lock()
		n := len(s.visible(0))
		s.mu.Unlock()
		data = append(c.Data[:min(3, len(c.Data)):min(3, len(c.Data))], 0, 0, 0, 0)
		binary.BigEndian.PutUint32(data[len(data)-4:], uint32(n))
	case rfid.MercuryOpSetAntenna, rfid.MercuryOpSetProtocol, rfid.MercuryOpSetRegion,
		0x2A, 0x92, 0x9A, 0x9B: // clear buffer, read power, reader options, protocol options
	default:
		status = rfid.MercuryStatusBadOpcode
	}
	out, err := rfid.AppendMercuryResponse(nil, c.Op, status, data)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.send(out, len(out)); err != nil {
		s.cfg.Logger.Debug("rfidsim: write", "err", err)
	}
}

// startStream starts the continuous read if it is not running.
func (s *Sim) startStream() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streaming != nil {
		return
	}
	stop := make(chan struct{})
	s.streaming = stop
	s.wg.Add(1)
	go s.stream(stop)
	s.cfg.Logger.Debug("rfidsim: continuous read started")
}

// stopStream stops the continuous read if it runs.
func (s *Sim) stopStream() { s.stopStreamIf(nil) }

// stopStreamIf stops the continuous read if it runs and, when which is not
// nil, is that one.
func (s *Sim) stopStreamIf(which chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streaming != nil && (which == nil || s.streaming == which) {
		close(s.streaming)
		s.streaming = nil
		s.cfg.Logger.Debug("rfidsim: continuous read stopped")
	}
}

// streamTick is how often the continuous read writes a batch of records.
const streamTick = 10 * time.Millisecond

// stream writes tag records at cfg.Rate — random visible (tag, antenna)
// pairs — and a keep-alive each second when no tag is visible.
func (s *Sim) stream(stop chan struct{}) {
	defer s.wg.Done()
	tick := time.NewTicker(streamTick)
	defer tick.Stop()
	last, lastKeepAlive := time.Now(), time.Now()
	var due float64
	var out []byte
	var lengths []int
	for {
		select {
		case <-stop:
			return
		case <-s.done:
			return
		case now := <-tick.C:
			// After a stall (a driver not reading) catch up by at most 1 s.
			due = min(due+s.cfg.Rate*now.Sub(last).Seconds(), s.cfg.Rate)
			last = now
			out, lengths = out[:0], lengths[:0]
			reads := 0
			s.mu.Lock()
			for ; due >= 1; due-- {
				ant := 1 + s.rnd.IntN(s.cfg.Antennas)
				epcs := s.visible(ant)
				if len(epcs) == 0 {
					continue
				}
				rec := rfid.AppendMercuryTag(nil, rfid.MercuryTag{
					RSSI: s.rssi(), TxAntenna: ant, RxAntenna: ant,
					FrequencyKHz: 902750 + 500*s.rnd.IntN(50),
					TimestampMs:  uint32(now.Sub(s.start).Milliseconds()),
					EPC:          epcs[s.rnd.IntN(len(epcs))],
				})
				before := len(out)
				out, _ = rfid.AppendMercuryResponse(out, rfid.MercuryOpReadMultiple, rfid.MercuryStatusOK, rec)
				lengths = append(lengths, len(out)-before)
				reads++
			}
			if len(lengths) == 0 && now.Sub(lastKeepAlive) >= time.Second {
				lastKeepAlive = now
				out, _ = rfid.AppendMercuryResponse(out, rfid.MercuryOpReadMultiple, rfid.MercuryStatusNoTags, nil)
				lengths = append(lengths, len(out))
			}
			var err error
			if len(lengths) > 0 {
				s.reads.Add(uint64(reads))
				err = s.send(out, lengths...)
			}
			s.mu.Unlock()
			if err != nil {
				s.cfg.Logger.Debug("rfidsim: continuous read ended", "err", err)
				s.stopStreamIf(stop)
				return
			}
		}
	}
}
