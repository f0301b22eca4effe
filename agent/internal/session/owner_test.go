package session

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/drivers/scan"
	"github.com/shelfsync/shelfsync/protocol"
)

const shared = "04012345678901" // one GTIN, listed by acme's and globex's items

func owner(id string) Input { return Input{Kind: scan.KindOwner, Value: id, Raw: "OWNER:" + id} }

// ownersWorld: acme and globex both keep the carton of GTIN shared, each
// under its own sku; A-01 holds acme's units, B-01 globex's, RCV and C-01
// anyone's.
func ownersWorld() *world {
	w := newWorld()
	w.items["ACME-MILK"] = protocol.Item{SKU: "ACME-MILK", GTINs: []string{shared}, Owner: "acme"}
	w.items["GLOBEX-MILK"] = protocol.Item{SKU: "GLOBEX-MILK", GTINs: []string{shared}, Owner: "globex"}
	w.locs = []protocol.Location{{Code: "RCV", Type: protocol.LocDock}, {Code: "A-01", Type: protocol.LocStorage, Owner: "acme"},
		{Code: "B-01", Type: protocol.LocStorage, Owner: "globex"}, {Code: "C-01", Type: protocol.LocStorage}}
	return w
}

func opOwner(t *testing.T, o Outcome) (string, string) {
	t.Helper()
	require.Len(t, o.Ops, 1, o.Reason)
	return o.Ops[0].SKU, o.Ops[0].Owner
}

// TestLocationOwnerTellsTheGTINApart: received into a location with an
// owner, the shared GTIN is that owner's item, without a question.
func TestLocationOwnerTellsTheGTINApart(t *testing.T) {
	w := ownersWorld()
	outs := w.play(t, cmd("RECEIVE"), loc("A-01"), gtin(shared), loc("B-01"), qty(2), gtin(shared))
	require.Equal(t, "gggggg", verdicts(outs))
	s, o := opOwner(t, outs[2])
	require.Equal(t, [2]string{"ACME-MILK", "acme"}, [2]string{s, o})
	s, o = opOwner(t, outs[5])
	require.Equal(t, [2]string{"GLOBEX-MILK", "globex"}, [2]string{s, o})
	require.Equal(t, int64(2), outs[5].Ops[0].Qty)
}

// TestAmbiguousScanAsksForTheOwner: at a location without an owner the
// scan is kept and the operator asked (bad beep, the screen names the
// OWNER: labels); nothing is committed, every other scan but CMD:CANCEL is
// refused, an owner the GTIN is not listed for is refused, and the right
// OWNER: scan commits the waiting scan (with the QTY: scanned before it)
// and stays for the session's next items.
func TestAmbiguousScanAsksForTheOwner(t *testing.T) {
	w := ownersWorld()
	outs := w.play(t, cmd("RECEIVE"), qty(3), gtin(shared), loc("A-01"), gtin(shared), cmd("DONE"), owner("initech"),
		owner("globex"), gtin(shared), cmd("DONE"))
	require.Equal(t, "ggbbbbbggg", verdicts(outs))
	ask := outs[2]
	require.Empty(t, ask.Ops, "nothing committed until told")
	require.True(t, ask.Changed, "the waiting scan is kept in the session")
	require.Contains(t, ask.Reason, "OWNER:acme or OWNER:globex")
	require.Contains(t, ask.Reason, "acme (ACME-MILK) and globex (GLOBEX-MILK)")
	require.Contains(t, ask.Expect, "OWNER:acme or OWNER:globex")
	for _, i := range []int{3, 4, 5} {
		require.Empty(t, outs[i].Ops)
		require.Contains(t, outs[i].Reason, "waits for its owner", "scan %d", i)
	}
	require.Contains(t, outs[6].Reason, "OWNER:initech holds none")
	s, o := opOwner(t, outs[7])
	require.Equal(t, [2]string{"GLOBEX-MILK", "globex"}, [2]string{s, o})
	require.Equal(t, int64(3), outs[7].Ops[0].Qty, "the QTY: scanned before the item still applies")
	require.Equal(t, "RCV", outs[7].Ops[0].Location)
	require.Contains(t, outs[7].Reason, "owner globex: received 3 × GLOBEX-MILK")
	s, o = opOwner(t, outs[8])
	require.Equal(t, [2]string{"GLOBEX-MILK", "globex"}, [2]string{s, o}, "the owner stays for the session")

	// CMD:CANCEL drops the waiting scan with the session.
	outs = w.play(t, cmd("RECEIVE"), gtin(shared), cmd("CANCEL"), cmd("RECEIVE"), gtin(shared))
	require.Equal(t, "gbggb", verdicts(outs))
	require.Nil(t, outs[2].Station.Session)
}

