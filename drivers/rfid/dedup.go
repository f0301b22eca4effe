package rfid

import (
	"hash/maphash"
	"time"
)

// MaxEPCLen is the longest EPC Dedup keeps, in bytes (Gen2 EPCs are at most
// 496 bits). Longer reads are counted in Dropped and not emitted.
const MaxEPCLen = 62

// Dedup merges repeated reads: every read of the same EPC on the same
// antenna within Window of the first one becomes one TagRead, emitted when
// the window closes, with the highest RSSI, the sum of the counts and the
// time of the first read. Windows close as reads with later timestamps
// arrive (Add) or when Flush is called; a reader driver calls Flush on a
// timer so quiet periods still emit.
//
// Dedup is built for high read rates on one goroutine: an open-addressing
// table keyed by (EPC, antenna), entries holding their EPC inline, and a
// FIFO of open windows (windows are equal, so they close in the order they
// opened). Once its tables have grown to the number of tags seen within a
// window, Add does not allocate. It is not safe for concurrent use.
type Dedup struct {
	window  time.Duration
	emit    func(TagRead)
	seed    maphash.Seed
	entries []dedupEntry
	free    []int32 // indices of unused entries
	slots   []int32 // hash table: entry index+1, 0 = empty
	fifo    []int32 // ring of open entries, oldest first
	head    int
	n       int // open entries
	dropped int64
}

type dedupEntry struct {
	hash    uint64
	first   time.Time // the first read
	count   int
	rssi    int
	antenna int
	epcLen  uint8
	epc     [MaxEPCLen]byte
}

// NewDedup returns a Dedup that calls emit for each merged read. The
// TagRead's EPC passed to emit is only valid during the call.
func NewDedup(window time.Duration, emit func(TagRead)) *Dedup {
	d := &Dedup{window: window, emit: emit, seed: maphash.MakeSeed()}
	d.grow(64)
	return d
}

// Dropped returns how many reads were ignored because their EPC was
// longer than MaxEPCLen or empty.
func (d *Dedup) Dropped() int64 { return d.dropped }

// Open returns how many windows are open (unique EPC/antenna pairs not yet
// emitted).
func (d *Dedup) Open() int { return d.n }

// Add merges one read. r.EPC is copied; r.Count < 1 counts as 1. Windows
// that closed before r.At are emitted first.
func (d *Dedup) Add(r TagRead) {
	if len(r.EPC) == 0 || len(r.EPC) > MaxEPCLen {
		d.dropped++
		return
	}
	d.expire(r.At)
	count := max(r.Count, 1)
	h := maphash.Bytes(d.seed, r.EPC) ^ uint64(r.Antenna)*0x9E3779B97F4A7C15
	mask := len(d.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		s := d.slots[i]
		if s == 0 {
			break
		}
		e := &d.entries[s-1]
		if e.hash == h && e.antenna == r.Antenna && string(e.epc[:e.epcLen]) == string(r.EPC) {
			e.count += count
			e.rssi = max(e.rssi, r.RSSI)
			return
		}
	}
	if (d.n+1)*2 > len(d.slots) {
		d.grow(len(d.slots) * 2)
	}
	idx := d.free[len(d.free)-1]
	d.free = d.free[:len(d.free)-1]
	e := &d.entries[idx]
	e.hash, e.first, e.count, e.rssi, e.antenna = h, r.At, count, r.RSSI, r.Antenna
	e.epcLen = uint8(copy(e.epc[:], r.EPC))
	d.insertSlot(idx)
	d.fifo[(d.head+d.n)%len(d.fifo)] = idx
	d.n++
}

// Flush emits every window that closed at or before now.
func (d *Dedup) Flush(now time.Time) { d.expire(now) }

// FlushAll emits every open window, closed or not.
func (d *Dedup) FlushAll() {
	for d.n > 0 {
		d.pop()
	}
}

func (d *Dedup) expire(now time.Time) {
	for d.n > 0 && now.Sub(d.entries[d.fifo[d.head]].first) >= d.window {
		d.pop()
	}
}

// pop emits and removes the oldest open entry.
func (d *Dedup) pop() {
	idx := d.fifo[d.head]
	d.head = (d.head + 1) % len(d.fifo)
	d.n--
	e := &d.entries[idx]
	d.deleteSlot(idx)
	d.free = append(d.free, idx)
	d.emit(TagRead{
		EPC:     e.epc[:e.epcLen],
		Antenna: e.antenna,
		RSSI:    e.rssi,
		At:      e.first,
		Count:   e.count,
	})
}

func (d *Dedup) insertSlot(idx int32) {
	mask := len(d.slots) - 1
	i := int(d.entries[idx].hash) & mask
	for d.slots[i] != 0 {
		i = (i + 1) & mask
	}
	d.slots[i] = idx + 1
}

// deleteSlot removes idx with backward-shift deletion, which keeps linear
// probing chains intact without tombstones.
func (d *Dedup) deleteSlot(idx int32) {
	mask := len(d.slots) - 1
	i := int(d.entries[idx].hash) & mask
	for d.slots[i] != idx+1 {
		i = (i + 1) & mask
	}
	for {
		d.slots[i] = 0
		j := i
		for {
			j = (j + 1) & mask
			s := d.slots[j]
			if s == 0 {
				return
			}
			home := int(d.entries[s-1].hash) & mask
			// Move s back to i when i lies cyclically in [home, j).
			if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
				d.slots[i] = s
				i = j
				break
			}
		}
	}
}

// grow resizes the table to size slots (a power of two) and the entry
// pool to size/2 entries, keeping open windows and their order.
func (d *Dedup) grow(size int) {
	capEntries := size / 2
	if len(d.entries) < capEntries {
		old := len(d.entries)
		d.entries = append(d.entries, make([]dedupEntry, capEntries-old)...)
		for i := capEntries - 1; i >= old; i-- {
			d.free = append(d.free, int32(i))
		}
		fifo := make([]int32, capEntries)
		for k := 0; k < d.n; k++ {
			fifo[k] = d.fifo[(d.head+k)%len(d.fifo)]
		}
		d.fifo, d.head = fifo, 0
	}
	d.slots = make([]int32, size)
	for k := 0; k < d.n; k++ {
		d.insertSlot(d.fifo[(d.head+k)%len(d.fifo)])
	}
}
