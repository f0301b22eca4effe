package session

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/drivers/scan"
	"github.com/shelfsync/shelfsync/protocol"
)

// world is an in-memory Lookup that applies committed ops the way the
// agent's store does: receipts per PO line, picks per task, local stock.
type world struct {
	items    map[string]protocol.Item
	locs     []protocol.Location
	dock     string // the default receiving location ("": env's)
	pos      map[string]protocol.PurchaseOrder
	tasks    map[string]protocol.Task
	received map[string]int64
	picked   map[string]int64
	stock    map[wkey]int64
	settings protocol.Settings
	asns     map[string]protocol.ASN
}

// wkey is a stock key of the world (owners are not modelled here).
type wkey struct {
	k  [3]string // location, sku, lot
	st protocol.StockStatus
}

func newWorld() *world {
	return &world{items: map[string]protocol.Item{}, pos: map[string]protocol.PurchaseOrder{}, tasks: map[string]protocol.Task{},
		received: map[string]int64{}, picked: map[string]int64{}, stock: map[wkey]int64{}, asns: map[string]protocol.ASN{}}
}

func (w *world) Item(sku string) (protocol.Item, bool) { it, ok := w.items[sku]; return it, ok }
func (w *world) ItemsByGTIN(g string) []protocol.Item {
	var out []protocol.Item
	for _, it := range w.items {
		if slices.Contains(it.GTINs, g) {
			out = append(out, it)
		}
	}
	return out
}
func (w *world) Location(code string) (protocol.Location, bool) {
	for _, l := range w.locs {
		if l.Code == code {
			return l, true
		}
	}
	return protocol.Location{}, false
}
func (w *world) Locations() []protocol.Location { return w.locs }
func (w *world) PO(id string) (protocol.PurchaseOrder, bool) {
	p, ok := w.pos[id]
	return p, ok
}
func (w *world) ASN(sscc string) (protocol.ASN, bool) { a, ok := w.asns[sscc]; return a, ok }
func (w *world) Received(po string, line uint32) int64 {
	return w.received[po+"/"+string(rune('0'+line))]
}
func (w *world) Task(id string) (protocol.Task, bool) { t, ok := w.tasks[id]; return t, ok }
func (w *world) Tasks() []protocol.Task {
	var out []protocol.Task
	for _, t := range w.tasks {
		out = append(out, t)
	}
	return out
}
func (w *world) OrderTasks(order string) []protocol.Task {
	var out []protocol.Task
	for _, t := range w.tasks {
		if t.Order == order {
			out = append(out, t)
		}
	}
	return out
}
func (w *world) Picked(id string) int64 { return w.picked[id] }
func (w *world) Stock(loc, sku string) []Stock {
	var out []Stock
	for k, v := range w.stock {
		if (loc == "" || k.k[0] == loc) && (sku == "" || k.k[1] == sku) && v != 0 {
			out = append(out, Stock{Location: k.k[0], SKU: k.k[1], Lot: k.k[2], Status: k.st, OnHand: v})
		}
	}
	return out
}
func (w *world) Settings() protocol.Settings { return w.settings }

func (w *world) apply(ops []protocol.Op) {
	for _, op := range ops {
		switch op.Kind {
		case protocol.OpReceive:
			w.stock[wkey{[3]string{op.Location, op.SKU, op.Lot}, op.Status}] += op.Qty
			if op.Refs != nil && op.Refs.POLine != 0 {
				w.received[op.Refs.PO+"/"+string(rune('0'+op.Refs.POLine))] += op.Qty
			}
		case protocol.OpPick:
			w.stock[wkey{[3]string{op.Location, op.SKU, op.Lot}, op.Status}] -= op.Qty
			if op.Refs != nil && op.Refs.Task != "" {
				w.picked[op.Refs.Task] += op.Qty
			}
		case protocol.OpMove, protocol.OpPutaway:
			w.stock[wkey{[3]string{op.Location, op.SKU, op.Lot}, op.Status}] -= op.Qty
			w.stock[wkey{[3]string{op.To, op.SKU, op.Lot}, op.Status}] += op.Qty
		case protocol.OpStatus:
			w.stock[wkey{[3]string{op.Location, op.SKU, op.Lot}, op.Status}] -= op.Qty
			w.stock[wkey{[3]string{op.Location, op.SKU, op.Lot}, op.ToStatus}] += op.Qty
		}
	}
}