// TestPendingScanSurvivesTheStationsEncoding: the waiting scan is part of
// the persisted station (a gateway restart keeps the question).
func TestPendingScanSurvivesTheStationsEncoding(t *testing.T) {
	w := ownersWorld()
	outs := w.play(t, cmd("RECEIVE"), qty(2), gtin(shared))
	b, err := protocol.Marshal(outs[2].Station)
	require.NoError(t, err)
	var back Station
	require.NoError(t, protocol.Unmarshal(b, &back))
	require.Equal(t, outs[2].Station, back)
	e := env
	e.Data = w
	out := Step(back, owner("acme"), e)
	s, o := opOwner(t, out)
	require.Equal(t, [2]string{"ACME-MILK", "acme"}, [2]string{s, o})
	require.Equal(t, int64(2), out.Ops[0].Qty)
}

// TestOwnerRulesRefuseTheWrongOwner: an OWNER: scan against the
// location's owner, an item of another owner into an owned location, and
// carried units into another owner's location are refused; an item
// without an owner goes anywhere.
func TestOwnerRulesRefuseTheWrongOwner(t *testing.T) {
	w := ownersWorld()
	outs := w.play(t, cmd("RECEIVE"), loc("A-01"), owner("globex"), loc("C-01"), owner("globex"), loc("A-01"), gtin(shared))
	require.Equal(t, "ggbgggb", verdicts(outs))
	require.Contains(t, outs[2].Reason, "A-01 holds acme's units")
	require.Contains(t, outs[6].Reason, "OWNER:globex was scanned, but A-01 holds acme's units")
	outs = w.play(t, cmd("RECEIVE"), loc("A-01"), sku("GLOBEX-MILK"), gtin("09501101530003"))
	require.Equal(t, "ggbg", verdicts(outs))
	require.Contains(t, outs[2].Reason, "not acme's")
	s, o := opOwner(t, outs[3])
	require.Equal(t, [2]string{"09501101530003", ""}, [2]string{s, o}, "an unlisted GTIN has no owner")

	w = ownersWorld()
	w.stock[wkey{k: [3]string{"A-01", "ACME-MILK", ""}}] = 5
	outs = w.play(t, cmd("MOVE"), loc("A-01"), gtin(shared), loc("B-01"), loc("C-01"))
	require.Equal(t, "gggbg", verdicts(outs))
	require.Contains(t, outs[3].Reason, "B-01 holds globex's units: ACME-MILK is acme's")
	require.Empty(t, outs[3].Ops)
	s, o = opOwner(t, outs[4])
	require.Equal(t, [2]string{"ACME-MILK", "acme"}, [2]string{s, o})
	require.Equal(t, "C-01", outs[4].Ops[0].To)
}

// TestPickTaskTellsTheGTINApart: at a location without an owner, the pick
// task names the sku, so the scan is no question.
func TestPickTaskTellsTheGTINApart(t *testing.T) {
	w := ownersWorld()
	w.stock[wkey{k: [3]string{"C-01", "GLOBEX-MILK", ""}}] = 5
	w.stock[wkey{k: [3]string{"C-01", "ACME-MILK", ""}}] = 5
	w.tasks["T1"] = protocol.Task{ID: "T1", Kind: "pick", Location: "C-01", SKU: "GLOBEX-MILK", Qty: 2}
	outs := w.play(t, cmd("PICK"), task("T1"), loc("C-01"), gtin(shared))
	require.Equal(t, "gggg", verdicts(outs))
	s, o := opOwner(t, outs[3])
	require.Equal(t, [2]string{"GLOBEX-MILK", "globex"}, [2]string{s, o})
}

