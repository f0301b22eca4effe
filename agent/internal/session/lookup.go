package session

import (
	"sort"

	"github.com/shelfsync/shelfsync/protocol"
)

// Lookup is what Step reads about the gateway's world: master data, open
// purchase orders and tasks, what this gateway already committed against
// them, and the local stock view. Step only reads through it, so the
// outcome of a scan is a function of the device state, the scan, and what
// Lookup answers. The agent's store implements it; NoData answers nothing.
type Lookup interface {
	// Item returns the catalog entry of sku.
	Item(sku string) (protocol.Item, bool)
	// ItemsByGTIN returns the catalog entries listing the GTIN-14: one,
	// or one per owner when several owners' items share it.
	ItemsByGTIN(gtin string) []protocol.Item
	// Location returns the master data of a location.
	Location(code string) (protocol.Location, bool)
	// Locations lists every location of the master data.
	Locations() []protocol.Location
	// PO returns a purchase order, with its status as this gateway knows it
	// (closed here once a receive session against it was finished).
	PO(id string) (protocol.PurchaseOrder, bool)
	// ASN returns the advance ship notice of a pallet (SSCC).
	ASN(sscc string) (protocol.ASN, bool)
	// Received returns what this gateway received against a PO line.
	Received(po string, line uint32) int64
	// Task returns a task, with its status as this gateway knows it.
	Task(id string) (protocol.Task, bool)
	// Tasks lists the tasks this gateway holds (every one: a scan reads
	// OrderTasks).
	Tasks() []protocol.Task
	// OrderTasks lists the tasks of an order this gateway holds, with
	// their status as it knows it (the store reads them by an index).
	OrderTasks(order string) []protocol.Task
	// Picked returns what this gateway picked against a task.
	Picked(task string) int64
	// Stock returns the local view's keys at location (every location when
	// empty) of sku (every sku when empty) with a non-zero on-hand.
	Stock(location, sku string) []Stock
	// Settings returns the warehouse settings.
	Settings() protocol.Settings
	// Shipped reports whether a pack session of this gateway shipped the
	// order and the server has not yet confirmed it.
	Shipped(order string) bool
}

// Stock is one key of the local stock view.
type Stock struct {
	Location, SKU, Lot string
	Owner              string
	Status             protocol.StockStatus
	OnHand             int64
}

// NoData is a Lookup with no master data, POs, tasks or stock.
type NoData struct{}

var _ Lookup = NoData{}

// Item implements Lookup.
func (NoData) Item(string) (protocol.Item, bool) { return protocol.Item{}, false }

// ItemsByGTIN implements Lookup.
func (NoData) ItemsByGTIN(string) []protocol.Item { return nil }

// Location implements Lookup.
func (NoData) Location(string) (protocol.Location, bool) { return protocol.Location{}, false }

// Locations implements Lookup.
func (NoData) Locations() []protocol.Location { return nil }

// PO implements Lookup.
func (NoData) PO(string) (protocol.PurchaseOrder, bool) { return protocol.PurchaseOrder{}, false }

// ASN implements Lookup.
func (NoData) ASN(string) (protocol.ASN, bool) { return protocol.ASN{}, false }

// Received implements Lookup.
func (NoData) Received(string, uint32) int64 { return 0 }

// Task implements Lookup.
func (NoData) Task(string) (protocol.Task, bool) { return protocol.Task{}, false }

// Tasks implements Lookup.
func (NoData) Tasks() []protocol.Task { return nil }

// OrderTasks implements Lookup.
func (NoData) OrderTasks(string) []protocol.Task { return nil }

// Picked implements Lookup.
func (NoData) Picked(string) int64 { return 0 }

// Stock implements Lookup.
func (NoData) Stock(string, string) []Stock { return nil }

// Settings implements Lookup.
func (NoData) Settings() protocol.Settings { return protocol.Settings{} }

// Shipped implements Lookup.
func (NoData) Shipped(string) bool { return false }

func data(env Env) Lookup {
	if env.Data == nil {
		return NoData{}
	}
	return env.Data
}

// SuggestBin is the slotting rule for putting sku away from location from:
//
//  1. a bin already holding the sku (the nearest to packing first);
//  2. else, for a fast mover, the free storage or pick bin nearest packing
//     (lowest distance rank);
//  3. else the free storage bin farthest from packing, keeping near bins
//     free for fast movers.
//
// Docks, packing and quarantine locations are never suggested, nor a bin
// that holds another owner's units (protocol.Location.Owner); a bin is
// free when the local view shows no stock in it. It returns "" when the
// master data offers nothing.
func SuggestBin(l Lookup, sku, from string) string {
	item, _ := l.Item(sku)
	eligible := func(code string) (protocol.Location, bool) {
		loc, ok := l.Location(code)
		if code == from || (loc.Owner != "" && loc.Owner != item.Owner) {
			return loc, false
		}
		if !ok {
			return loc, len(l.Locations()) == 0 // no location master data: any bin holding the sku
		}
		return loc, loc.Type == protocol.LocStorage || loc.Type == protocol.LocPick || loc.Type == ""
	}
	type cand struct {
		code string
		rank uint32
	}
	less := func(a, b cand) bool { // unranked (0) sorts last
		ra, rb := a.rank, b.rank
		if ra == 0 {
			ra = ^uint32(0)
		}
		if rb == 0 {
			rb = ^uint32(0)
		}
		if ra != rb {
			return ra < rb
		}
		return a.code < b.code
	}
	var holding []cand
	seen := map[string]bool{}
	for _, s := range l.Stock("", sku) {
		if s.OnHand <= 0 || seen[s.Location] {
			continue
		}
		seen[s.Location] = true
		if loc, ok := eligible(s.Location); ok {
			holding = append(holding, cand{s.Location, loc.Rank})
		}
	}
	if len(holding) > 0 {
		sort.Slice(holding, func(i, j int) bool { return less(holding[i], holding[j]) })
		return holding[0].code
	}
	fast := item.Velocity == protocol.VelocityFast
	var free []cand
	for _, loc := range l.Locations() {
		if loc.Code == from || loc.Deleted || (loc.Owner != "" && loc.Owner != item.Owner) {
			continue
		}
		if loc.Type != protocol.LocStorage && !(fast && loc.Type == protocol.LocPick) {
			continue
		}
		occupied := false
		for _, s := range l.Stock(loc.Code, "") {
			if s.OnHand > 0 {
				occupied = true
				break
			}
		}
		if !occupied {
			free = append(free, cand{loc.Code, loc.Rank})
		}
	}
	if len(free) == 0 {
		return ""
	}
	sort.Slice(free, func(i, j int) bool { return less(free[i], free[j]) })
	if fast {
		return free[0].code
	}
	// Farthest ranked bin; unranked bins (sorted last) come after it.
	best := free[0]
	for _, c := range free {
		if c.rank > best.rank {
			best = c
		}
	}
	return best.code
}