// play feeds scans (in the label text form) to Step against w.
func (w *world) play(t *testing.T, scans ...Input) []Outcome {
	t.Helper()
	e := env
	e.Data = w
	if w.dock != "" {
		e.ReceivingLoc = w.dock
	}
	e.Now = time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	var d Station
	var outs []Outcome
	for _, in := range scans {
		o := Step(d, in, e)
		if o.Changed {
			d = o.Station
			w.apply(o.Ops)
		}
		outs = append(outs, o)
	}
	return outs
}

func po(id string) Input   { return Input{Kind: scan.KindPO, Value: id, Raw: "PO:" + id} }
func task(id string) Input { return Input{Kind: scan.KindTask, Value: id, Raw: "TASK:" + id} }
func ord(id string) Input  { return Input{Kind: scan.KindOrder, Value: id, Raw: "ORD:" + id} }
func sku(s string) Input   { return Input{Kind: scan.KindItem, SKU: s, Raw: "SKU:" + s} }
func goods(s, lot, exp string) Input {
	return Input{Kind: scan.KindItem, SKU: s, Lot: lot, Expiry: exp, Raw: "SKU:" + s}
}

func verdicts(outs []Outcome) string {
	var b strings.Builder
	for _, o := range outs {
		b.WriteString(string(o.Verdict)[:1])
	}
	return b.String()
}

func TestReceiveFlagsDiscrepanciesAtScanTime(t *testing.T) {
	w := newWorld()
	w.settings.OverReceiptPct = 10
	w.items["MILK"] = protocol.Item{SKU: "MILK", GTINs: []string{"04012345678901"}, TrackLot: true, TrackExpiry: true}
	w.pos["P1"] = protocol.PurchaseOrder{ID: "P1", Lines: []protocol.POLine{
		{Line: 1, SKU: "MILK", Lot: "L1", Qty: 10}, {Line: 2, SKU: "BREAD", Qty: 5}}}
	outs := w.play(t,
		cmd("RECEIVE"), po("P1"),
		qty(10), goods("MILK", "L1", "2026-04-01"), // exact line: good
		goods("MILK", "L1", "2026-04-01"),         // 11 of 10 within 10 %: good
		qty(2), goods("MILK", "L1", "2026-04-01"), // 13 > 11: over-receipt
		goods("MILK", "L9", "2026-04-01"), // line expects L1: lot mismatch (and over)
		goods("JAM", "", ""),              // unexpected
		goods("MILK", "L1", "2026-03-01"), // expired (and over)
		gtin("04012345678901"),            // lot-tracked without a lot: rejected
		qty(3), sku("BREAD"),
		cmd("DONE"),
	)
	require.Equal(t, "ggggggwwwwbggw", verdicts(outs))
	flags := func(i int) uint32 { require.Len(t, outs[i].Ops, 1); return outs[i].Ops[0].Flags }
	require.Zero(t, flags(3))
	require.Zero(t, flags(4))
	require.Equal(t, protocol.FlagOverReceipt, flags(6))
	require.Equal(t, protocol.FlagOverReceipt|protocol.FlagLotMismatch, flags(7))
	require.Equal(t, protocol.FlagUnexpected, flags(8))
	require.Equal(t, protocol.FlagOverReceipt|protocol.FlagExpired, flags(9))
	for i, want := range map[int]protocol.StockStatus{3: protocol.StatusAvailable, 4: protocol.StatusAvailable, 6: protocol.StatusHold,
		7: protocol.StatusHold, 8: protocol.StatusHold, 9: protocol.StatusHold, 12: protocol.StatusAvailable} {
		require.Equal(t, want, outs[i].Ops[0].Status, "scan %d: flagged units land on hold, the others available", i)
	}
	require.Contains(t, outs[6].Reason, "on hold there for review")
	require.Contains(t, outs[10].Reason, "lot-tracked")
	require.Equal(t, &protocol.Refs{PO: "P1", POLine: 2}, outs[12].Ops[0].Refs)
	done := outs[13]
	require.Contains(t, done.Reason, "line 2: 3 of 5 × BREAD")
	require.Len(t, done.Notices, 1)
	require.Equal(t, protocol.NoticePOClose, done.Notices[0].Kind)
	require.Equal(t, "P1", done.Notices[0].Ref)
	require.Nil(t, done.Station.Session)
}

func TestStrictCatalogRejectsUnknownGTIN(t *testing.T) {
	w := newWorld()
	w.items["MILK"] = protocol.Item{SKU: "MILK", GTINs: []string{"04012345678901"}}
	outs := w.play(t, cmd("RECEIVE"), gtin("04012345678901"), gtin("09999999999999"))
	require.Equal(t, "ggg", verdicts(outs))
	require.Equal(t, "MILK", outs[1].Ops[0].SKU, "GTIN mapped through the catalog")
	require.Equal(t, "09999999999999", outs[2].Ops[0].SKU, "open catalog: the GTIN is the sku")
	w.settings.StrictCatalog = true
	outs = w.play(t, cmd("RECEIVE"), gtin("09999999999999"))
	require.Equal(t, Bad, outs[1].Verdict)
	require.Contains(t, outs[1].Reason, "strict catalog")
}