// TestWaitingScanRefusedForAnotherReason: the OWNER: scan answers, but
// the waiting scan fails the item's own rule (a lot-tracked item without
// its lot): the owner stays, the waiting scan goes, and the session goes
// on.
func TestWaitingScanRefusedForAnotherReason(t *testing.T) {
	w := ownersWorld()
	for _, k := range []string{"ACME-MILK", "GLOBEX-MILK"} {
		it := w.items[k]
		it.TrackLot = true
		w.items[k] = it
	}
	outs := w.play(t, cmd("RECEIVE"), gtin(shared), owner("acme"), Input{Kind: scan.KindLot, Value: "L1"}, gtin(shared))
	require.Equal(t, "gbbgg", verdicts(outs))
	require.True(t, outs[2].Changed)
	require.Contains(t, outs[2].Reason, "owner acme; the waiting scan is refused")
	require.Contains(t, outs[2].Reason, "lot-tracked")
	require.Nil(t, outs[2].Station.Session.Pending)
	s, o := opOwner(t, outs[4])
	require.Equal(t, [2]string{"ACME-MILK", "acme"}, [2]string{s, o})
	require.Equal(t, "L1", outs[4].Ops[0].Lot)
}

// TestSuggestBinKeepsToTheOwnersBins: put-away never suggests a bin of
// another owner.
func TestSuggestBinKeepsToTheOwnersBins(t *testing.T) {
	w := ownersWorld()
	w.locs = append(w.locs[:0], protocol.Location{Code: "RCV", Type: protocol.LocDock},
		protocol.Location{Code: "B-01", Type: protocol.LocStorage, Owner: "globex", Rank: 9},
		protocol.Location{Code: "A-01", Type: protocol.LocStorage, Owner: "acme", Rank: 1})
	require.Equal(t, "A-01", SuggestBin(w, "ACME-MILK", "RCV"))
	require.Equal(t, "B-01", SuggestBin(w, "GLOBEX-MILK", "RCV"))
}

// TestPOTellsTheGTINApart: receiving against a PO whose lines name one
// owner's sku, the scan is that sku without a question; without the PO it
// asks.
func TestPOTellsTheGTINApart(t *testing.T) {
	w := ownersWorld()
	w.pos["P1"] = protocol.PurchaseOrder{ID: "P1", Lines: []protocol.POLine{{Line: 1, SKU: "ACME-MILK", Qty: 10}}}
	outs := w.play(t, cmd("RECEIVE"), po("P1"), gtin(shared))
	require.Equal(t, "ggg", verdicts(outs))
	s, o := opOwner(t, outs[2])
	require.Equal(t, [2]string{"ACME-MILK", "acme"}, [2]string{s, o})
	require.Equal(t, &protocol.Refs{PO: "P1", POLine: 1}, outs[2].Ops[0].Refs)
	outs = w.play(t, cmd("RECEIVE"), gtin(shared))
	require.Equal(t, "gb", verdicts(outs))
}

// TestItemAtForReaders: a reader that cannot ask takes the location
// owner's item, else what the caller expects (a portal's open PO lines),
// else the first by sku, flagged ambiguous.
func TestItemAtForReaders(t *testing.T) {
	w := ownersWorld()
	sku := func(loc string, expected func(string) bool) (string, bool, bool) {
		it, ok, amb := ItemAt(w, shared, loc, expected)
		return it.SKU, ok, amb
	}
	got, ok, amb := sku("B-01", nil)
	require.Equal(t, []any{"GLOBEX-MILK", true, false}, []any{got, ok, amb})
	got, ok, amb = sku("B-01", func(s string) bool { return s == "ACME-MILK" })
	require.Equal(t, []any{"GLOBEX-MILK", true, false}, []any{got, ok, amb}, "the location's owner comes first")
	got, ok, amb = sku("RCV", func(s string) bool { return s == "GLOBEX-MILK" })
	require.Equal(t, []any{"GLOBEX-MILK", true, false}, []any{got, ok, amb})
	got, ok, amb = sku("RCV", nil)
	require.Equal(t, []any{"ACME-MILK", true, true}, []any{got, ok, amb})
	got, ok, amb = sku("RCV", func(string) bool { return true })
	require.Equal(t, []any{"ACME-MILK", true, true}, []any{got, ok, amb}, "both expected: still ambiguous")
	_, ok, _ = ItemAt(w, "09501101530003", "RCV", nil)
	require.False(t, ok)
}
