package conflicts_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
)

func TestResolve(t *testing.T) {
	m := conflicts.NewMemStore()
	q := conflicts.Quarantined(wh, "gw-a", 7, "unknown location Z9")
	_, changed, err := conflicts.Raise(m, q)
	require.NoError(t, err)
	require.True(t, changed)

	tests := []struct {
		name       string
		id, res    string
		wantErr    error
		wantStatus conflicts.Status
	}{
		{"unknown id", "quar:wh1/gw-a/8", conflicts.ResolutionAccept, conflicts.ErrNotFound, ""},
		{"unknown resolution", q.ID, "ignore", conflicts.ErrResolution, ""},
		{"accept", q.ID, conflicts.ResolutionAccept, nil, conflicts.StatusResolved},
		{"already resolved", q.ID, conflicts.ResolutionRecount, conflicts.ErrResolved, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := conflicts.Resolve(m, tc.id, tc.res, "alice")
			if tc.wantErr != nil {
				require.True(t, errors.Is(err, tc.wantErr), "got %v", err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantStatus, c.Status)
			require.Equal(t, "alice", c.ResolvedBy)
			require.Equal(t, conflicts.ResolutionAccept, c.Resolution)
		})
	}
}

// A resolved conflict stays resolved while its condition holds; once the
// condition has stopped holding, holding again reopens it.
func TestResolvedReopensOnlyAfterTheConditionStopped(t *testing.T) {
	d, m := &conflicts.Detector{}, conflicts.NewMemStore()
	id := conflicts.NegativeStockID(key("s1"))
	observe(t, d, m, mk("gw-a", 1, 10, protocol.OpPick, "s1", 1))
	_, err := conflicts.Resolve(m, id, conflicts.ResolutionAccept, "bob")
	require.NoError(t, err)

	got := observe(t, d, m, mk("gw-a", 2, 11, protocol.OpPick, "s1", 1))
	require.Equal(t, conflicts.StatusResolved, got[0].Status, "still negative, already accepted")
	require.Equal(t, int64(-2), got[0].Observed)

	got = observe(t, d, m, mk("gw-a", 3, 12, protocol.OpReceive, "s1", 2))
	require.Equal(t, conflicts.StatusResolved, got[0].Status)
	require.False(t, got[0].Holds)

	got = observe(t, d, m, mk("gw-a", 4, 13, protocol.OpPick, "s1", 1))
	require.Equal(t, conflicts.StatusOpen, got[0].Status, "a new episode")
	require.Empty(t, got[0].Resolution)
}

func TestOversellRaiseAndClear(t *testing.T) {
	m := conflicts.NewMemStore()
	c, changed, err := conflicts.Raise(m, conflicts.Oversell(wh, "s1", 12, 10, protocol.MakeHLC(1000, 0)))
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, conflicts.KindOversell, c.Kind)
	require.Equal(t, conflicts.StatusOpen, c.Status)

	c, changed, err = conflicts.Raise(m, conflicts.Oversell(wh, "s1", 12, 10, protocol.MakeHLC(1000, 0)))
	require.NoError(t, err)
	require.False(t, changed, "raising the same facts again writes nothing")

	c, _, err = conflicts.Raise(m, conflicts.Oversell(wh, "s1", 9, 10, protocol.MakeHLC(2000, 0)))
	require.NoError(t, err)
	require.Equal(t, conflicts.StatusCleared, c.Status)
	require.Equal(t, int64(12), c.Observed, "the cleared conflict keeps the facts it was raised with")

	_, changed, err = conflicts.Raise(m, conflicts.Oversell(wh, "s2", 1, 10, 0))
	require.NoError(t, err)
	require.False(t, changed, "a condition that does not hold creates nothing")
}

func TestRecheckOrderLineWhenTheQuantityChanges(t *testing.T) {
	d, m := &conflicts.Detector{}, conflicts.NewMemStore()
	l := conflicts.OrderLineKey{WH: wh, Order: "o9", Line: 1}
	observe(t, d, m,
		mk("gw-c", 1, 1, protocol.OpReceive, "s1", 5),
		withRefs(mk("gw-a", 1, 10, protocol.OpPick, "s1", 2), "o9", 1),
		withRefs(mk("gw-b", 1, 20, protocol.OpPick, "s1", 2), "o9", 1))
	all, _ := m.ListConflicts(conflicts.Query{})
	require.Empty(t, all, "quantity not known yet")

	m.Lines[l] = 3
	got, err := conflicts.RecheckOrderLine(m, wh, "o9", 1)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, conflicts.StatusOpen, got[0].Status)
	require.Equal(t, protocol.MakeHLC(20000, 0), got[0].CreatedHLC, "the pick that went over")

	m.Lines[l] = 4
	got, err = conflicts.RecheckOrderLine(m, wh, "o9", 1)
	require.NoError(t, err)
	require.Equal(t, conflicts.StatusCleared, got[0].Status)
}