func slotting() *world {
	w := newWorld()
	w.dock = "RECEIVING" // the gateway's default receiving location
	w.locs = []protocol.Location{
		{Code: "RECEIVING", Type: protocol.LocDock},
		{Code: "PACK", Type: protocol.LocPack, Rank: 0},
		{Code: "A-01", Type: protocol.LocPick, Rank: 1},
		{Code: "A-02", Type: protocol.LocStorage, Rank: 2},
		{Code: "B-01", Type: protocol.LocStorage, Rank: 5},
		{Code: "B-02", Type: protocol.LocStorage, Rank: 9},
	}
	w.items["FAST"] = protocol.Item{SKU: "FAST", Velocity: protocol.VelocityFast}
	w.items["SLOW"] = protocol.Item{SKU: "SLOW", Velocity: protocol.VelocitySlow}
	w.items["HELD"] = protocol.Item{SKU: "HELD"}
	w.stock[wkey{k: [3]string{"B-01", "HELD", ""}}] = 4
	return w
}

func TestPutawaySuggestsBins(t *testing.T) {
	tests := []struct{ sku, want string }{
		{"HELD", "B-01"}, // the bin already holding it
		{"FAST", "A-01"}, // fast mover: nearest free bin (pick or storage)
		{"SLOW", "B-02"}, // others: farthest free storage bin
	}
	for _, tc := range tests {
		t.Run(tc.sku, func(t *testing.T) {
			w := slotting()
			require.Equal(t, tc.want, SuggestBin(w, tc.sku, "RECEIVING"))
		})
	}
}

func TestPutawayRecordsTheSuggestionAndAllowsAnotherBin(t *testing.T) {
	w := slotting()
	w.stock[wkey{k: [3]string{"RECEIVING", "FAST", ""}}] = 2
	outs := w.play(t, cmd("PUTAWAY"), sku("FAST"), loc("A-01"), sku("FAST"), loc("A-02"), loc("NOWHERE"), cmd("DONE"))
	require.Equal(t, "ggggg", verdicts(outs[:5]))
	require.Equal(t, "A-01", outs[1].Station.Session.Suggest)
	require.Contains(t, outs[1].Expect, "suggested A-01")
	require.Equal(t, "suggested A-01", outs[2].Ops[0].Reason)
	require.Equal(t, protocol.OpPutaway, outs[2].Ops[0].Kind)
	require.Equal(t, "A-01", outs[3].Station.Session.Suggest, "A-01 now holds FAST")
	require.Equal(t, "suggested A-01; put at A-02", outs[4].Ops[0].Reason)
	require.Contains(t, outs[4].Reason, "instead of the suggested A-01")
	require.Equal(t, Bad, outs[5].Verdict, "unknown location with location master data")
	require.Equal(t, Good, outs[6].Verdict)
}

func pickWorld() *world {
	w := newWorld()
	w.tasks["T1"] = protocol.Task{ID: "T1", Kind: "pick", Location: "A-01", SKU: "MILK", Lot: "L1", Qty: 3, Order: "O1", OrderLine: 1, Expiry: "2026-05-01"}
	w.tasks["T2"] = protocol.Task{ID: "T2", Kind: "pick", Location: "B-01", SKU: "JAM", Qty: 2, Order: "O1", OrderLine: 2}
	w.tasks["C1"] = protocol.Task{ID: "C1", Kind: "count", Location: "C-01"}
	return w
}

