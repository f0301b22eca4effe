package protocol

import (
	"bytes"
	"slices"
)

// Clone returns a deep copy of o: changing the copy, its count lines, raw
// strings, EPCs and refs included, leaves o as it was. Nil and empty
// slices stay as they were.
func (o *Op) Clone() Op {
	c := *o
	c.Lines = slices.Clone(o.Lines)
	c.Raw = slices.Clone(o.Raw)
	if o.EPCs != nil {
		c.EPCs = make([][]byte, len(o.EPCs))
		for i, e := range o.EPCs {
			c.EPCs[i] = bytes.Clone(e)
		}
	}
	if o.Refs != nil {
		r := *o.Refs
		c.Refs = &r
	}
	return c
}

// Equal reports whether o and p are the same op, field for field, as
// reflect.DeepEqual compares them: a nil slice is not an empty one, refs
// compare by what they point to. An op equal to another has the same
// encoding.
func (o *Op) Equal(p *Op) bool {
	return o.Seq == p.Seq && o.HLC == p.HLC && o.Kind == p.Kind &&
		o.Location == p.Location && o.To == p.To && o.SKU == p.SKU && o.Lot == p.Lot &&
		o.Qty == p.Qty && o.Scope == p.Scope && sameSlice(o.Lines, p.Lines, func(a, b CountLine) bool { return a == b }) &&
		o.Device == p.Device && o.Operator == p.Operator &&
		sameSlice(o.Raw, p.Raw, func(a, b string) bool { return a == b }) &&
		sameRefs(o.Refs, p.Refs) && o.Reason == p.Reason && o.Expiry == p.Expiry &&
		sameSlice(o.EPCs, p.EPCs, func(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }) &&
		o.GW == p.GW && o.Flags == p.Flags && o.Owner == p.Owner &&
		o.Status == p.Status && o.ToStatus == p.ToStatus && o.SSCC == p.SSCC
}

// sameSlice reports whether a and b are both nil or both not, with equal
// elements.
func sameSlice[T any](a, b []T, eq func(T, T) bool) bool {
	return (a == nil) == (b == nil) && slices.EqualFunc(a, b, eq)
}

func sameRefs(a, b *Refs) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
