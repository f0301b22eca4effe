package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type conflictView struct {
	ID, Kind, Status, Location, SKU string
	Ops                             []struct {
		Gateway string `json:"gateway"`
		Seq     uint64 `json:"seq"`
	}
}

func (c *cluster) conflicts(wh, kind string) []conflictView {
	var body struct{ Items []conflictView }
	getJSON(c.t, fmt.Sprintf("http://%s/api/v1/conflicts?warehouse=%s&kind=%s", c.httpAddr, wh, kind), &body)
	return body.Items
}

func (c *cluster) post(path string, body any, out any) int {
	b, err := json.Marshal(body)
	require.NoError(c.t, err)
	resp, err := http.Post("http://"+c.httpAddr+path, "application/json", bytes.NewReader(b))
	require.NoError(c.t, err)
	defer resp.Body.Close()
	if out != nil {
		require.NoError(c.t, json.NewDecoder(resp.Body).Decode(out))
	}
	return resp.StatusCode
}

type taskView struct{ ID, Kind, Location, Conflict, Status string }

func (g *gateway) tasks() []taskView {
	var st struct{ Tasks []taskView }
	getJSON(g.c.t, "http://"+g.HTTP+"/api/v1/status", &st)
	return st.Tasks
}

// waitConverged waits until the server has applied everything every gateway
// committed and each gateway's view equals the server's ledger.
func (c *cluster) waitConverged(wh string, gws ...*gateway) map[string]int64 {
	var server map[string]int64
	waitFor(c.t, 30*time.Second, "convergence", func() bool {
		server = stock(c.t, "http://"+c.httpAddr, wh)
		for _, g := range gws {
			st := g.status()
			if st.OutboxDepth != 0 || !equal(stock(c.t, "http://"+g.HTTP, wh), server) {
				return false
			}
		}
		return true
	})
	return server
}

// TestTwoOfflineGatewaysPickTheLastUnit: one negative-stock conflict, a
// count task after recount (the conflict acknowledged, not resolved), and
// after a free count of the bin: the ledger, the conflict resolved, no
// variance, the task closed.
func TestTwoOfflineGatewaysPickTheLastUnit(t *testing.T) {
	t.Parallel() // its own server, agents, ports and directories
	c := newCluster(t)
	g1, g2 := c.newGateway("wh1", "g1"), c.newGateway("wh1", "g2")
	g1.scan("CMD:RECEIVE", "LOC:BIN-1", "SKU:X", "CMD:DONE")
	g1.waitBeeps(4)
	require.Equal(t, map[string]int64{"BIN-1/X": 1}, c.waitConverged("wh1", g1, g2), "g2 sees g1's receipt")

	c.stopServer(syscall.SIGKILL)
	g1.scan("CMD:PICK", "LOC:BIN-1", "SKU:X", "CMD:DONE")
	g2.scan("CMD:PICK", "LOC:BIN-1", "SKU:X", "CMD:DONE")
	require.Equal(t, 8, g1.waitBeeps(8)["good"], "offline picks are confirmed")
	require.Equal(t, 4, g2.waitBeeps(4)["good"])
	c.startServer()
	require.Equal(t, map[string]int64{"BIN-1/X": -1}, c.waitConverged("wh1", g1, g2))

	neg := c.conflicts("wh1", "negative-stock")
	require.Len(t, neg, 1)
	require.Equal(t, "open", neg[0].Status)
	require.Equal(t, "BIN-1", neg[0].Location)
	require.NotEmpty(t, neg[0].Ops, "the pick that took the bin below zero is named")

	var res struct {
		Task     *taskView
		Conflict conflictView
	}
	require.Equal(t, 200, c.post("/api/v1/conflicts/"+url.PathEscape(neg[0].ID)+"/resolve", map[string]any{"action": "recount", "by": "lead"}, &res))
	require.NotNil(t, res.Task)
	require.Equal(t, "acknowledged", res.Conflict.Status, "a recount asked for is not a resolution yet")
	require.Equal(t, "acknowledged", c.conflicts("wh1", "negative-stock")[0].Status)
	waitFor(t, 15*time.Second, "count task on the gateway", func() bool {
		for _, tk := range g2.tasks() {
			if tk.Kind == "count" && tk.Location == "BIN-1" && tk.Conflict == neg[0].ID {
				return true
			}
		}
		return false
	})
	g2.scan("CMD:COUNT", "LOC:BIN-1", "CMD:DONE") // the shelf is empty
	require.Equal(t, 7, g2.waitBeeps(7)["good"])
	require.Equal(t, map[string]int64{"BIN-1/X": 0}, c.waitConverged("wh1", g1, g2))
	require.Equal(t, "resolved", c.conflicts("wh1", "negative-stock")[0].Status, "the recount is scanned")
	require.Empty(t, c.conflicts("wh1", "variance"), "0 counted on a −1 bin confirms the records: no found stock")
	waitFor(t, 15*time.Second, "the count task closed at the gateway (a free count of its bin)", func() bool {
		for _, tk := range g2.tasks() {
			if tk.ID == res.Task.ID {
				return tk.Status == "done"
			}
		}
		return false
	})
}

