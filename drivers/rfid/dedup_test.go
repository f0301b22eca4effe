package rfid

import (
	"bytes"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

var t0 = time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)

type collected struct{ reads []TagRead }

func (c *collected) emit(r TagRead) {
	r.EPC = bytes.Clone(r.EPC)
	c.reads = append(c.reads, r)
}

func TestDedup(t *testing.T) {
	var c collected
	d := NewDedup(time.Second, c.emit)
	a, b := []byte("EPC-A-000001"), []byte("EPC-B-000002")
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	d.Add(TagRead{EPC: a, Antenna: 1, RSSI: -60, At: at(0), Count: 1})
	d.Add(TagRead{EPC: a, Antenna: 1, RSSI: -52, At: at(100), Count: 1})
	d.Add(TagRead{EPC: a, Antenna: 2, RSSI: -70, At: at(150)}) // other antenna: its own window; Count 0 counts 1
	d.Add(TagRead{EPC: b, Antenna: 1, RSSI: -65, At: at(200), Count: 3})
	d.Add(TagRead{EPC: a, Antenna: 1, RSSI: -58, At: at(999), Count: 1})
	assert.Empty(t, c.reads)
	assert.Equal(t, 3, d.Open())

	// A read at 1000 ms closes a/1's window first, then opens a new one.
	d.Add(TagRead{EPC: a, Antenna: 1, RSSI: -61, At: at(1000), Count: 1})
	require.Len(t, c.reads, 1)
	assert.Equal(t, TagRead{EPC: a, Antenna: 1, RSSI: -52, At: at(0), Count: 3}, c.reads[0])

	d.Flush(at(1200))
	require.Len(t, c.reads, 3)
	assert.Equal(t, TagRead{EPC: a, Antenna: 2, RSSI: -70, At: at(150), Count: 1}, c.reads[1])
	assert.Equal(t, TagRead{EPC: b, Antenna: 1, RSSI: -65, At: at(200), Count: 3}, c.reads[2])

	d.FlushAll()
	require.Len(t, c.reads, 4)
	assert.Equal(t, TagRead{EPC: a, Antenna: 1, RSSI: -61, At: at(1000), Count: 1}, c.reads[3])
	assert.Zero(t, d.Open())

	d.Add(TagRead{At: at(2000)})
	d.Add(TagRead{EPC: make([]byte, MaxEPCLen+1), At: at(2000)})
	assert.Equal(t, int64(2), d.Dropped())
}

// The caller's EPC buffer may be reused after Add.
func TestDedupCopiesEPC(t *testing.T) {
	var c collected
	d := NewDedup(time.Second, c.emit)
	buf := []byte("AAAA")
	d.Add(TagRead{EPC: buf, Antenna: 1, At: t0})
	copy(buf, "BBBB")
	d.Add(TagRead{EPC: buf, Antenna: 1, At: t0})
	d.FlushAll()
	require.Len(t, c.reads, 2)
	assert.Equal(t, "AAAA", string(c.reads[0].EPC))
	assert.Equal(t, "BBBB", string(c.reads[1].EPC))
}

// TestDedupModel compares Dedup with a map-based model on random read
// sequences, across table growth and deletion.
func TestDedupModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		window := time.Duration(rapid.IntRange(1, 50).Draw(t, "window")) * time.Millisecond
		tags := rapid.IntRange(1, 300).Draw(t, "tags")
		steps := rapid.IntRange(1, 2000).Draw(t, "steps")
		var got collected
		d := NewDedup(window, got.emit)

		type key struct {
			epc string
			ant int
		}
		type open struct {
			r     TagRead
			order int
		}
		model := map[key]*open{}
		var want []TagRead
		closeUpTo := func(now time.Time) {
			var due []*open
			for k, o := range model {
				if now.Sub(o.r.At) >= window {
					due = append(due, o)
					delete(model, k)
				}
			}
			sort.Slice(due, func(i, j int) bool { return due[i].order < due[j].order })
			for _, o := range due {
				want = append(want, o.r)
			}
		}
		now := t0
		for i := range steps {
			now = now.Add(time.Duration(rapid.IntRange(0, 3).Draw(t, "dt")) * time.Millisecond)
			epc := []byte(fmt.Sprintf("E%011d", rapid.IntRange(0, tags-1).Draw(t, "tag")))
			r := TagRead{EPC: epc, Antenna: rapid.IntRange(1, 4).Draw(t, "ant"),
				RSSI: rapid.IntRange(-90, -30).Draw(t, "rssi"), At: now, Count: 1}
			closeUpTo(now)
			d.Add(r)
			k := key{string(epc), r.Antenna}
			if o, ok := model[k]; ok {
				o.r.Count++
				o.r.RSSI = max(o.r.RSSI, r.RSSI)
			} else {
				model[k] = &open{r: r, order: i}
			}
		}
		d.FlushAll()
		closeUpTo(now.Add(window))
		if len(got.reads) != len(want) {
			t.Fatalf("emitted %d reads, model %d", len(got.reads), len(want))
		}
		for i := range want {
			g, w := got.reads[i], want[i]
			if string(g.EPC) != string(w.EPC) || g.Antenna != w.Antenna || g.Count != w.Count ||
				g.RSSI != w.RSSI || !g.At.Equal(w.At) {
				t.Fatalf("read %d: got %+v, model %+v", i, g, w)
			}
		}
	})
}

func TestDedupDoesNotAllocate(t *testing.T) {
	d := NewDedup(50*time.Millisecond, func(TagRead) {})
	reads := syntheticReads(2000, 500, 4)
	for _, r := range reads { // warm up: grow the tables
		d.Add(r)
	}
	i := 0
	allocs := testing.AllocsPerRun(10_000, func() {
		r := reads[i%len(reads)]
		r.At = r.At.Add(time.Duration(i/len(reads)+1) * time.Second / 10)
		d.Add(r)
		i++
	})
	assert.Zero(t, allocs)
}

// syntheticReads returns n reads of tags EPCs over antennas, 10 µs apart.
func syntheticReads(n, tags, antennas int) []TagRead {
	epcs := make([][]byte, tags)
	for i := range epcs {
		epcs[i] = []byte(fmt.Sprintf("3074257BF7%014d", i))[:12]
		epcs[i][11] = byte(i)
		epcs[i][10] = byte(i >> 8)
	}
	reads := make([]TagRead, n)
	for i := range reads {
		reads[i] = TagRead{EPC: epcs[(i*7919)%tags], Antenna: 1 + i%antennas, RSSI: -40 - i%50,
			At: t0.Add(time.Duration(i) * 10 * time.Microsecond), Count: 1}
	}
	return reads
}
