package protocol

import (
	"errors"
	"fmt"
)

// decodeOps decodes the bytes of an ops message (its header checked) into
// an OpBatch whose Received holds each op's data item as it is in b,
// copied into one buffer of the batch's own (b may be a buffer its caller
// reuses). The message is decoded once, as a whole; the ops' items are
// then found by walking the heads of the decoded bytes (opItems), which
// decodes nothing.
func (c *Codec) decodeOps(b []byte) (*OpBatch, error) {
	ob := &OpBatch{}
	if err := c.dec.Unmarshal(b, ob); err != nil {
		return nil, err
	}
	if ob.Ops == nil {
		return ob, nil
	}
	items, n, err := opItems(b)
	if err == nil && len(items) != len(ob.Ops) {
		err = fmt.Errorf("%d ops decoded, %d found", len(ob.Ops), len(items))
	}
	if err != nil {
		return nil, fmt.Errorf("ops array: %w", err)
	}
	buf := make([]byte, 0, n)
	ob.Received = make([]RawOp, len(items))
	for i, it := range items {
		start := len(buf)
		buf = append(buf, it...)
		ob.Received[i] = RawOp(buf[start:len(buf):len(buf)])
	}
	return ob, nil
}

var errItems = errors.New("not the data items the decoder read")

// opItems returns the data items of the array under key 6 (an unsigned
// integer key, as the decoder matches the Ops field) of the map b, and
// their total length. b is a message the decoder accepted: one
// well-formed map of definite lengths, without tags, in which key 6
// appears at most once; the bounds are checked all the same.
func opItems(b []byte) ([][]byte, int, error) {
	major, pairs, off, ok := cborHead(b, 0)
	if !ok || major != 5 {
		return nil, 0, errItems
	}
	for ; pairs > 0; pairs-- {
		major, key, next, ok := cborHead(b, off)
		if !ok {
			return nil, 0, errItems
		}
		if major != 0 || key != 6 {
			if off, ok = skipItems(b, off, 2); !ok { // the key and its value
				return nil, 0, errItems
			}
			continue
		}
		major, n, next, ok := cborHead(b, next)
		if !ok || major != 4 || n > uint64(len(b)-next) {
			return nil, 0, errItems
		}
		items := make([][]byte, 0, n)
		for off = next; n > 0; n-- {
			end, ok := skipItems(b, off, 1)
			if !ok {
				return nil, 0, errItems
			}
			items = append(items, b[off:end])
			off = end
		}
		return items, off - next, nil
	}
	return nil, 0, nil
}

// skipItems returns the offset just past the n data items that start at
// off in b, and false if b ends first (or holds what a decoder of these
// options refuses: an indefinite length or a reserved head).
func skipItems(b []byte, off int, n uint64) (int, bool) {
	for ; n > 0; n-- {
		major, v, next, ok := cborHead(b, off)
		if !ok {
			return 0, false
		}
		off = next
		switch major {
		case 2, 3: // byte and text strings: v bytes follow
			if v > uint64(len(b)-off) {
				return 0, false
			}
			off += int(v)
		case 4: // array: v items follow
			if v > uint64(len(b)-off) {
				return 0, false
			}
			n += v
		case 5: // map: v pairs follow
			if v > uint64(len(b)-off)/2 {
				return 0, false
			}
			n += 2 * v
		case 6: // tag: one item follows
			n++
		}
	}
	return off, true
}

// cborHead reads the head of the data item at off: its major type, its
// argument (for major type 7, the simple value or float bits: nothing
// follows), and the offset after the head.
func cborHead(b []byte, off int) (major byte, v uint64, next int, ok bool) {
	if off >= len(b) {
		return 0, 0, 0, false
	}
	ib := b[off]
	major, ai := ib>>5, ib&0x1f
	off++
	var size int
	switch {
	case ai < 24:
		return major, uint64(ai), off, true
	case ai == 24:
		size = 1
	case ai == 25:
		size = 2
	case ai == 26:
		size = 4
	case ai == 27:
		size = 8
	default: // reserved, or an indefinite length
		return 0, 0, 0, false
	}
	if size > len(b)-off {
		return 0, 0, 0, false
	}
	for _, c := range b[off : off+size] {
		v = v<<8 | uint64(c)
	}
	return major, v, off + size, true
}