func TestCountAndPickWithinSkewWindowIsACountRace(t *testing.T) {
	c := newCluster(t)
	g1, g2 := c.newGateway("wh1", "g1"), c.newGateway("wh1", "g2")
	g1.scan("CMD:RECEIVE", "LOC:BIN-2", "QTY:5", "SKU:Y", "CMD:DONE")
	g1.waitBeeps(5)
	c.waitConverged("wh1", g1, g2)
	g1.scan("CMD:COUNT", "LOC:BIN-2", "QTY:5", "SKU:Y", "CMD:DONE")
	g2.scan("CMD:PICK", "LOC:BIN-2", "SKU:Y", "CMD:DONE")
	g1.waitBeeps(10)
	g2.waitBeeps(4)
	c.waitConverged("wh1", g1, g2)
	var races []conflictView
	waitFor(t, 10*time.Second, "count-race", func() bool { races = c.conflicts("wh1", "count-race"); return len(races) == 1 })
	require.Equal(t, "BIN-2", races[0].Location)
}

// TestWeekOfflineGatewayCatchesUpCompacted: a gateway away while another
// does hundreds of ops on a few keys gets the current values, not history.
func TestWeekOfflineGatewayCatchesUpCompacted(t *testing.T) {
	t.Parallel() // its own server, agents, ports and directories
	c := newCluster(t)
	g1, g2 := c.newGateway("wh1", "g1"), c.newGateway("wh1", "g2")
	g2.Agent().Stop(syscall.SIGTERM)
	scans := []string{"CMD:RECEIVE"}
	for i := 0; i < 300; i++ {
		scans = append(scans, fmt.Sprintf("LOC:A-%d", i%3), "SKU:Z")
	}
	scans = append(scans, "CMD:DONE")
	g1.scan(scans...)
	g1.waitBeeps(len(scans))
	before := g2downItems(g2)
	g2.startAgent()
	server := c.waitConverged("wh1", g1, g2)
	require.Equal(t, map[string]int64{"A-0/Z": 100, "A-1/Z": 100, "A-2/Z": 100}, server)
	got := g2downItems(g2) - before
	require.LessOrEqual(t, got, uint64(10), "catch-up carries latest values per key, not 300 ops of history")
}

func g2downItems(g *gateway) uint64 {
	var st struct {
		Uplink struct {
			DownItems uint64 `json:"down_items_received"`
		}
	}
	resp, err := http.Get("http://" + g.HTTP + "/api/v1/status")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(&st)
	return st.Uplink.DownItems
}

func TestServerRestartDuringStreamLosesAndDuplicatesNothing(t *testing.T) {
	t.Parallel() // its own server, agents, ports and directories
	c := newCluster(t)
	g := c.newGateway("wh1", "g1")
	scans := []string{"CMD:RECEIVE"}
	for i := 0; i < 400; i++ {
		scans = append(scans, "SKU:S")
	}
	g.scan(scans[:200]...)
	waitFor(t, 20*time.Second, "some acked", func() bool { return g.status().AckedSeq > 50 })
	c.stopServer(syscall.SIGKILL) // broker and server die mid-stream
	g.scan(scans[200:]...)
	c.startServer()
	g.scan("CMD:DONE")
	g.waitBeeps(len(scans) + 1)
	require.Equal(t, len(scans)+1, g.beeps()["good"])
	require.Equal(t, map[string]int64{"RECEIVING/S": 400}, c.waitConverged("wh1", g))
	require.Equal(t, uint64(400), g.status().AckedSeq, "server watermark covers every op exactly once")
	// The backlog went plain (sent on reconnect, before the new server's
	// ack); that ack announced ops-deflate again.
	require.True(t, uplinkOpsDeflate(g), "the restarted server announced ops-deflate")
}

// uplinkOpsDeflate reports whether the agent sends compressed op batches
// (its server announced ops-deflate).
func uplinkOpsDeflate(g *gateway) bool {
	var st struct {
		Uplink struct {
			OpsDeflate bool `json:"ops_deflate"`
		}
	}
	getJSON(g.c.t, "http://"+g.HTTP+"/api/v1/status", &st)
	return st.Uplink.OpsDeflate
}

// serverMetric returns the value of one sample of the server's /metrics,
// 0 when absent.
func serverMetric(t *testing.T, base, sample string) float64 {
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	return 0
}
