package session

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/drivers/scan"
	"github.com/shelfsync/shelfsync/protocol"
)

func cmd(c string) Input  { return Input{Kind: scan.KindCommand, Command: c, Raw: "CMD:" + c} }
func loc(l string) Input  { return Input{Kind: scan.KindLocation, Value: l, Raw: "LOC:" + l} }
func gtin(g string) Input { return Input{Kind: scan.KindItem, GTIN: g, Raw: g} }
func qty(n int64) Input   { return Input{Kind: scan.KindQty, Qty: n} }

// run feeds scans and returns every outcome.
func run(t *testing.T, env Env, ins ...Input) (Station, []Outcome) {
	t.Helper()
	var d Station
	var outs []Outcome
	for _, in := range ins {
		o := Step(d, in, env)
		if o.Changed {
			d = o.Station
		}
		outs = append(outs, o)
	}
	return d, outs
}

var env = Env{Device: "s1", ReceivingLoc: "RCV", Now: time.UnixMilli(1000)}

func TestReceiveCommitsOneOpPerItem(t *testing.T) {
	d, outs := run(t, env, cmd("RECEIVE"), gtin("04012345678901"), qty(3), gtin("04012345678901"), cmd("DONE"))
	require.Nil(t, d.Session)
	for _, o := range outs {
		require.Equal(t, Good, o.Verdict, o.Reason)
	}
	require.Len(t, outs[1].Ops, 1)
	require.Equal(t, protocol.Op{Kind: protocol.OpReceive, Location: "RCV", SKU: "04012345678901", Qty: 1, Device: "s1", Raw: []string{"04012345678901"}}, outs[1].Ops[0])
	require.Equal(t, int64(3), outs[3].Ops[0].Qty)
}

func TestCountIsOneLocationOpAtDone(t *testing.T) {
	_, outs := run(t, env, cmd("COUNT"), loc("A-01"), gtin("X"), gtin("X"), gtin("Y"), cmd("DONE"))
	for i := 0; i < 5; i++ {
		require.Empty(t, outs[i].Ops, "no op before DONE")
		require.NotContains(t, outs[i].Reason, "2", "blind count shows no totals")
	}
	require.Len(t, outs[5].Ops, 1)
	op := outs[5].Ops[0]
	require.Equal(t, protocol.OpCount, op.Kind)
	require.Equal(t, protocol.ScopeLocation, op.Scope)
	require.Equal(t, []protocol.CountLine{{SKU: "X", Qty: 2}, {SKU: "Y", Qty: 1}}, op.Lines)
}

func TestRejectedScansChangeNothing(t *testing.T) {
	tests := []struct {
		name string
		pre  []Input
		scan Input
	}{
		{"item without session", nil, gtin("X")},
		{"done without session", nil, cmd("DONE")},
		{"second start", []Input{cmd("RECEIVE")}, cmd("COUNT")},
		{"count item before LOC", []Input{cmd("COUNT")}, gtin("X")},
		{"count another location mid-count", []Input{cmd("COUNT"), loc("A"), gtin("X")}, loc("B")},
		{"negative qty in receive", []Input{cmd("RECEIVE")}, qty(-2)},
		{"PO in count", []Input{cmd("COUNT")}, Input{Kind: scan.KindPO, Value: "P1"}},
		{"adjust without qty", []Input{cmd("ADJUST"), loc("A")}, gtin("X")},
		{"move done with carried items", []Input{cmd("MOVE"), loc("A"), gtin("X")}, cmd("DONE")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := run(t, env, tc.pre...)
			o := Step(d, tc.scan, env)
			require.Equal(t, Bad, o.Verdict)
			require.NotEmpty(t, o.Reason)
			require.Empty(t, o.Ops)
			require.False(t, o.Changed)
		})
	}
}

func TestMoveCommitsAtDestination(t *testing.T) {
	_, outs := run(t, env, cmd("MOVE"), loc("A"), gtin("X"), qty(2), gtin("Y"), loc("B"), cmd("DONE"))
	require.Len(t, outs[5].Ops, 2)
	require.Equal(t, "B", outs[5].Ops[1].To)
	require.Equal(t, int64(2), outs[5].Ops[1].Qty)
	require.Equal(t, Good, outs[6].Verdict)
}

func TestIdleSessionTimesOutWithoutCommitting(t *testing.T) {
	e := env
	e.IdleTimeout = time.Minute
	d, _ := run(t, e, cmd("COUNT"), loc("A"), gtin("X"))
	e.Now = e.Now.Add(2 * time.Minute)
	o := Step(d, cmd("DONE"), e)
	require.Equal(t, Bad, o.Verdict)
	require.Contains(t, o.Reason, "timed out")
	require.Empty(t, o.Ops)
	require.Nil(t, o.Station.Session)
}

// TestQuantityBounds: a quantity past the protocol's bound is a bad beep,
// and a count that would add up past it stops at the bound.
func TestQuantityBounds(t *testing.T) {
	d, outs := run(t, env, cmd("RECEIVE"), qty(9223372036854775807), gtin("X"), qty(protocol.MaxOpQty), gtin("X"))
	require.Equal(t, Bad, outs[1].Verdict, "QTY past the bound")
	require.Contains(t, outs[1].Reason, "beyond")
	require.Equal(t, Good, outs[2].Verdict)
	require.Equal(t, int64(1), outs[2].Ops[0].Qty, "the refused QTY did not carry over")
	require.Equal(t, int64(protocol.MaxOpQty), outs[4].Ops[0].Qty)
	require.NotNil(t, d.Session)

	_, outs = run(t, env, cmd("COUNT"), loc("A"), qty(protocol.MaxOpQty), gtin("X"), qty(1), gtin("X"), cmd("DONE"))
	require.Equal(t, Bad, outs[5].Verdict, "a count line past the bound")
	require.Equal(t, []protocol.CountLine{{SKU: "X", Qty: protocol.MaxOpQty}}, outs[6].Ops[0].Lines)
}
