package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/testbed"
)

// SGTIN-96 EPCs (filter 1, company prefix 4012345) of three tagged units of
// GTIN 04012345678901 (MILK), serials 1–3.
var milkEPCs = []string{"3034F4E4E4424C8000000001", "3034F4E4E4424C8000000002", "3034F4E4E4424C8000000003"}

// TestRFIDPortalReceivesOnceAndShelfSweeps runs a gateway with two
// simulated RFID readers behind ptys: a UHFReader18 portal at the dock and
// a Mercury shelf reader covering A-01. The portal receives each new EPC
// once, against the dock's open PO, however often it reads it; the shelf
// reader records an rfid-sweep count when its EPC set changes, and the
// unit that left the shelf shows as ghost stock.
func TestRFIDPortalReceivesOnceAndShelfSweeps(t *testing.T) {
	t.Parallel() // its own server, agents, ports and directories
	c := newCluster(t)
	c.mustDo("POST", "/api/v1/masterdata/wh1/locations", []map[string]any{{"code": "RECEIVING", "type": "dock"}, {"code": "A-01", "type": "pick", "rank": 1}}, nil)
	c.mustDo("POST", "/api/v1/masterdata/wh1/items", []map[string]any{{"sku": "MILK", "gtins": []string{"04012345678901"}, "serialized": true}}, nil)
	c.mustDo("POST", "/api/v1/masterdata/wh1/pos", []map[string]any{{"id": "P9", "dock": "RECEIVING", "lines": []map[string]any{{"sku": "MILK", "qty": 3}}}}, nil)

	dir := c.dir
	portalTags, shelfTags := filepath.Join(dir, "portal.tags"), filepath.Join(dir, "shelf.tags")
	require.NoError(t, os.WriteFile(portalTags, []byte(strings.Join(milkEPCs, "\n")+"\n"), 0o644))
	require.NoError(t, os.WriteFile(shelfTags, []byte(milkEPCs[0]+"\n"+milkEPCs[1]+"\n"), 0o644))
	portalLink, shelfLink := filepath.Join(dir, "portal.tty"), filepath.Join(dir, "shelf.tty")
	start(t, "portal/sim", false, "shelfsync-sim", "rfid", "--protocol", "uhf18", "--link", portalLink, "--tags", portalTags)
	shelf := start(t, "shelf/sim", false, "shelfsync-sim", "rfid", "--protocol", "mercury", "--link", shelfLink, "--tags", shelfTags, "--rate", "200")
	waitFor(t, 10*time.Second, "reader ptys", func() bool {
		_, e1 := os.Stat(portalLink)
		_, e2 := os.Stat(shelfLink)
		return e1 == nil && e2 == nil
	})
	g := &gateway{c: c, Gateway: &testbed.Gateway{WH: "wh1", GW: "rfid1", Dir: filepath.Join(dir, "rfid1"), HTTP: freePort(t)}}
	start(t, "rfid1/agent", false, "shelfsync-agent", "run",
		"--data", g.Dir, "--warehouse", "wh1", "--gateway", "rfid1", "--broker", "tcp://"+c.mqttAddr, "--http", g.HTTP, "--ack-timeout", "1s",
		"--device", "portal=rfid:"+portalLink+",protocol=uhf18,role=portal,location=RECEIVING",
		"--device", "shelf=rfid:"+shelfLink+",protocol=mercury,role=shelf,location=A-01,sweep=1s,window=300ms")
	waitFor(t, 15*time.Second, "agent healthy", func() bool { return httpOK("http://" + g.HTTP + "/healthz") })

	want := map[string]int64{"RECEIVING/MILK": 3, "A-01/MILK": 2}
	waitFor(t, 30*time.Second, "portal receipts and the first sweep at the server", func() bool { return equalI(c.ledger("wh1"), want) })
	time.Sleep(2 * time.Second) // the portal keeps reading the same tags: nothing more may be received
	require.Equal(t, want, c.ledger("wh1"))
	var po struct{ Received map[string]int64 }
	getJSON(t, "http://"+c.httpAddr+"/api/v1/masterdata/wh1/pos/P9", &po)
	require.Equal(t, map[string]int64{"1": 3}, po.Received, "received against the dock's open PO")

	// Unit 2 leaves the shelf: the next confirmed sweep counts 1, and the
	// gateway reports the unit as ghost stock of A-01.
	require.NoError(t, os.WriteFile(shelfTags, []byte(milkEPCs[0]+"\n"), 0o644))
	shelf.Signal(syscall.SIGHUP)
	want["A-01/MILK"] = 1
	waitFor(t, 30*time.Second, "second sweep at the server", func() bool { return equalI(c.ledger("wh1"), want) })
	var st struct{ Ghosts map[string][]string }
	resp, err := http.Get("http://" + g.HTTP + "/screen/api/state")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	resp.Body.Close()
	require.Equal(t, map[string][]string{"A-01": {milkEPCs[1]}}, st.Ghosts)

	var got []string
	for _, x := range c.allConflicts("wh1") {
		got = append(got, fmt.Sprintf("%s %s/%s exp=%d obs=%d", x.Kind, x.Location, x.SKU, x.Expected, x.Observed))
	}
	require.ElementsMatch(t, []string{
		"variance A-01/MILK exp=0 obs=2", // found on the shelf (never put away by scan)
		"variance A-01/MILK exp=2 obs=1", // ghost stock
	}, got)
	require.Equal(t, uint64(5), g.status().LastSeq, "3 receipts and 2 sweeps")
}

func equalI(a, b map[string]int64) bool { return equal(a, b) }
