package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSharedGTINOfTwoOwnersAtTheScanner: over real processes (server,
// agent, simulated scanner on a pty), acme and globex keep the same carton
// (one GTIN) under their own skus, loaded by CSV with the owner columns;
// A-01 is acme's bin, the dock anyone's. Received into A-01 the carton is
// acme's stock without a question; received at the dock the scan gets a
// bad beep and the screen asks for the owner, nothing is committed, and
// the OWNER:globex scan commits it as globex's stock — on the gateway and
// on the server.
func TestSharedGTINOfTwoOwnersAtTheScanner(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	dock := c.newGateway("wh1", "dock1")
	c.mustDo("POST", "/api/v1/masterdata/wh1/zones", []map[string]any{{"zone": "DOCK", "gateway": "dock1"}}, nil)
	for kind, csv := range map[string]string{
		"locations": "code,zone,type,sellable,owner\nRECEIVING,DOCK,dock,false,\nA-01,DOCK,storage,true,acme\nB-01,DOCK,storage,true,globex\n",
		"items":     "sku,gtins,owner\nACME-MILK," + milkGTIN + ",acme\nGLOBEX-MILK," + milkGTIN + ",globex\n",
	} {
		lines := c.importCSV("wh1", kind, csv)
		last := lines[len(lines)-1]
		require.Equal(t, true, last["done"], "%s: %v", kind, lines)
		require.EqualValues(t, 0, last["errors"], "%s: %v", kind, lines)
	}
	waitFor(t, 30*time.Second, "both owners' items and the locations at the gateway", func() bool {
		s := dock.screen()
		return s.Counts["items"] == 2 && s.Counts["locations"] == 3
	})
	ean := strings.TrimPrefix(milkGTIN, "0") // the carton's EAN-13

	b := dock.scanAll(t, "OP:alice", "CMD:RECEIVE", "LOC:A-01", "QTY:3", ean)
	require.Equal(t, map[string]int{"good": 5, "bad": 0, "warn": 0}, b, "%v", dock.reasons(""))
	require.Contains(t, dock.reasons(ean)[0], "received 3 × ACME-MILK at A-01")

	b = dock.scanAll(t, "LOC:RECEIVING", "QTY:2", ean)
	require.Equal(t, map[string]int{"good": 2, "bad": 1, "warn": 0}, b, "%v", dock.reasons(""))
	rs := dock.reasons(ean)
	require.Len(t, rs, 2, "%v", rs)
	asked := rs[1]
	require.Contains(t, asked, "bad: whose units?")
	require.Contains(t, asked, "OWNER:acme or OWNER:globex")
	var expect string
	for _, d := range dock.screen().Devices {
		expect += d.Expect
	}
	require.Contains(t, expect, "OWNER:acme or OWNER:globex", "the screen asks for the owner")
	require.Empty(t, dock.statusStock("GLOBEX-MILK"), "nothing committed until told")
	require.Equal(t, map[string]int64{"A-01//available": 3}, dock.statusStock("ACME-MILK"))

	b = dock.scanAll(t, "OWNER:globex", "CMD:DONE")
	require.Equal(t, map[string]int{"good": 2, "bad": 0, "warn": 0}, b, "%v", dock.reasons(""))
	require.Contains(t, dock.reasons("OWNER:globex")[0], "owner globex: received 2 × GLOBEX-MILK at RECEIVING")

	want := map[string]int64{"A-01/ACME-MILK/acme": 3, "RECEIVING/GLOBEX-MILK/globex": 2}
	owned := func(rows []statusRow) map[string]int64 {
		out := map[string]int64{}
		for _, r := range rows {
			if r.OnHand != 0 {
				out[r.Location+"/"+r.SKU+"/"+r.Owner] = r.OnHand
			}
		}
		return out
	}
	waitFor(t, 30*time.Second, "each owner's stock at the server", func() bool {
		var body struct{ Items []statusRow }
		getJSON(t, fmt.Sprintf("http://%s/api/v1/stock?warehouse=wh1", c.httpAddr), &body)
		return fmt.Sprint(owned(body.Items)) == fmt.Sprint(want)
	})
	var local struct{ Items []statusRow }
	require.NoError(t, json.Unmarshal(dock.get("/api/v1/stock"), &local))
	require.Equal(t, want, owned(local.Items), "the gateway's view names the owners too")
}