func TestPickRejectsWrongScansAndRecordsShorts(t *testing.T) {
	w := pickWorld()
	outs := w.play(t,
		cmd("PICK"), ord("O1"),
		loc("C-09"),                     // wrong location
		loc("A-01"),                     //
		sku("JAM"),                      // wrong item here
		goods("MILK", "L2", ""),         // wrong lot (FEFO)
		qty(4), goods("MILK", "L1", ""), // more than the line
		qty(2), sku("MILK"), // lot taken from the task
		loc("B-01"), qty(2), sku("JAM"),
		cmd("DONE"), // T1 short: 2 of 3
	)
	require.Equal(t, "ggbgbbgbgggggw", verdicts(outs))
	for _, i := range []int{2, 4, 5, 7} {
		require.Empty(t, outs[i].Ops, "a rejected pick records nothing")
	}
	require.Contains(t, outs[2].Reason, "wrong location C-09")
	require.Contains(t, outs[4].Reason, "wrong item JAM")
	require.Contains(t, outs[5].Reason, "wrong lot L2: pick lot L1")
	require.Contains(t, outs[7].Reason, "more than the line")
	p := outs[9].Ops[0]
	require.Equal(t, "L1", p.Lot)
	require.Equal(t, &protocol.Refs{Order: "O1", OrderLine: 1, Task: "T1"}, p.Refs)
	done := outs[13]
	require.Contains(t, done.Reason, "T1: 2 of 3 × MILK")
	require.Len(t, done.Notices, 2)
	require.Equal(t, int64(2), done.Notices[0].Qty)
	require.Equal(t, "T1", done.Notices[0].Ref)
	require.Equal(t, int64(2), done.Notices[1].Qty)
}

func TestPickTaskAndCountTask(t *testing.T) {
	w := pickWorld()
	outs := w.play(t, cmd("PICK"), task("C1"), task("T2"), loc("B-01"), qty(2), sku("JAM"), cmd("DONE"))
	require.Equal(t, "gbggggg", verdicts(outs))
	require.Equal(t, protocol.NoticeTaskClose, outs[6].Notices[0].Kind)
	outs = w.play(t, cmd("COUNT"), task("C1"), loc("C-02"), sku("X"), cmd("DONE"))
	require.Equal(t, "ggbgg", verdicts(outs))
	op := outs[4].Ops[0]
	require.Equal(t, "C-01", op.Location)
	require.Equal(t, "C1", op.Refs.Task)
	require.Equal(t, "C1", outs[4].Notices[0].Ref)
}

func TestFreePickStillWorksWithoutTasks(t *testing.T) {
	w := newWorld()
	outs := w.play(t, cmd("PICK"), loc("BIN-1"), sku("X"), cmd("DONE"))
	require.Equal(t, "gggg", verdicts(outs))
	require.Nil(t, outs[2].Ops[0].Refs)
	require.Empty(t, outs[3].Notices)
}

// TestReceiveWithoutTheDefaultDockInTheLocationData: when the location
// master data lacks the default receiving location, a receipt does not
// record items there (the server would quarantine them): the operator is
// told to scan the dock's LOC: label, and items after it are recorded.
func TestReceiveWithoutTheDefaultDockInTheLocationData(t *testing.T) {
	w := newWorld()
	w.locs = []protocol.Location{{Code: "DOCK-2", Type: protocol.LocDock}}
	w.items["MILK"] = protocol.Item{SKU: "MILK"}
	outs := w.play(t, cmd("RECEIVE"), sku("MILK"), loc("DOCK-2"), sku("MILK"), cmd("DONE"))
	require.Equal(t, "gbggg", verdicts(outs))
	require.Contains(t, outs[0].Reason, "scan the LOC: label of the dock")
	require.Contains(t, outs[1].Reason, "scan a LOC: label first")
	require.Len(t, outs[3].Ops, 1)
	require.Equal(t, "DOCK-2", outs[3].Ops[0].Location)

	// With the default dock defined, items go there at once.
	w.locs = append(w.locs, protocol.Location{Code: "RCV", Type: protocol.LocDock})
	outs = w.play(t, cmd("RECEIVE"), sku("MILK"), cmd("DONE"))
	require.Equal(t, "ggg", verdicts(outs))
	require.Equal(t, "RCV", outs[1].Ops[0].Location)
}

