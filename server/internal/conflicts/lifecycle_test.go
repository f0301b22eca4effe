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
