package orders

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
)

// The model keeps per sku and location the sums of every lot, owner and
// status there, not each key: availability is the same as summing the
// keys, a change to one key replaces its location's sums from the store
// (not adds to them), and a reload and a model started afresh agree.
func TestStockIsSummedPerLocationNotPerKey(t *testing.T) {
	f := newFixture(t, "", Config{Sellable: func(_, loc string) bool { return loc != "RECEIVING" }})
	recv := func(loc, lot, owner string, status protocol.StockStatus, qty int64) {
		f.op("wh1", protocol.Op{Kind: protocol.OpReceive, Location: loc, SKU: "A", Lot: lot, Owner: owner, Status: status, Qty: qty})
	}
	recv("BIN-1", "L1", "", protocol.StatusAvailable, 5)
	recv("BIN-1", "L2", "", protocol.StatusAvailable, 3)
	recv("BIN-1", "L1", "acme", protocol.StatusAvailable, 2)
	recv("BIN-1", "L1", "", protocol.StatusHold, 4)
	recv("BIN-1", "L3", "", protocol.StatusDamaged, 1)
	recv("RECEIVING", "L9", "", protocol.StatusAvailable, 7)
	want := ATS{Warehouse: "wh1", SKU: "A", OnHand: 22, Sellable: 10, Available: 10}
	require.Equal(t, want, f.ats("wh1", "A"))

	f.svc.mu.Lock()
	held := append([]locStock(nil), f.svc.stock[whsku{"wh1", "A"}]...)
	f.svc.mu.Unlock()
	require.ElementsMatch(t, []locStock{{loc: "BIN-1", onHand: 15, avail: 10}, {loc: "RECEIVING", onHand: 7, avail: 7}}, held,
		"one entry per location, whatever its keys")

	// A count of one key: the location's sums are read again whole.
	f.op("wh1", protocol.Op{Kind: protocol.OpCount, Scope: protocol.ScopeKey, Location: "BIN-1", SKU: "A", Lot: "L2", Qty: 1})
	want = ATS{Warehouse: "wh1", SKU: "A", OnHand: 20, Sellable: 8, Available: 8}
	require.Equal(t, want, f.ats("wh1", "A"))

	require.NoError(t, f.svc.Reload(f.ctx))
	require.Equal(t, want, f.ats("wh1", "A"), "a reload reads the same sums")

	fresh := New(Config{Sellable: func(_, loc string) bool { return loc != "RECEIVING" }}, f.st)
	require.NoError(t, fresh.Start(f.ctx))
	rows, _, _ := fresh.Availability("wh1", "A")
	require.Equal(t, []ATS{want}, rows, "a model started over the store loads the same sums")
}
