package e2e

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// palletSSCC is the GS1 General Specifications' example SSCC.
const palletSSCC = "106141412345678908"

// TestPalletReceivedAndMovedBySSCC: over real processes (server, agent,
// simulated scanner on a pty), a three-line pallet whose advance ship
// notice came in by CSV is received with one scan of its SSCC label
// against PO P1; the PO line the pallet lacks is flagged when the receipt
// closes (a receipt discrepancy on the server); then one scan of the label
// moves all three lines to a bin, and the stock history of each line shows
// the pallet.
func TestPalletReceivedAndMovedBySSCC(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	dock := c.newGateway("wh1", "dock1")
	c.mustDo("POST", "/api/v1/masterdata/wh1/locations", []map[string]any{
		{"code": "RECEIVING", "zone": "DOCK", "type": "dock"}, {"code": "B-01", "zone": "DOCK", "type": "storage", "sellable": true}}, nil)
	c.mustDo("POST", "/api/v1/masterdata/wh1/zones", []map[string]any{{"zone": "DOCK", "gateway": "dock1"}}, nil)
	c.mustDo("POST", "/api/v1/masterdata/wh1/items", []map[string]any{
		{"sku": "MILK", "track_expiry": true}, {"sku": "EGGS"}, {"sku": "BOLT"}, {"sku": "SOAP"}}, nil)
	c.mustDo("POST", "/api/v1/masterdata/wh1/pos", []map[string]any{{"id": "P1", "dock": "RECEIVING", "lines": []map[string]any{
		{"sku": "MILK", "lot": "L1", "qty": 10}, {"sku": "EGGS", "qty": 6}, {"sku": "BOLT", "qty": 4}, {"sku": "SOAP", "qty": 2}}}}, nil)
	lines := c.importCSV("wh1", "asns", "sscc,po,sku,lot,expiry,qty\n"+
		palletSSCC+",P1,MILK,L1,2030-12-31,10\n"+palletSSCC+",P1,EGGS,,,6\n"+palletSSCC+",P1,BOLT,,,4\n")
	last := lines[len(lines)-1]
	require.Equal(t, true, last["done"], "%v", lines)
	require.EqualValues(t, 1, last["imported"], "one pallet of three rows: %v", lines)
	require.EqualValues(t, 0, last["errors"])
	waitFor(t, 30*time.Second, "the PO and the ASN at the dock", func() bool {
		s := dock.screen()
		return len(s.POs) == 1 && s.Counts["asns"] == 1 && s.Counts["locations"] == 2
	})

	label := "(00)" + palletSSCC
	b := dock.scanAll(t, "OP:alice", "CMD:RECEIVE", label, "CMD:DONE")
	require.Equal(t, map[string]int{"good": 3, "bad": 0, "warn": 1}, b, "%v", dock.reasons(""))
	require.Contains(t, dock.reasons(label)[0], "3 line(s): 10 × MILK, 6 × EGGS, 4 × BOLT")
	require.Contains(t, dock.reasons("CMD:DONE")[0], "line 4: 0 of 2 × SOAP", "the line the pallet lacks is flagged")

	b = dock.scanAll(t, "CMD:MOVE", "LOC:RECEIVING", label, "LOC:B-01", "CMD:DONE")
	require.Equal(t, map[string]int{"good": 5, "bad": 0, "warn": 0}, b, "%v", dock.reasons(""))

	want := map[string]int64{"B-01/MILK/L1": 10, "B-01/EGGS": 6, "B-01/BOLT": 4}
	waitFor(t, 30*time.Second, "the pallet in B-01 at the server", func() bool {
		got := c.ledger("wh1")
		return fmt.Sprint(got) == fmt.Sprint(want)
	})
	waitFor(t, 30*time.Second, "the short line's discrepancy", func() bool {
		for _, x := range c.allConflicts("wh1") {
			if x.Kind == "receipt-discrepancy" && x.SKU == "SOAP" && x.Expected == 2 && x.Observed == 0 {
				return true
			}
		}
		return false
	})
	for _, x := range c.allConflicts("wh1") {
		if x.Kind == "receipt-discrepancy" {
			require.Equal(t, "SOAP", x.SKU, "only the missing line is a discrepancy: %+v", x)
		}
	}

	for _, k := range []struct{ sku, lot string }{{"MILK", "L1"}, {"EGGS", ""}, {"BOLT", ""}} {
		var h struct {
			Items []struct {
				Kind, SSCC string
				Qty        int64
			}
		}
		getJSON(t, fmt.Sprintf("http://%s/api/v1/stock/history?warehouse=wh1&location=B-01&sku=%s&lot=%s", c.httpAddr, k.sku, k.lot), &h)
		require.Len(t, h.Items, 1, "%s", k.sku)
		require.Equal(t, "move", h.Items[0].Kind)
		require.Equal(t, palletSSCC, h.Items[0].SSCC, "the history shows the pallet")
		getJSON(t, fmt.Sprintf("http://%s/api/v1/stock/history?warehouse=wh1&location=RECEIVING&sku=%s&lot=%s", c.httpAddr, k.sku, k.lot), &h)
		var kinds []string
		for _, e := range h.Items {
			require.Equal(t, palletSSCC, e.SSCC)
			kinds = append(kinds, e.Kind)
		}
		sort.Strings(kinds)
		require.Equal(t, []string{"move", "receive"}, kinds, "%s", k.sku)
	}
}
