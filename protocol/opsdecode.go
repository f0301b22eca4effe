package protocol

import "fmt"

// opsWire is an ops message with its ops left encoded: decoding it checks
// the whole message (size limits, nesting, well-formedness) and finds each
// op's data item without decoding the op.
type opsWire struct {
	Header
	First uint64   `cbor:"4,keyasint"`
	Last  uint64   `cbor:"5,keyasint"`
	Ops   []opItem `cbor:"6,keyasint"`
	HLC   HLC      `cbor:"7,keyasint"`
}

// opItem is one op's data item: a slice of the bytes being decoded, valid
// only while they are.
type opItem []byte

// UnmarshalCBOR implements cbor.Unmarshaler: it keeps the item's bytes,
// which the decoder has checked to be one well-formed data item.
func (o *opItem) UnmarshalCBOR(b []byte) error {
	*o = b
	return nil
}

// decodeOps decodes the bytes of an ops message (its header checked) into
// an OpBatch whose Received holds each op's data item as it is in b,
// copied into one buffer of the batch's own (b may be a buffer its caller
// reuses). The message is walked once for its layout, then each op is
// decoded from its own item: no op is decoded twice.
func (c *Codec) decodeOps(b []byte) (*OpBatch, error) {
	var w opsWire
	if err := c.dec.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	ob := &OpBatch{Header: w.Header, First: w.First, Last: w.Last, HLC: w.HLC}
	if w.Ops == nil {
		return ob, nil
	}
	n := 0
	for _, it := range w.Ops {
		n += len(it)
	}
	buf := make([]byte, 0, n)
	ob.Ops = make([]Op, len(w.Ops))
	ob.Received = make([]RawOp, len(w.Ops))
	for i, it := range w.Ops {
		start := len(buf)
		buf = append(buf, it...)
		ob.Received[i] = RawOp(buf[start:len(buf):len(buf)])
		if err := c.dec.Unmarshal(it, &ob.Ops[i]); err != nil {
			return nil, fmt.Errorf("op %d of the batch: %v", i, err)
		}
	}
	return ob, nil
}
