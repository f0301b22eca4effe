package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type alertView struct {
	ID, Kind, Status, Gateway, SKU string
}

func (c *cluster) alerts(query string) []alertView {
	var body struct{ Items []alertView }
	getJSON(c.t, "http://"+c.httpAddr+"/api/v1/alerts?limit=1000&"+query, &body)
	return body.Items
}

// alertsOf returns "kind subject status" of every alert, oldest first.
func (c *cluster) alertsOf(query string) []string {
	var out []string
	for _, a := range c.alerts(query) {
		out = append(out, fmt.Sprintf("%s %s%s %s", a.Kind, a.Gateway, a.SKU, a.Status))
	}
	slices.Reverse(out)
	return out
}

// conflictsNotClosed returns the conflicts of wh still open or acknowledged.
func (c *cluster) conflictsNotClosed(wh string) []string {
	var out []string
	for _, st := range []string{"open", "acknowledged"} {
		var body struct{ Items []conflictView }
		getJSON(c.t, fmt.Sprintf("http://%s/api/v1/conflicts?warehouse=%s&status=%s", c.httpAddr, wh, st), &body)
		for _, x := range body.Items {
			out = append(out, x.ID+" "+x.Status)
		}
	}
	return out
}

// TestShiftEndsWithOnlyTheExceptionsStillTrue plays a shift over real
// processes — a server whose alert delays are settings (offline after 2 s,
// checked every 200 ms), two gateways with simulated scanners — with a
// gateway going offline and coming back, three conflicts resolved (a
// recount scanned as a free count, an adjust, an accepted variance) and
// reorder crossings, one of which a receipt undoes. At the end the only
// exception standing is the one still true: the sku still below its
// reorder point. Each lifecycle step is asserted on the way.
func TestShiftEndsWithOnlyTheExceptionsStillTrue(t *testing.T) {
	t.Parallel() // its own server, agents, ports and directories
	c := newClusterWith(t, "--alert-offline-after", "2s", "--alert-check-every", "200ms")
	g1, g2 := c.newGateway("wh1", "g1"), c.newGateway("wh1", "g2")
	// The shift is compressed into seconds: a count-race window of 1 ms
	// keeps the recount (seconds after the adjust) from racing it.
	require.Equal(t, http.StatusOK, c.call("PUT", "/api/v1/masterdata/wh1/settings", map[string]any{"skew_window_ms": 1}, nil))
	require.Equal(t, http.StatusOK, c.call("POST", "/api/v1/masterdata/wh1/thresholds", []map[string]any{
		{"sku": "R", "reorder_point": 3, "max": 10}, {"sku": "S", "reorder_point": 2, "reorder_qty": 5}}, nil))

	// Morning receipts: on-hand above both points (a receipt never alerts).
	g1.scanAll(t, "CMD:RECEIVE", "LOC:BIN-R", "QTY:6", "SKU:R", "LOC:BIN-S", "QTY:4", "SKU:S", "LOC:BIN-V", "QTY:5", "SKU:V", "CMD:DONE")
	want := map[string]int64{"BIN-R/R": 6, "BIN-S/S": 4, "BIN-V/V": 5}
	require.Equal(t, want, c.waitConverged("wh1", g1, g2))

	// Reorder crossings: picks take R to 2 (≤ 3) and S to 1 (≤ 2).
	g2.scanAll(t, "CMD:PICK", "LOC:BIN-R", "QTY:4", "SKU:R", "LOC:BIN-S", "QTY:3", "SKU:S", "CMD:DONE")
	waitFor(t, 20*time.Second, "two reorder alerts", func() bool { return len(c.alerts("kind=reorder&standing=true")) == 2 })
	// A receipt of S lifts it above its point: its alert clears.
	g1.scanAll(t, "CMD:RECEIVE", "LOC:BIN-S", "QTY:5", "SKU:S", "CMD:DONE")
	waitFor(t, 20*time.Second, "S's reorder alert cleared", func() bool {
		return slices.Equal(c.alertsOf("kind=reorder"), []string{"reorder R open", "reorder S cleared"}) ||
			slices.Equal(c.alertsOf("kind=reorder"), []string{"reorder S cleared", "reorder R open"})
	})

	// A gateway goes offline for longer than the setting, then comes back.
	g2.Agent().Stop(syscall.SIGKILL)
	waitFor(t, 30*time.Second, "g2 offline alert", func() bool {
		return slices.Contains(c.alertsOf("kind=gateway-offline"), "gateway-offline g2 open")
	})
	g2.startAgent()
	waitFor(t, 30*time.Second, "g2 back: its alert cleared", func() bool {
		return slices.Equal(c.alertsOf("kind=gateway-offline"), []string{"gateway-offline g2 cleared"})
	})

	// Three conflicts: two bins below zero and a count that finds less.
	g1.scanAll(t, "CMD:ADJUST", "LOC:BIN-N1", "QTY:-1", "SKU:N", "CMD:DONE", "CMD:ADJUST", "LOC:BIN-N2", "QTY:-2", "SKU:N", "CMD:DONE",
		"CMD:COUNT", "LOC:BIN-V", "QTY:3", "SKU:V", "CMD:DONE")
	want = map[string]int64{"BIN-R/R": 2, "BIN-S/S": 6, "BIN-V/V": 3, "BIN-N1/N": -1, "BIN-N2/N": -2}
	require.Equal(t, want, c.waitConverged("wh1", g1, g2))
	var neg1, neg2, variance string
	waitFor(t, 20*time.Second, "three conflicts", func() bool {
		for _, x := range c.conflicts("wh1", "negative-stock") {
			switch x.Location {
			case "BIN-N1":
				neg1 = x.ID
			case "BIN-N2":
				neg2 = x.ID
			}
		}
		if vs := c.conflicts("wh1", "variance"); len(vs) == 1 {
			variance = vs[0].ID
		}
		return neg1 != "" && neg2 != "" && variance != ""
	})
	require.Len(t, c.conflictsNotClosed("wh1"), 3)
	resolve := func(id, action string) conflictView {
		var res struct{ Conflict conflictView }
		require.Equal(t, http.StatusOK, c.call("POST", "/api/v1/conflicts/"+url.PathEscape(id)+"/resolve", map[string]any{"action": action, "by": "lead"}, &res))
		return res.Conflict
	}
	require.Equal(t, "acknowledged", resolve(neg1, "recount").Status, "a recount asked for is not done")
	require.Equal(t, "resolved", resolve(neg2, "adjust").Status, "the adjust is issued with the resolution")
	require.Equal(t, "resolved", resolve(variance, "accept").Status)
	require.Equal(t, []string{neg1 + " acknowledged"}, c.conflictsNotClosed("wh1"), "the recount is still to do")
	// The recount: a free count of the bin on the other gateway finds it empty.
	g2.scanAll(t, "CMD:COUNT", "LOC:BIN-N1", "CMD:DONE")
	want["BIN-N1/N"], want["BIN-N2/N"] = 0, 0
	require.Equal(t, want, c.waitConverged("wh1", g1, g2))

	// End of shift: nothing stands but what is still true — R is at 2,
	// at or below its point 3.
	var standing, notClosed []string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		standing, notClosed = c.alertsOf("standing=true"), c.conflictsNotClosed("wh1")
		if (len(notClosed) == 0 && slices.Equal(standing, []string{"reorder R open"})) || time.Now().After(deadline) {
			break
		}
	}
	require.Equal(t, []string{"reorder R open"}, standing, "standing alerts at the end (all: %v)", c.alertsOf(""))
	require.Empty(t, notClosed, "conflicts not closed at the end")
	require.Len(t, c.conflicts("wh1", "variance"), 1, "the recount of a −1 bin to 0 raised no found stock")
	var tasks struct{ Items []taskView }
	getJSON(t, "http://"+c.httpAddr+"/api/v1/tasks?warehouse=wh1", &tasks)
	require.NotEmpty(t, tasks.Items)
	for _, tk := range tasks.Items {
		require.Equal(t, "done", tk.Status, "task %s", tk.ID)
	}
	t.Logf("end of shift: alerts %v; conflicts not closed %v", c.alertsOf(""), c.conflictsNotClosed("wh1"))
}
