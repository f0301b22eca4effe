package session

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/shelfsync/shelfsync/drivers/scan"
	"github.com/shelfsync/shelfsync/protocol"
)

// Shipped implements Lookup: the world ships nothing unless packWorld says.
func (w *world) Shipped(string) bool { return false }

// packWorld is a world whose gateway remembers the orders it shipped, as
// the agent's store does until the server confirms.
type packWorld struct {
	*world
	shipped map[string]bool
}

func (p packWorld) Shipped(order string) bool { return p.shipped[order] }

func newPackWorld() packWorld {
	w := newWorld()
	w.items["MILK"] = protocol.Item{SKU: "MILK", GTINs: []string{"04012345678901"}, TrackLot: true}
	w.items["JAM"] = protocol.Item{SKU: "JAM", GTINs: []string{"04000000000017"}}
	// Order O1: 2 × MILK picked from lot L1 and 1 from L2 (two tasks), 3 ×
	// JAM; a task of order O2 that is not this order's.
	w.tasks["T1"] = protocol.Task{ID: "T1", Kind: "pick", Location: "A-1", SKU: "MILK", Lot: "L1", Qty: 2, Order: "O1", OrderLine: 1}
	w.tasks["T2"] = protocol.Task{ID: "T2", Kind: "pick", Location: "A-2", SKU: "MILK", Lot: "L2", Qty: 2, Order: "O1", OrderLine: 1, Status: "short", Picked: 1}
	w.tasks["T3"] = protocol.Task{ID: "T3", Kind: "pick", Location: "B-1", SKU: "JAM", Qty: 3, Order: "O1", OrderLine: 2}
	w.tasks["T4"] = protocol.Task{ID: "T4", Kind: "pick", Location: "B-1", SKU: "JAM", Qty: 1, Order: "O2"}
	w.picked["T1"], w.picked["T3"], w.picked["T4"] = 2, 3, 1 // T2: the server's figure (another gateway picked it)
	return packWorld{world: w, shipped: map[string]bool{}}
}

// play feeds scans to Step; a committed ship notice marks the order
// shipped here, as the store does.
func (p packWorld) play(t *testing.T, d Station, scans ...Input) (Station, []Outcome) {
	t.Helper()
	e := env
	e.Data = p
	e.Now = time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	var outs []Outcome
	for _, in := range scans {
		o := Step(d, in, e)
		if o.Changed {
			d = o.Station
			for _, n := range o.Notices {
				if n.Kind == protocol.NoticeShip {
					p.shipped[n.Ref] = true
				}
			}
		}
		outs = append(outs, o)
	}
	return d, outs
}

func lot(l string) Input { return Input{Kind: scan.KindLot, Value: l, Raw: "LOT:" + l} }
func sscc(s string) Input {
	return Input{Kind: scan.KindPallet, Value: s, Raw: "00" + s}
}
func milk(lotNo string) Input {
	return Input{Kind: scan.KindItem, GTIN: "04012345678901", Lot: lotNo, Raw: "0104012345678901 10" + lotNo}
}