func TestIDsKeepCodesApart(t *testing.T) {
	a := ledger.Key{WH: wh, Location: "A1", SKU: "x/y"}
	b := ledger.Key{WH: wh, Location: "A1", SKU: "x", Lot: "y"}
	require.NotEqual(t, conflicts.NegativeStockID(a), conflicts.NegativeStockID(b))
	require.Equal(t, "neg:wh1/A1/x%2Fy", conflicts.NegativeStockID(a))
	require.Equal(t, "neg:wh1/A1/x/y", conflicts.NegativeStockID(b))
	require.Equal(t, "race:wh1/gw-a/3", conflicts.CountRaceID(wh, ledger.Order{HLC: 1, GW: "gw-a", Seq: 3}))
}

// TestCountThatConfirmsRaisesNothing: a count's variance compares it with
// what a shelf can hold of the records, max(records, 0). A −1 bin counted
// 0 confirms the records (and clears the negative stock); counted 2 it
// found 2; a positive bin counted at its records confirms them.
func TestCountThatConfirmsRaisesNothing(t *testing.T) {
	tests := []struct {
		name     string
		ops      []ledger.Sourced
		variance bool
		expected int64
	}{
		{"-1 counted 0", []ledger.Sourced{mk("gw-a", 1, 10, protocol.OpPick, "s", 1), mk("gw-a", 2, 20, protocol.OpCount, "s", 0)}, false, 0},
		{"-1 counted 0 by location", []ledger.Sourced{mk("gw-a", 1, 10, protocol.OpPick, "s", 1), locCount("gw-a", 2, 20)}, false, 0},
		{"-1 counted 2", []ledger.Sourced{mk("gw-a", 1, 10, protocol.OpPick, "s", 1), mk("gw-a", 2, 20, protocol.OpCount, "s", 2)}, true, -1},
		{"3 counted 3", []ledger.Sourced{mk("gw-a", 1, 10, protocol.OpReceive, "s", 3), mk("gw-a", 2, 20, protocol.OpCount, "s", 3)}, false, 0},
		{"3 counted 1", []ledger.Sourced{mk("gw-a", 1, 10, protocol.OpReceive, "s", 3), mk("gw-a", 2, 20, protocol.OpCount, "s", 1)}, true, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, m := &conflicts.Detector{}, conflicts.NewMemStore()
			observe(t, d, m, tc.ops...)
			var vars []conflicts.Conflict
			all, err := m.ListConflicts(conflicts.Query{})
			require.NoError(t, err)
			for _, c := range all {
				if c.Kind == conflicts.KindVariance && c.Holds {
					vars = append(vars, c)
				}
				if c.Kind == conflicts.KindNegativeStock {
					require.False(t, c.Holds, "the count ends the negative stock")
				}
			}
			if !tc.variance {
				require.Empty(t, vars)
				return
			}
			require.Len(t, vars, 1)
			require.Equal(t, tc.expected, vars[0].Expected)
			// The reference computation agrees.
			got := conflicts.Compute(tc.ops, nil, 0)
			require.Contains(t, got, vars[0].ID)
		})
	}
}

// TestRecountResolvesOnlyWhenScanned: a recount leaves the conflict
// acknowledged; a count stamped before the request does not resolve it,
// one stamped after does.
func TestRecountResolvesOnlyWhenScanned(t *testing.T) {
	d, m := &conflicts.Detector{}, conflicts.NewMemStore()
	id := conflicts.NegativeStockID(key("s1"))
	observe(t, d, m, mk("gw-a", 1, 10, protocol.OpPick, "s1", 1))
	c, err := conflicts.ResolveAt(m, id, conflicts.ResolutionRecount, "bob", "recount-x", protocol.MakeHLC(20_000, 0))
	require.NoError(t, err)
	require.Equal(t, conflicts.StatusAcknowledged, c.Status)
	require.Equal(t, "recount-x", c.RecountTask)
	_, done, err := conflicts.RecountDone(m, id, ledger.Order{HLC: protocol.MakeHLC(15_000, 0), GW: "gw-b", Seq: 1})
	require.NoError(t, err)
	require.False(t, done, "counted before the request")
	c, done, err = conflicts.RecountDone(m, id, ledger.Order{HLC: protocol.MakeHLC(25_000, 0), GW: "gw-b", Seq: 2})
	require.NoError(t, err)
	require.True(t, done)
	require.Equal(t, conflicts.StatusResolved, c.Status)
	require.Equal(t, "bob", c.ResolvedBy)
	// An accepted conflict is resolved at once.
	observe(t, d, m, mk("gw-a", 2, 30, protocol.OpPick, "s2", 1))
	c, err = conflicts.Resolve(m, conflicts.NegativeStockID(key("s2")), conflicts.ResolutionAccept, "bob")
	require.NoError(t, err)
	require.Equal(t, conflicts.StatusResolved, c.Status)
}
