package chaos

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func ops(specs ...opRec) []opRec {
	for i := range specs {
		specs[i].order = int64(i + 1)
	}
	return specs
}

func times(n int, o opRec) []opRec {
	out := make([]opRec, n)
	for i := range out {
		out[i] = o
	}
	return out
}

func TestJudge(t *testing.T) {
	k := stockKey{"wh1", "L", "S"}
	c, u := confirmed, unknown
	receives := &keyRec{role: primary, unit: +1, ops: ops(append(times(10, opRec{qty: 1, st: c}), times(2, opRec{qty: 1, st: u})...)...)}
	picks := &keyRec{role: primary, unit: -1, prestock: prestock,
		ops: ops(append(append([]opRec{{qty: prestock, st: c}}, times(5, opRec{qty: -1, st: c})...), opRec{qty: -1, st: u})...)}
	moveSrc := &keyRec{role: secondary, unit: -1, prestock: prestock, ops: ops(opRec{qty: prestock, st: c}, opRec{qty: -1, st: c})}
	counts := &keyRec{role: primary, ops: ops(
		opRec{qty: 1, count: true, st: c}, opRec{qty: 2, count: true, st: u},
		opRec{qty: 3, count: true, st: c}, opRec{qty: 4, count: true, st: u})}
	neg := &keyRec{role: scenario, ops: ops(opRec{qty: 1, st: c}, opRec{qty: -1, st: c}, opRec{qty: -1, st: c})}
	variance := &keyRec{role: scenario, ops: ops(opRec{qty: 5, st: c}, opRec{qty: 3, count: true, st: c})}
	race := &keyRec{role: scenario, ops: ops(opRec{qty: 1, st: c, either: true}, opRec{qty: 7, count: true, st: c, either: true})}

	for _, tc := range []struct {
		name      string
		kr        *keyRec
		v         int64
		lost, dup int64
		mismatch  bool
	}{
		{"receives: confirmed only", receives, 10, 0, 0, false},
		{"receives: with both unknown", receives, 12, 0, 0, false},
		{"receives: one lost", receives, 9, 1, 0, true},
		{"receives: one applied twice", receives, 13, 0, 1, true},
		{"picks: exact", picks, prestock - 5, 0, 0, false},
		{"picks: with the unknown one", picks, prestock - 6, 0, 0, false},
		{"picks: one lost", picks, prestock - 4, 1, 0, true},
		{"picks: one applied twice", picks, prestock - 7, 0, 1, true},
		{"picks: set-up receive lost", picks, -5, 1, 0, true},
		{"picks: set-up receive twice", picks, 2*prestock - 5, 0, 1, true},
		{"move source: reported, not counted", moveSrc, prestock, 0, 0, true},
		{"counts: last confirmed", counts, 3, 0, 0, false},
		{"counts: a later unknown one", counts, 4, 0, 0, false},
		{"counts: an unknown one before the last confirmed", counts, 2, 1, 0, true},
		{"counts: an earlier confirmed one", counts, 1, 1, 0, true},
		{"counts: nothing matches", counts, 9, 0, 0, true},
		{"negative: −1", neg, -1, 0, 0, false},
		{"negative: a pick lost", neg, 0, 1, 0, true},
		{"negative: one too many", neg, -2, 1, 0, true}, // ties with a pick applied twice: the first found wins
		{"variance: the count wins", variance, 3, 0, 0, false},
		{"variance: the count lost", variance, 5, 1, 0, true},
		{"variance: impossible", variance, 8, 0, 0, true},
		{"race: count after the receive", race, 7, 0, 0, false},
		{"race: receive after the count", race, 8, 0, 0, false},
		{"race: count lost", race, 1, 1, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := judge(k, tc.kr, tc.v)
			require.Equal(t, tc.lost, v.lost, "lost")
			require.Equal(t, tc.dup, v.dup, "duplicated")
			require.Equal(t, tc.mismatch, v.mismatch != "", "mismatch %q", v.mismatch)
		})
	}
}

func TestListed(t *testing.T) {
	k := stockKey{"wh1", "Q-3", "RACE-3"}
	rows := []conflictRow{
		{Kind: kindRace, Warehouse: "wh1", Location: "Q-3"},
		{Kind: kindVariance, Warehouse: "wh1", Location: "V-1", SKU: "VAR-1", Observed: 3},
		{Kind: kindNegative, Warehouse: "wh1", Location: "N-2", SKU: "NEG-2"},
	}
	require.True(t, listed(rows, provoked{Kind: kindRace, Key: k}))
	require.True(t, listed(rows, provoked{Kind: kindVariance, Key: stockKey{"wh1", "V-1", "VAR-1"}, Observed: 3}))
	require.False(t, listed(rows, provoked{Kind: kindVariance, Key: stockKey{"wh1", "V-1", "VAR-1"}, Observed: 4}))
	require.True(t, listed(rows, provoked{Kind: kindNegative, Key: stockKey{"wh1", "N-2", "NEG-2"}}))
	require.False(t, listed(rows, provoked{Kind: kindNegative, Key: stockKey{"wh2", "N-2", "NEG-2"}}))
}

func TestTrackerTalliesMovesOnce(t *testing.T) {
	tr := newTracker()
	from, to := stockKey{"w", "M1", "M"}, stockKey{"w", "M2", "M"}
	tr.record(confirmed, opRec{gw: "g1", key: from, qty: -1, mirror: true}, opRec{gw: "g1", key: to, qty: 1})
	tr.record(unknown, opRec{gw: "g1", key: to, qty: 1})
	c, u := tr.totals()
	require.Equal(t, 1, c)
	require.Equal(t, 1, u)
}