func TestPackChecksEveryPickedUnitAndShips(t *testing.T) {
	p := newPackWorld()
	d, outs := p.play(t, Station{Operator: "ann"},
		cmd("PACK"), ord("O1"),
		milk("L1"),                        // good
		sku("BREAD"),                      // not in the order: bad
		milk("L9"),                        // a lot the order was not picked from: bad
		milk(""),                          // no lot, two lots still to check: bad (which?)
		milk("L2"),                        // good: L2's one unit
		milk("L2"),                        // L2 is all checked: one too many, bad
		lot("L1"), gtin("04012345678901"), // LOT: then the GTIN: good (L1 done)
		sku("JAM"), qty(5), sku("JAM"), // JAM 1 of 3; 5 more than the 2 left: bad
		cmd("DONE"),        // 2 JAM unchecked: bad, nothing shipped
		qty(2), sku("JAM"), // good: everything checked
		sscc("106141412345678908"), sscc("106141412345678915"), // label, then another: bad
		cmd("DONE"),
	)
	require.Equal(t, "ggg"+"bbb"+"gb"+"gg"+"ggb"+"b"+"gg"+"gb"+"g", verdicts(outs))
	for i, o := range outs {
		require.Empty(t, o.Ops, "a pack session moves no stock (scan %d)", i)
		if i != len(outs)-1 {
			require.Empty(t, o.Notices, "nothing ships before the last DONE (scan %d)", i)
		}
	}
	require.Contains(t, outs[3].Reason, "wrong item BREAD")
	require.Contains(t, outs[4].Reason, "wrong lot L9")
	require.Contains(t, outs[5].Reason, "scan LOT:")
	require.Contains(t, outs[7].Reason, "one too many")
	require.Contains(t, outs[12].Reason, "more than order O1 has left")
	require.Contains(t, outs[13].Reason, "2 × JAM still to scan")
	require.Contains(t, outs[17].Reason, "106141412345678908 is already scanned")
	require.Nil(t, d.Session)
	last := outs[len(outs)-1]
	require.Len(t, last.Notices, 1)
	n := last.Notices[0]
	require.Equal(t, protocol.Notice{ID: n.ID, Kind: protocol.NoticeShip, At: n.At, Ref: "O1", Qty: 6, SSCC: "106141412345678908", Device: "s1", Operator: "ann"}, n)
	require.Contains(t, last.Reason, "order O1 shipped: 6 unit(s)")

	_, again := p.play(t, Station{}, cmd("PACK"), ord("O1"))
	require.Equal(t, Bad, again[1].Verdict, "shipped here already")
	require.Contains(t, again[1].Reason, "already shipped")
}

func TestPackRefusesWhatCannotShip(t *testing.T) {
	p := newPackWorld()
	tests := []struct {
		name  string
		pre   []Input
		scan  Input
		setup func()
		want  string
	}{
		{"item before the order", []Input{cmd("PACK")}, sku("JAM"), nil, "ORD: label"},
		{"done before the order", []Input{cmd("PACK")}, cmd("DONE"), nil, "no order scanned"},
		{"unknown order", []Input{cmd("PACK")}, ord("O9"), nil, "no picked units at this gateway"},
		{"second order", []Input{cmd("PACK"), ord("O2")}, ord("O1"), nil, "before another order"},
		{"task label", []Input{cmd("PACK")}, task("T1"), nil, "ORD: label"},
		{"cancelled order", []Input{cmd("PACK")}, ord("O3"), func() {
			p.tasks["T5"] = protocol.Task{ID: "T5", Kind: "pick", SKU: "JAM", Qty: 1, Order: "O3", Status: "cancelled"}
		}, "was cancelled"},
		{"cancelled while packing", []Input{cmd("PACK"), ord("O4"), sku("JAM")}, cmd("DONE"), func() {
			p.tasks["T6"] = protocol.Task{ID: "T6", Kind: "pick", SKU: "JAM", Qty: 1, Order: "O4", Picked: 1, Status: "done"}
			p.tasks["T7"] = protocol.Task{ID: "T7", Kind: "pick", SKU: "MILK", Qty: 1, Order: "O4", Status: "short"}
		}, "cancelled meanwhile"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			d, outs := p.play(t, Station{}, tc.pre...)
			for _, o := range outs {
				require.Equal(t, Good, o.Verdict, o.Reason)
			}
			if tc.name == "cancelled while packing" {
				t7 := p.tasks["T7"]
				t7.Status = "cancelled" // the server cancelled the order's open task
				p.tasks["T7"] = t7
			}
			_, outs = p.play(t, d, tc.scan)
			require.Equal(t, Bad, outs[0].Verdict)
			require.Contains(t, outs[0].Reason, tc.want)
			require.False(t, outs[0].Changed)
			require.Empty(t, outs[0].Notices)
		})
	}
}

