package session

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/drivers/scan"
	"github.com/shelfsync/shelfsync/protocol"
)

const sscc1 = "106141412345678908"

func palletScan(sscc string) Input {
	return Input{Kind: scan.KindPallet, Value: sscc, Raw: "(00)" + sscc}
}

func palletWorld() *world {
	w := slotting()
	w.items["MILK"] = protocol.Item{SKU: "MILK", TrackLot: true, TrackExpiry: true}
	w.items["EGGS"] = protocol.Item{SKU: "EGGS"}
	w.pos["P1"] = protocol.PurchaseOrder{ID: "P1", Lines: []protocol.POLine{
		{Line: 1, SKU: "MILK", Lot: "L1", Qty: 10}, {Line: 2, SKU: "EGGS", Qty: 6}, {Line: 3, SKU: "SLOW", Qty: 2}}}
	w.settings.NoHoldFlags = protocol.FlagUnexpected // flagged, but not held: the whole pallet moves on
	w.asns[sscc1] = protocol.ASN{SSCC: sscc1, PO: "P1", Lines: []protocol.ASNLine{
		{SKU: "MILK", Lot: "L1", Expiry: "2026-06-30", Qty: 10}, {SKU: "EGGS", Qty: 6}, {SKU: "JAM", Qty: 1}}}
	return w
}

// TestPalletReceiveAndMove: one scan of the pallet label receives every
// line of its ASN against the ASN's PO, flagged like item receipts (JAM
// is on no PO line: unexpected), each op naming the SSCC; a second scan
// of the label is refused; closing the receipt reports the PO line the
// pallet did not bring (SLOW). A move by the label takes every line from
// the source and moves it at LOC:to, the moves naming the SSCC.
func TestPalletReceiveAndMove(t *testing.T) {
	w := palletWorld()
	outs := w.play(t, cmd("RECEIVE"), palletScan(sscc1), palletScan(sscc1), cmd("DONE"))
	require.Equal(t, "gwbw", verdicts(outs))
	rcv := outs[1]
	require.Len(t, rcv.Ops, 3)
	for _, op := range rcv.Ops {
		require.Equal(t, protocol.OpReceive, op.Kind)
		require.Equal(t, sscc1, op.SSCC)
		require.Equal(t, "RECEIVING", op.Location)
		require.Equal(t, []string{"(00)" + sscc1}, op.Raw)
	}
	require.Equal(t, &protocol.Refs{PO: "P1", POLine: 1}, rcv.Ops[0].Refs)
	require.Equal(t, "2026-06-30", rcv.Ops[0].Expiry)
	require.Zero(t, rcv.Ops[0].Flags)
	require.Zero(t, rcv.Ops[1].Flags)
	require.Equal(t, protocol.FlagUnexpected, rcv.Ops[2].Flags)
	require.Contains(t, rcv.Reason, "JAM unexpected item")
	require.Contains(t, outs[2].Reason, "already received")
	require.Contains(t, outs[3].Reason, "line 3: 0 of 2 × SLOW", "the missing line is reported at close")
	require.Equal(t, protocol.NoticePOClose, outs[3].Notices[0].Kind)

	outs = w.play(t, cmd("MOVE"), loc("RECEIVING"), palletScan(sscc1), loc("B-01"), cmd("DONE"))
	require.Equal(t, "ggggg", verdicts(outs))
	mv := outs[3].Ops
	require.Len(t, mv, 3)
	for _, op := range mv {
		require.Equal(t, protocol.OpMove, op.Kind)
		require.Equal(t, "RECEIVING", op.Location)
		require.Equal(t, "B-01", op.To)
		require.Equal(t, sscc1, op.SSCC)
	}
	require.EqualValues(t, 10, w.stock[wkey{k: [3]string{"B-01", "MILK", "L1"}}])
	require.EqualValues(t, 0, w.stock[wkey{k: [3]string{"RECEIVING", "EGGS", ""}}])

	// The pallet is no longer at RECEIVING: moving it from there again is refused.
	outs = w.play(t, cmd("PUTAWAY"), palletScan(sscc1))
	require.Equal(t, Bad, outs[1].Verdict)
	require.Contains(t, outs[1].Reason, "RECEIVING holds 0 × MILK")
}

// TestPalletRefusals: a pallet label without an ASN, in the wrong session,
// after QTY:, of another PO, or with a lot-tracked line without a lot
// commits nothing.
func TestPalletRefusals(t *testing.T) {
	w := palletWorld()
	w.asns["006141411234567890"] = protocol.ASN{SSCC: "006141411234567890", Lines: []protocol.ASNLine{{SKU: "MILK", Qty: 1}}}
	w.pos["P2"] = protocol.PurchaseOrder{ID: "P2", Lines: []protocol.POLine{{Line: 1, SKU: "EGGS", Qty: 1}}}
	cases := []struct {
		scans []Input
		why   string
	}{
		{[]Input{cmd("RECEIVE"), palletScan("000000000000000017")}, "no advance ship notice"},
		{[]Input{cmd("COUNT"), loc("A-01"), palletScan(sscc1)}, "belongs in a RECEIVE, PUTAWAY or MOVE session"},
		{[]Input{cmd("RECEIVE"), qty(2), palletScan(sscc1)}, "QTY:/LOT: do not apply"},
		{[]Input{cmd("RECEIVE"), po("P2"), palletScan(sscc1)}, "belongs to PO P1"},
		{[]Input{cmd("RECEIVE"), palletScan("006141411234567890")}, "MILK is lot-tracked"},
		{[]Input{cmd("MOVE"), palletScan(sscc1)}, "scan a LOC: label first"},
	}
	for _, c := range cases {
		outs := w.play(t, c.scans...)
		last := outs[len(outs)-1]
		require.Equal(t, Bad, last.Verdict, c.why)
		require.Contains(t, last.Reason, c.why)
		require.Empty(t, last.Ops)
	}
}
