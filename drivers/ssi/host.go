package ssi

import "bytes"

// MaxMessage bounds the data of a multi-packet DECODE_DATA message.
const MaxMessage = 64 << 10

// Scan is one decoded barcode.
type Scan struct {
	// Type is the SSI code type byte; Symbology names it.
	Type byte
	// Data is the barcode's data as the scanner sent it.
	Data []byte
}

// Symbology returns the name of s's code type.
func (s Scan) Symbology() string { return Symbology(s.Type) }

// HostStats counts what a Host has seen and answered.
type HostStats struct {
	DecoderStats
	Scans      uint64 // barcodes emitted
	Duplicates uint64 // retransmitted barcodes already emitted, ACKed again
	Acks       uint64 // ACKs from the scanner to our commands
	Naks       uint64 // NAKs from the scanner to our commands
	Oversize   uint64 // multi-packet messages over MaxMessage, dropped
}

// Host is the host end of an SSI link. Feed it what the scanner sends; it
// returns what must be written back: an ACK for every DECODE_DATA and
// EVENT, a NAK (resend) for every packet with a bad checksum. A retransmitted
// barcode identical to the last one emitted is ACKed but not emitted again,
// since it means our ACK was lost. Host does no I/O and is not safe for
// concurrent use.
type Host struct {
	dec      Decoder
	partType byte
	partial  []byte
	inPart   bool
	dropPart bool
	last     []byte // type byte + data of the last emitted scan
	hasLast  bool
	stats    HostStats
	reply    []byte
	emit     func(Scan)
	onPacket func(Packet, error)
}

// NewHost returns a Host.
func NewHost() *Host {
	h := &Host{}
	h.onPacket = h.packet
	return h
}

// Stats returns the counters so far.
func (h *Host) Stats() HostStats {
	s := h.stats
	s.DecoderStats = h.dec.Stats()
	return s
}

// Feed consumes bytes from the scanner, calls emit for each barcode (its
// Data is the caller's), and returns the replies to write, appended to
// reply.
func (h *Host) Feed(p, reply []byte, emit func(Scan)) []byte {
	h.reply, h.emit = reply, emit
	h.dec.Feed(p, h.onPacket)
	reply = h.reply
	h.reply, h.emit = nil, nil
	return reply
}

func (h *Host) packet(p Packet, err error) {
	if err != nil {
		h.reply, _ = Append(h.reply, Nak(NakResend))
		return
	}
	if p.Source != SourceDecoder {
		return // our own packets echoed back: ignore
	}
	switch p.Opcode {
	case OpDecodeData:
		h.reply, _ = Append(h.reply, Ack())
		h.decodeData(p)
	case OpEvent:
		h.reply, _ = Append(h.reply, Ack())
	case OpAck:
		h.stats.Acks++
	case OpNak:
		h.stats.Naks++
	}
}

func (h *Host) decodeData(p Packet) {
	if len(p.Data) == 0 {
		return
	}
	if !h.inPart {
		h.inPart, h.dropPart = true, false
		h.partType, h.partial = p.Data[0], h.partial[:0]
	}
	// Each packet of a multi-packet message repeats the code type byte.
	if len(h.partial)+len(p.Data)-1 > MaxMessage {
		h.dropPart = true
	}
	if !h.dropPart {
		h.partial = append(h.partial, p.Data[1:]...)
	}
	if p.Continued() {
		return
	}
	h.inPart = false
	if h.dropPart {
		h.stats.Oversize++
		return
	}
	if p.Retransmit() && h.hasLast && h.last[0] == h.partType && bytes.Equal(h.last[1:], h.partial) {
		h.stats.Duplicates++
		return
	}
	h.last = append(append(h.last[:0], h.partType), h.partial...)
	h.hasLast = true
	h.stats.Scans++
	h.emit(Scan{Type: h.partType, Data: bytes.Clone(h.partial)})
}
