package protocol

import (
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// MaxMessageSize is the largest message of this protocol, in bytes
// (SPEC.md §2): receivers refuse larger ones, senders never send them, and
// the server's default limit and its embedded broker's maximum payload are
// this same number.
const MaxMessageSize = 256 << 10

// Limits bound what Decode accepts from untrusted bytes.
type Limits struct {
	MaxMessageSize   int // bytes; default (and ceiling for peers) MaxMessageSize
	MaxNestedLevels  int // default 8
	MaxArrayElements int // default 65536
	MaxMapPairs      int // default 256
	// MaxInflatedSize bounds what the data of an ops-deflate message may
	// inflate to (deflate.go); inflating stops there and the message is
	// refused with ErrInflatedTooLarge. Default and ceiling: MaxMessageSize.
	MaxInflatedSize int
}

// DefaultLimits are the limits of the package-level Decode.
var DefaultLimits = Limits{
	MaxMessageSize:   MaxMessageSize,
	MaxNestedLevels:  8,
	MaxArrayElements: 65536,
	MaxMapPairs:      256,
	MaxInflatedSize:  MaxMessageSize,
}

// Sentinel errors returned (wrapped) by Decode.
var (
	// ErrTooLarge: the message exceeds MaxMessageSize. Split the batch.
	ErrTooLarge = errors.New("message too large")
	// ErrVersion: the message's protocol version is not Version.
	ErrVersion = errors.New("unsupported protocol version")
	// ErrMalformed: the bytes are not a valid shelfsync message.
	ErrMalformed = errors.New("malformed message")
	// ErrUnknownType: the message type is not known to this build.
	ErrUnknownType = errors.New("unknown message type")
	// ErrInflatedTooLarge: the data of an ops-deflate message inflates past
	// MaxInflatedSize (a decompression bomb, or a batch too large). Decode
	// wraps it together with ErrTooLarge.
	ErrInflatedTooLarge = errors.New("compressed batch inflates past the size limit")
)

// Codec encodes deterministically (RFC 8949 §4.2.1 core deterministic
// encoding) and decodes with explicit limits.
type Codec struct {
	enc    cbor.EncMode
	dec    cbor.DecMode
	limits Limits
}

// NewCodec builds a codec; zero fields of l take DefaultLimits.
func NewCodec(l Limits) (*Codec, error) {
	if l.MaxMessageSize == 0 {
		l.MaxMessageSize = DefaultLimits.MaxMessageSize
	}
	if l.MaxNestedLevels == 0 {
		l.MaxNestedLevels = DefaultLimits.MaxNestedLevels
	}
	if l.MaxArrayElements == 0 {
		l.MaxArrayElements = DefaultLimits.MaxArrayElements
	}
	if l.MaxMapPairs == 0 {
		l.MaxMapPairs = DefaultLimits.MaxMapPairs
	}
	if l.MaxInflatedSize <= 0 || l.MaxInflatedSize > l.MaxMessageSize {
		l.MaxInflatedSize = l.MaxMessageSize
	}
	enc, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		return nil, fmt.Errorf("cbor enc mode: %w", err)
	}
	dec, err := cbor.DecOptions{
		MaxNestedLevels:   l.MaxNestedLevels,
		MaxArrayElements:  l.MaxArrayElements,
		MaxMapPairs:       l.MaxMapPairs,
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		UTF8:              cbor.UTF8RejectInvalid,
		ExtraReturnErrors: cbor.ExtraDecErrorNone,
	}.DecMode()
	if err != nil {
		return nil, fmt.Errorf("cbor dec mode: %w", err)
	}
	return &Codec{enc: enc, dec: dec, limits: l}, nil
}

var std = mustCodec()

func mustCodec() *Codec {
	c, err := NewCodec(Limits{})
	if err != nil {
		panic(err)
	}
	return c
}

// Limits returns the codec's limits.
func (c *Codec) Limits() Limits { return c.limits }