// TestPackNeverShipsOtherThanWhatWasPicked: over random scan sequences —
// right and wrong skus, lots, quantities, DONE — a pack session never
// counts a unit beyond what was picked of its sku and lot, never commits
// an op, and ships (one notice) exactly when every picked unit is
// checked, with their number.
func TestPackNeverShipsOtherThanWhatWasPicked(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		p := newPackWorld()
		e := env
		e.Data = p
		want := map[[2]string]int64{{"MILK", "L1"}: 2, {"MILK", "L2"}: 1, {"JAM", ""}: 3}
		var d Station
		for _, in := range []Input{cmd("PACK"), ord("O1")} {
			d = Step(d, in, e).Station
		}
		gen := rapid.SampledFrom([]Input{milk("L1"), milk("L2"), milk("L9"), milk(""), sku("JAM"), sku("BREAD"),
			lot("L1"), lot("L2"), qty(1), qty(2), qty(3), cmd("DONE"), sscc("106141412345678908")})
		shipped := false
		for range rapid.IntRange(1, 40).Draw(rt, "n") {
			if d.Session == nil {
				break
			}
			in := gen.Draw(rt, "scan")
			o := Step(d, in, e)
			require.Empty(rt, o.Ops)
			if o.Changed {
				d = o.Station
			}
			if d.Session != nil {
				for _, c := range d.Session.Lines {
					require.LessOrEqual(rt, c.Qty, want[[2]string{c.SKU, c.Lot}], "checked beyond what was picked: %+v", c)
				}
			}
			if in.Kind == scan.KindCommand && o.Verdict == Good {
				shipped = true
				require.Len(rt, o.Notices, 1)
				require.Equal(rt, int64(6), o.Notices[0].Qty)
			} else {
				require.Empty(rt, o.Notices)
			}
			if in.Kind == scan.KindCommand && o.Verdict == Bad {
				var done int64
				for _, c := range d.Session.Lines {
					done += c.Qty
				}
				require.Less(rt, done, int64(6), "DONE refused although everything was checked")
			}
		}
		require.Equal(rt, shipped, d.Session == nil)
	})
}

// TestPackWaitsForTheOrdersOpenPicks: an order with a pick task still
// open here (the remainder of a short pick routed to another bin) is not
// packed until it is picked; a task that arrives during the pack session
// stops CMD:DONE.
func TestPackWaitsForTheOrdersOpenPicks(t *testing.T) {
	p := newPackWorld()
	p.tasks["T8"] = protocol.Task{ID: "T8", Kind: "pick", Location: "C-1", SKU: "JAM", Qty: 2, Order: "O1", OrderLine: 2}
	_, outs := p.play(t, Station{}, cmd("PACK"), ord("O1"))
	require.Equal(t, "gb", verdicts(outs))
	require.Contains(t, outs[1].Reason, "2 × JAM at C-1 (task T8)")

	p.picked["T8"] = 2 // picked here: packable, with the two more JAM
	d, outs := p.play(t, Station{}, cmd("PACK"), ord("O1"), milk("L1"), milk("L1"), milk("L2"), qty(5), sku("JAM"))
	require.Equal(t, "ggggggg", verdicts(outs), "%v", outs)
	p.tasks["T9"] = protocol.Task{ID: "T9", Kind: "pick", Location: "C-2", SKU: "MILK", Qty: 1, Order: "O1", OrderLine: 1}
	_, outs = p.play(t, d, cmd("DONE"))
	require.Equal(t, Bad, outs[0].Verdict)
	require.Contains(t, outs[0].Reason, "got a pick task meanwhile")
	require.Empty(t, outs[0].Notices)
}

// TestPackShipsNothingWhenThePickListIsGone: the order's pick tasks
// dropped while its pack session had checked nothing yet (pruned after
// the task retention as the session began) — CMD:DONE ships nothing.
func TestPackShipsNothingWhenThePickListIsGone(t *testing.T) {
	p := newPackWorld()
	d, outs := p.play(t, Station{}, cmd("PACK"), ord("O1"))
	require.Equal(t, "gg", verdicts(outs))
	for id, tk := range p.tasks {
		if tk.Order == "O1" {
			delete(p.tasks, id)
		}
	}
	_, outs = p.play(t, d, cmd("DONE"))
	require.Equal(t, Bad, outs[0].Verdict)
	require.Contains(t, outs[0].Reason, "no picked units at this gateway any more")
	require.Empty(t, outs[0].Notices)
	require.False(t, p.shipped["O1"])
}
