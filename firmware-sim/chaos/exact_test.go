package chaos

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeServer builds what a server shows after applying ops: each key's op
// log in seq order with the running on-hand, and the ledger. times[i] is
// how often ops[i] was applied (0: dropped); the op log keeps one entry
// per (gateway, seq), the ledger adds every application.
func fakeServer(ops []opRec, times []int) (map[stockKey][]logEntry, map[stockKey]int64) {
	hist := map[stockKey][]logEntry{}
	ledger := map[stockKey]int64{}
	for i, o := range ops {
		if _, ok := hist[o.key]; !ok {
			hist[o.key] = []logEntry{}
		}
		n := 1
		if times != nil {
			n = times[i]
		}
		if n == 0 {
			continue
		}
		es := hist[o.key]
		var on int64
		if len(es) > 0 {
			on = es[len(es)-1].OnHand
		}
		if o.count {
			on = o.qty
		} else {
			on += o.qty
		}
		hist[o.key] = append(es, logEntry{Gateway: o.gw, Seq: o.seq, Qty: o.qty, Count: o.count, OnHand: on})
		if o.count {
			ledger[o.key] = o.qty
		} else {
			ledger[o.key] += o.qty * int64(n)
		}
	}
	return hist, ledger
}

// soakOps is a small run: a stocked pick location with five confirmed
// picks and one unheard that was committed, receives, a move and a count.
func soakOps() (conf, unk []opRec, applied []opRec) {
	p := stockKey{"wh1", "P-g01-s0", "P-g01-s0"}
	r := stockKey{"wh1", "R-g01-s0", "R-g01-s0"}
	m1, m2 := stockKey{"wh1", "M1-g01-s0", "M-g01-s0"}, stockKey{"wh1", "M2-g01-s0", "M-g01-s0"}
	c := stockKey{"wh1", "C-g01-s0", "C-g01-s0"}
	seq := uint64(0)
	add := func(st status, recs ...opRec) {
		seq++
		for _, o := range recs {
			o.gw, o.st = "g01", st
			if st == confirmed {
				o.seq = seq
				conf = append(conf, o)
			} else {
				unk = append(unk, o)
			}
			o.seq = seq
			applied = append(applied, o)
		}
	}
	add(confirmed, opRec{key: p, qty: prestock})
	add(confirmed, opRec{key: m1, qty: prestock})
	for i := 0; i < 5; i++ {
		add(confirmed, opRec{key: p, qty: -1})
		add(confirmed, opRec{key: r, qty: +1})
	}
	add(unknown, opRec{key: p, qty: -1}) // unheard, but committed and applied
	add(confirmed, opRec{key: m1, qty: -1, mirror: true}, opRec{key: m2, qty: +1})
	add(confirmed, opRec{key: c, qty: 4, count: true})
	return conf, unk, applied
}

func index(applied []opRec, key string, qty int64, nth int) int {
	for i, o := range applied {
		if o.key.Loc == key && o.qty == qty {
			if nth == 0 {
				return i
			}
			nth--
		}
	}
	panic("no such op")
}

func TestExactCheck(t *testing.T) {
	conf, unk, applied := soakOps()
	ones := func() []int {
		ts := make([]int, len(applied))
		for i := range ts {
			ts[i] = 1
		}
		return ts
	}
	pick := func(nth int) int { return index(applied, "P-g01-s0", -1, nth) }

	for _, tc := range []struct {
		name      string
		times     map[int]int // op index → applications (default 1)
		lost, dup int64
		names     string // a problem names this op
	}{
		{"every op once", nil, 0, 0, ""},
		{"the unheard op not applied", map[int]int{pick(5): 0}, 0, 0, ""},
		{"one op dropped", map[int]int{pick(2): 0}, 1, 0, "g01 seq 7"},
		{"one op applied twice", map[int]int{pick(2): 2}, 0, 1, "P-g01-s0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := ones()
			for i, n := range tc.times {
				ts[i] = n
			}
			hist, ledger := fakeServer(applied, ts)
			lost, dup, problems := exactCheck(conf, unk, hist, ledger)
			require.Equal(t, tc.lost, lost, "lost")
			require.Equal(t, tc.dup, dup, "duplicated")
			if tc.names == "" {
				require.Empty(t, problems)
			} else {
				require.Len(t, problems, 1)
				require.Contains(t, problems[0], tc.names)
			}
		})
	}
	t.Run("a drop and a duplicate on the same key", func(t *testing.T) {
		ts := ones()
		ts[pick(1)], ts[pick(3)] = 0, 2
		hist, ledger := fakeServer(applied, ts)
		lost, dup, _ := exactCheck(conf, unk, hist, ledger)
		require.Equal(t, int64(1), lost)
		require.Equal(t, int64(1), dup)
		// The per-key judge alone sees nothing here: the on-hand is right.
		tr := newTracker()
		for _, o := range append(append([]opRec(nil), conf...), unk...) {
			tr.record(o.st, o)
		}
		k := applied[pick(0)].key
		tr.keys[k].role, tr.keys[k].unit, tr.keys[k].prestock = primary, -1, prestock
		v := judge(k, tr.keys[k], ledger[k])
		require.Zero(t, v.lost+v.dup)
	})
	t.Run("a lost confirmed op and an applied unheard scan", func(t *testing.T) {
		ts := ones()
		ts[pick(0)] = 0 // the unheard pick (pick 5) is applied, as in every case here
		hist, ledger := fakeServer(applied, ts)
		lost, dup, _ := exactCheck(conf, unk, hist, ledger)
		require.Equal(t, int64(1), lost)
		require.Zero(t, dup)
	})
	t.Run("an op committed again under a new seq", func(t *testing.T) {
		again := applied[pick(1)]
		again.seq = 99
		hist, ledger := fakeServer(append(append([]opRec(nil), applied...), again), nil)
		lost, dup, problems := exactCheck(conf, unk, hist, ledger)
		require.Zero(t, lost)
		require.Equal(t, int64(1), dup)
		require.Contains(t, problems[0], "g01 seq 99")
	})
	t.Run("a seq logged twice", func(t *testing.T) {
		hist, ledger := fakeServer(applied, nil)
		k := applied[pick(1)].key
		for _, e := range hist[k] {
			if e.Seq == applied[pick(1)].seq { // applied and logged again
				e.OnHand = hist[k][len(hist[k])-1].OnHand + e.Qty
				hist[k] = append(hist[k], e)
				ledger[k] += e.Qty
				break
			}
		}
		_, dup, _ := exactCheck(conf, unk, hist, ledger)
		require.Equal(t, int64(1), dup)
	})
	t.Run("half a move", func(t *testing.T) {
		ts := ones()
		ts[index(applied, "M2-g01-s0", 1, 0)] = 0
		hist, ledger := fakeServer(applied, ts)
		lost, _, _ := exactCheck(conf, unk, hist, ledger)
		require.Equal(t, int64(1), lost)
	})
	t.Run("the set-up receive applied twice", func(t *testing.T) {
		ts := ones()
		ts[0] = 2
		hist, ledger := fakeServer(applied, ts)
		lost, dup, _ := exactCheck(conf, unk, hist, ledger)
		require.Zero(t, lost)
		require.Equal(t, int64(1), dup)
	})
	t.Run("an op log that could not be read", func(t *testing.T) {
		hist, ledger := fakeServer(applied, nil)
		delete(hist, applied[0].key)
		_, _, problems := exactCheck(conf, unk, hist, ledger)
		require.Len(t, problems, 1)
		require.Contains(t, problems[0], "did not run")
	})
}