// Encode stamps the message's version and type and encodes it. An OpBatch
// with Deflate set is sent as an ops-deflate message (deflate.go).
func (c *Codec) Encode(m Message) ([]byte, error) {
	h := header(m)
	h.V = Version
	h.T = m.Type()
	if b, ok := m.(*OpBatch); ok && b.Deflate {
		return c.encodeDeflate(b, b.Header)
	}
	if b, ok := m.(*RawOpBatch); ok && b.Deflate {
		return c.encodeDeflate(b, b.Header)
	}
	b, err := c.enc.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", m.Type(), err)
	}
	if len(b) > c.limits.MaxMessageSize {
		return nil, fmt.Errorf("encode %s: %w: %d bytes > %d", m.Type(), ErrTooLarge, len(b), c.limits.MaxMessageSize)
	}
	return b, nil
}

// Marshal encodes any value (a payload such as a DownItem body) with the
// deterministic options.
func (c *Codec) Marshal(v any) ([]byte, error) { return c.enc.Marshal(v) }

// Unmarshal decodes a payload (such as a DownItem body) with the limits.
func (c *Codec) Unmarshal(b []byte, v any) error {
	if len(b) > c.limits.MaxMessageSize {
		return fmt.Errorf("%w: %d bytes > %d", ErrTooLarge, len(b), c.limits.MaxMessageSize)
	}
	if err := c.dec.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// Decode checks size, well-formedness, version and type, then decodes the
// message into its type. Unknown keys are ignored.
func (c *Codec) Decode(b []byte) (Message, error) {
	if len(b) > c.limits.MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes > %d", ErrTooLarge, len(b), c.limits.MaxMessageSize)
	}
	var h Header
	if err := c.dec.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if h.V != Version {
		return nil, fmt.Errorf("%w: got %d, this build speaks %d; upgrade the older side", ErrVersion, h.V, Version)
	}
	var m Message
	switch h.T {
	case TypeHello:
		m = &Hello{}
	case TypeOps:
		ob, err := c.decodeOps(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, h.T, err)
		}
		if err := checkClocks(ob); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, h.T, err)
		}
		return ob, nil
	case TypeAck:
		m = &Ack{}
	case TypeDown:
		m = &DownBatch{}
	case TypeDownAck:
		m = &DownAck{}
	case TypeStatus:
		m = &Status{}
	case TypeOpsDeflate:
		return c.decodeDeflate(b)
	default:
		return nil, fmt.Errorf("%w: %d", ErrUnknownType, h.T)
	}
	if err := c.dec.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, h.T, err)
	}
	if err := checkClocks(m); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, h.T, err)
	}
	return m, nil
}

// checkClocks range-checks every hlc of a decoded message (SPEC.md §4).
func checkClocks(m Message) error {
	var h HLC
	switch m := m.(type) {
	case *Hello:
		h = m.HLC
	case *Ack:
		h = m.HLC
	case *DownBatch:
		h = m.HLC
	case *OpBatch:
		for i := range m.Ops {
			if err := m.Ops[i].HLC.Check(); err != nil {
				return fmt.Errorf("op %d: %w", m.Ops[i].Seq, err)
			}
		}
		h = m.HLC
	}
	return h.Check()
}

// Encode encodes with the default codec.
func Encode(m Message) ([]byte, error) { return std.Encode(m) }

// Decode decodes with the default codec and DefaultLimits.
func Decode(b []byte) (Message, error) { return std.Decode(b) }

// Marshal encodes a payload with the default codec.
func Marshal(v any) ([]byte, error) { return std.Marshal(v) }

// Unmarshal decodes a payload with the default codec.
func Unmarshal(b []byte, v any) error { return std.Unmarshal(b, v) }

func header(m Message) *Header {
	switch x := m.(type) {
	case *Hello:
		return &x.Header
	case *OpBatch:
		return &x.Header
	case *RawOpBatch:
		return &x.Header
	case *Ack:
		return &x.Header
	case *DownBatch:
		return &x.Header
	case *DownAck:
		return &x.Header
	case *Status:
		return &x.Header
	}
	panic(fmt.Sprintf("protocol: unknown message %T", m))
}
