package protocol

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// fill gives every field reachable from v a value that is not its zero:
// slices one element, pointers a target.
func fill(t *testing.T, v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("a")
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Int, reflect.Int64:
		v.SetInt(1)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(t, v.Index(0))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem())
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			fill(t, v.Field(i))
		}
	default:
		t.Fatalf("an Op field of kind %s: teach Clone, Equal and this test about it", v.Kind())
	}
}

// change is one way to change an op: its path names it.
type change struct {
	path string
	do   func(*Op)
}

// changes lists, for every value reachable from an Op (a full one, as fill
// makes it), the changes that make it differ: each leaf changed in place,
// each slice made nil and made empty, each pointer made nil.
func changes(t *testing.T) []change {
	var out []change
	var walk func(path string, get func(*Op) reflect.Value, typ reflect.Type)
	walk = func(path string, get func(*Op) reflect.Value, typ reflect.Type) {
		switch typ.Kind() {
		case reflect.String:
			out = append(out, change{path, func(o *Op) { v := get(o); v.SetString(v.String() + "x") }})
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			out = append(out, change{path, func(o *Op) { v := get(o); v.SetUint(v.Uint() + 1) }})
		case reflect.Int, reflect.Int64:
			out = append(out, change{path, func(o *Op) { v := get(o); v.SetInt(v.Int() + 1) }})
		case reflect.Bool:
			out = append(out, change{path, func(o *Op) { v := get(o); v.SetBool(!v.Bool()) }})
		case reflect.Slice:
			out = append(out,
				change{path + "=nil", func(o *Op) { v := get(o); v.Set(reflect.Zero(v.Type())) }},
				change{path + "=[]", func(o *Op) { v := get(o); v.Set(reflect.MakeSlice(v.Type(), 0, 0)) }})
			walk(path+"[0]", func(o *Op) reflect.Value { return get(o).Index(0) }, typ.Elem())
		case reflect.Pointer:
			out = append(out, change{path + "=nil", func(o *Op) { v := get(o); v.Set(reflect.Zero(v.Type())) }})
			walk(path, func(o *Op) reflect.Value { return get(o).Elem() }, typ.Elem())
		case reflect.Struct:
			for i := 0; i < typ.NumField(); i++ {
				walk(path+"."+typ.Field(i).Name, func(o *Op) reflect.Value { return get(o).Field(i) }, typ.Field(i).Type)
			}
		default:
			t.Fatalf("%s is of kind %s: teach Clone, Equal and this test about it", path, typ.Kind())
		}
	}
	walk("op", func(o *Op) reflect.Value { return reflect.ValueOf(o).Elem() }, reflect.TypeFor[Op]())
	return out
}

// TestOpEqualAndCloneSeeEveryField: for every field of Op (and of what it
// points to), a change makes the op differ for Equal as for
// reflect.DeepEqual, and a change made to a Clone leaves the original as it
// was. A field added to Op that Equal or Clone misses fails here.
func TestOpEqualAndCloneSeeEveryField(t *testing.T) {
	var full Op
	fill(t, reflect.ValueOf(&full).Elem())
	cs := changes(t)
	require.Greater(t, len(cs), reflect.TypeFor[Op]().NumField(), "every field has at least one change")
	for _, c := range cs {
		t.Run(c.path, func(t *testing.T) {
			a, keep := full.Clone(), full.Clone()
			require.True(t, a.Equal(&full))
			require.True(t, reflect.DeepEqual(a, full))
			b := a.Clone()
			c.do(&b)
			require.False(t, reflect.DeepEqual(a, b), "the change changes the op")
			require.False(t, a.Equal(&b), "Equal sees the change")
			require.False(t, b.Equal(&a), "Equal sees the change")
			require.Equal(t, keep, a, "changing a clone leaves the original")
		})
	}
}

// TestOpEqualIsDeepEqual: for random ops and random changes of them,
// Equal is reflect.DeepEqual, and a clone is equal to its op.
func TestOpEqualIsDeepEqual(t *testing.T) {
	cs := changes(t)
	rapid.Check(t, func(t *rapid.T) {
		a := genOp(t, rapid.Uint64().Draw(t, "seq"))
		b := a.Clone()
		require.True(t, a.Equal(&b))
		for i, n := 0, rapid.IntRange(0, 2).Draw(t, "changes"); i < n; i++ {
			c := rapid.SampledFrom(cs).Draw(t, "change")
			func() {
				defer func() { _ = recover() }() // a change of a slice element the random op lacks
				c.do(&b)
			}()
		}
		require.Equal(t, reflect.DeepEqual(a, b), a.Equal(&b), fmt.Sprintf("%+v\n%+v", a, b))
		require.Equal(t, reflect.DeepEqual(a, b), b.Equal(&a))
	})
}