// TestHoldReleaseDamageByScan: HOLD moves available units to hold, RELEASE
// moves them back (taking the one held lot when none is scanned, refusing a
// key with nothing held), DAMAGE takes from available, with the REASON:
// scanned on each status op.
func TestHoldReleaseDamageByScan(t *testing.T) {
	w := newWorld()
	w.stock[wkey{k: [3]string{"A-1", "MILK", "L1"}}] = 5
	outs := w.play(t, cmd("HOLD"), loc("A-1"), Input{Kind: scan.KindReason, Value: "qc", Raw: "REASON:qc"}, qty(2), goods("MILK", "L1", ""), cmd("DONE"))
	require.Equal(t, "gggggg", verdicts(outs))
	op := outs[4].Ops[0]
	require.Equal(t, protocol.Op{Kind: protocol.OpStatus, Location: "A-1", SKU: "MILK", Lot: "L1", Qty: 2, ToStatus: protocol.StatusHold, Reason: "QC",
		Raw: []string{"SKU:MILK"}, Device: op.Device}, op)
	require.Equal(t, int64(3), w.stock[wkey{k: [3]string{"A-1", "MILK", "L1"}}])
	require.Equal(t, int64(2), w.stock[wkey{[3]string{"A-1", "MILK", "L1"}, protocol.StatusHold}])

	outs = w.play(t, cmd("RELEASE"), loc("A-1"), sku("MILK"), sku("TEA"), cmd("DONE"))
	require.Equal(t, "gggbg", verdicts(outs))
	require.Equal(t, "L1", outs[2].Ops[0].Lot, "the one held lot is taken")
	require.Equal(t, protocol.StatusHold, outs[2].Ops[0].Status)
	require.Equal(t, protocol.StatusAvailable, outs[2].Ops[0].ToStatus)
	require.Contains(t, outs[3].Reason, "nothing of TEA is on hold at A-1")
	require.Equal(t, int64(4), w.stock[wkey{k: [3]string{"A-1", "MILK", "L1"}}])

	outs = w.play(t, cmd("DAMAGE"), loc("A-1"), goods("MILK", "L1", ""), cmd("DONE"))
	require.Equal(t, "gggg", verdicts(outs))
	require.Equal(t, protocol.StatusDamaged, outs[2].Ops[0].ToStatus)
	require.Equal(t, int64(1), w.stock[wkey{[3]string{"A-1", "MILK", "L1"}, protocol.StatusDamaged}])
}

// TestReceiveHoldsPerSettings: a lot expiring within the item's minimum
// remaining shelf life is flagged; settings can let chosen flags land
// available (here over-receipt) while the others still hold.
func TestReceiveHoldsPerSettings(t *testing.T) {
	w := newWorld()
	w.settings.NoHoldFlags = protocol.FlagOverReceipt
	w.items["MILK"] = protocol.Item{SKU: "MILK", TrackLot: true, TrackExpiry: true, MinShelfDays: 30}
	w.pos["P1"] = protocol.PurchaseOrder{ID: "P1", Lines: []protocol.POLine{{Line: 1, SKU: "MILK", Qty: 1}}}
	// play's clock is 2026-03-10: 2026-03-20 is 10 days ahead, under 30.
	outs := w.play(t, cmd("RECEIVE"), po("P1"), goods("MILK", "L1", "2026-06-01"), goods("MILK", "L1", "2026-06-01"), goods("MILK", "L2", "2026-03-20"), cmd("DONE"))
	require.Equal(t, "gggwwg", verdicts(outs))
	require.Equal(t, protocol.StatusAvailable, outs[2].Ops[0].Status)
	require.Equal(t, protocol.FlagOverReceipt, outs[3].Ops[0].Flags)
	require.Equal(t, protocol.StatusAvailable, outs[3].Ops[0].Status, "over-receipt is allowed to land available by the settings")
	require.Equal(t, protocol.FlagOverReceipt|protocol.FlagShortShelfLife, outs[4].Ops[0].Flags)
	require.Equal(t, protocol.StatusHold, outs[4].Ops[0].Status)
	require.Contains(t, outs[4].Reason, "below minimum shelf life")
}

// TestPickRefusesExpiredShortLivedAndHeldLots: at a pick the scan of a lot
// past its expiry (GS1 (17)), of one within the item's minimum shelf life,
// or of a lot held at the location gets a bad beep and records nothing; a
// good lot is picked.
func TestPickRefusesExpiredShortLivedAndHeldLots(t *testing.T) {
	w := newWorld()
	w.items["MILK"] = protocol.Item{SKU: "MILK", TrackLot: true, TrackExpiry: true, MinShelfDays: 5}
	w.stock[wkey{k: [3]string{"A-1", "MILK", "GOOD"}}] = 4
	w.stock[wkey{[3]string{"A-1", "MILK", "HELD"}, protocol.StatusHold}] = 2
	// play's clock is 2026-03-10.
	outs := w.play(t, cmd("PICK"), loc("A-1"),
		goods("MILK", "OLD", "2026-03-09"),
		goods("MILK", "SOON", "2026-03-12"),
		goods("MILK", "HELD", "2026-06-01"),
		goods("MILK", "GOOD", "2026-06-01"),
		cmd("DONE"))
	require.Equal(t, "ggbbbgg", verdicts(outs))
	require.Contains(t, outs[2].Reason, "lot OLD of MILK expired on 2026-03-09")
	require.Contains(t, outs[3].Reason, "minimum shelf life")
	require.Contains(t, outs[4].Reason, "lot HELD of MILK at A-1 is hold, not for picking")
	require.Equal(t, int64(3), w.stock[wkey{k: [3]string{"A-1", "MILK", "GOOD"}}])
}
