package protocol

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"sync"
)

// An ops-deflate message (SPEC.md §5) is an ops message compressed with
// DEFLATE (RFC 1951, raw: no zlib or gzip header), wrapped in a small map
// that names its gateway:
//
//	{0: 1, 1: 7, 2: wh, 3: gw, 4: DEFLATE(encoding of the ops message)}
//
// A server announces that it accepts it with FeatureOpsDeflate in its acks;
// an agent sends it only then, so an older server never receives one. The
// receiver inflates the data with a hard limit (Limits.MaxInflatedSize),
// then decodes the ops message it holds with every rule of a plain one:
// what the rest of the server sees is the same OpBatch, op for op.

// DeflateLevel is the compress/flate level Encode uses for ops-deflate.
// The compressed bytes are not canonical (another compressor or level
// gives other bytes for the same batch); the inflated message is.
const DeflateLevel = flate.BestSpeed

// opsDeflate is the ops-deflate envelope.
type opsDeflate struct {
	Header
	Data []byte `cbor:"4,keyasint"`
}

// Type implements Message.
func (*opsDeflate) Type() MsgType { return TypeOpsDeflate }

var (
	deflaters = sync.Pool{New: func() any {
		w, err := flate.NewWriter(nil, DeflateLevel)
		if err != nil {
			panic(err) // only for an invalid level
		}
		return w
	}}
	inflaters = sync.Pool{New: func() any { return flate.NewReader(bytes.NewReader(nil)) }}
)

// encodeDeflate encodes b (an *OpBatch or *RawOpBatch, whose header h is)
// as an ops message and wraps its DEFLATE compression in an ops-deflate
// message. The caller has stamped b's header.
func (c *Codec) encodeDeflate(b Message, h Header) ([]byte, error) {
	inner, err := c.enc.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", TypeOpsDeflate, err)
	}
	if len(inner) > c.limits.MaxInflatedSize {
		return nil, fmt.Errorf("encode %s: %w: the batch is %d bytes before compression, at most %d; split it", TypeOpsDeflate, ErrTooLarge, len(inner), c.limits.MaxInflatedSize)
	}
	var z bytes.Buffer
	w := deflaters.Get().(*flate.Writer)
	defer deflaters.Put(w)
	w.Reset(&z)
	if _, err := w.Write(inner); err != nil {
		return nil, fmt.Errorf("encode %s: %w", TypeOpsDeflate, err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encode %s: %w", TypeOpsDeflate, err)
	}
	env := &opsDeflate{Header: Header{V: Version, T: TypeOpsDeflate, WH: h.WH, GW: h.GW}, Data: z.Bytes()}
	out, err := c.enc.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", TypeOpsDeflate, err)
	}
	if len(out) > c.limits.MaxMessageSize {
		return nil, fmt.Errorf("encode %s: %w: %d bytes > %d", TypeOpsDeflate, ErrTooLarge, len(out), c.limits.MaxMessageSize)
	}
	return out, nil
}

// decodeDeflate decodes an ops-deflate message (its header already checked)
// into the OpBatch it carries, with Deflate set.
func (c *Codec) decodeDeflate(b []byte) (Message, error) {
	var env opsDeflate
	if err := c.dec.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, TypeOpsDeflate, err)
	}
	if len(env.Data) == 0 {
		return nil, fmt.Errorf("%w: %s: no compressed data (key 4)", ErrMalformed, TypeOpsDeflate)
	}
	raw, err := c.inflate(env.Data)
	if err != nil {
		return nil, err
	}
	var h Header
	if err := c.dec.Unmarshal(raw, &h); err != nil {
		return nil, fmt.Errorf("%w: %s: inflated data: %v", ErrMalformed, TypeOpsDeflate, err)
	}
	if h.V != Version {
		return nil, fmt.Errorf("%w: %s carries version %d, this build speaks %d; upgrade the older side", ErrVersion, TypeOpsDeflate, h.V, Version)
	}
	if h.T != TypeOps {
		// Nothing but a plain ops message: no nesting, no other types.
		return nil, fmt.Errorf("%w: %s must carry an ops message (type %d), not type %d", ErrMalformed, TypeOpsDeflate, TypeOps, h.T)
	}
	ob, err := c.decodeOps(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: inflated %s: %v", ErrMalformed, TypeOpsDeflate, TypeOps, err)
	}
	if ob.WH != env.WH || ob.GW != env.GW {
		return nil, fmt.Errorf("%w: %s of %s/%s carries a batch of %s/%s", ErrMalformed, TypeOpsDeflate, env.WH, env.GW, ob.WH, ob.GW)
	}
	if err := checkClocks(ob); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, TypeOpsDeflate, err)
	}
	ob.Deflate = true
	return ob, nil
}

// inflate decompresses a raw DEFLATE stream, refusing to produce more than
// MaxInflatedSize bytes (it stops there: a bomb costs at most that much
// work and memory) and refusing bytes after the stream's final block.
func (c *Codec) inflate(data []byte) ([]byte, error) {
	limit := c.limits.MaxInflatedSize
	src := bytes.NewReader(data) // an io.ByteReader: flate reads no further than the final block
	fr := inflaters.Get().(io.ReadCloser)
	defer inflaters.Put(fr)
	if err := fr.(flate.Resetter).Reset(src, nil); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, TypeOpsDeflate, err)
	}
	var out bytes.Buffer
	out.Grow(min(limit+1, 8*len(data)))
	n, err := out.ReadFrom(io.LimitReader(fr, int64(limit)+1))
	switch {
	case n > int64(limit):
		return nil, fmt.Errorf("%w: %w: more than %d bytes from %d compressed; refused (decompression bomb, or a batch too large: split it)", ErrTooLarge, ErrInflatedTooLarge, limit, len(data))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("%w: %s: truncated DEFLATE data", ErrMalformed, TypeOpsDeflate)
	case err != nil:
		return nil, fmt.Errorf("%w: %s: DEFLATE data: %v", ErrMalformed, TypeOpsDeflate, err)
	case src.Len() != 0:
		return nil, fmt.Errorf("%w: %s: %d bytes after the end of the DEFLATE data", ErrMalformed, TypeOpsDeflate, src.Len())
	}
	return out.Bytes(), nil
}
