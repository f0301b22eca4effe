package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/testbed"
)

// chromium returns the browser (SHELFSYNC_TEST_CHROMIUM or CHROMIUM
// override Debian's chromium). Without one the test skips, unless
// SHELFSYNC_INTEGRATION is set: then it fails.
func chromium(t *testing.T) string {
	for _, p := range []string{os.Getenv("SHELFSYNC_TEST_CHROMIUM"), os.Getenv("CHROMIUM"), "/usr/bin/chromium", "chromium"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	const why = "no chromium binary: install Debian's chromium package (deploy/dev/services.sh does) or set SHELFSYNC_TEST_CHROMIUM"
	if testbed.Integration() {
		t.Fatal(why)
	}
	t.Skip(why)
	return ""
}

// artifacts returns the directory test artefacts go to
// (SHELFSYNC_ARTIFACTS, default $TMPDIR/shelfsync-artifacts).
func artifacts(t *testing.T) string {
	dir := os.Getenv("SHELFSYNC_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "shelfsync-artifacts")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// TestIntegrationDashboardLiveScanAndConflict drives the dashboard in
// headless Chromium: the page loads, a scan made through the simulator
// appears without a reload, resolving a conflict with one click works, and
// a screenshot is saved (and, with SHELFSYNC_UPDATE_SCREENSHOT=1, copied to
// docs/dashboard.png for the README).
func TestIntegrationDashboardLiveScanAndConflict(t *testing.T) {
	chromium(t) // skips early without a browser
	c := newCluster(t)
	g1, g2 := c.newGateway("wh1", "dock-1"), c.newGateway("wh1", "pick-1")
	// GADGET's 12 received below sit above its reorder point 11: the pick
	// further down crosses it (a reorder alert; conflicts are notifications
	// of their own, not alerts)
	require.Equal(t, 200, c.call("POST", "/api/v1/masterdata/wh1/thresholds", []map[string]any{{"sku": "GADGET", "reorder_point": 11, "reorder_qty": 10}}, nil))
	// a warehouse with some life in it
	g1.scan("CMD:RECEIVE", "LOC:A-01", "QTY:24", "SKU:WIDGET", "LOC:A-02", "QTY:12", "SKU:GADGET", "LOC:B-01", "QTY:6", "SKU:SPROCKET", "CMD:DONE")
	g1.waitBeeps(10)
	waitFor(t, 20*time.Second, "the receipt at the server (orders are admitted against its stock)", func() bool {
		l := c.ledger("wh1")
		return l["A-01/WIDGET"] == 24 && l["A-02/GADGET"] == 12 && l["B-01/SPROCKET"] == 6
	})
	require.Equal(t, 200, c.call("PUT", "/api/v1/channels/web", map[string]any{"share_pct": 100}, nil))
	require.Equal(t, 200, c.call("PUT", "/api/v1/channels/marketplace", map[string]any{"share_pct": 50, "cap": 5}, nil))
	require.Equal(t, 201, c.call("POST", "/api/v1/orders", map[string]any{"warehouse": "wh1", "channel": "web", "external_id": "5001",
		"lines": []map[string]any{{"sku": "WIDGET", "qty": 4}, {"sku": "GADGET", "qty": 2}}}, nil))
	require.Equal(t, 201, c.call("POST", "/api/v1/orders", map[string]any{"warehouse": "wh1", "channel": "web", "external_id": "5002",
		"lines": []map[string]any{{"sku": "SPROCKET", "qty": 6}}}, nil)) // all there is
	g2.scan("CMD:PICK", "LOC:C-09", "SKU:GADGET", "CMD:DONE") // from an empty bin: a negative-stock conflict
	g2.waitBeeps(4)
	g2.scan("CMD:PICK", "LOC:B-01", "SKU:SPROCKET", "CMD:DONE") // a unit leaves for no order: 5 for 6 reserved, an oversell alert
	g2.waitBeeps(8)
	waitFor(t, 15*time.Second, "the conflict", func() bool { return len(c.conflicts("wh1", "negative-stock")) == 1 })
	conflict := c.conflicts("wh1", "negative-stock")[0]

	br := newBrowser(t, c, 1440, 1100) // workday_dashboard_test.go
	ctx, base := br.ctx, br.base
	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
		defer scancel()
		require.NoError(t, chromedp.Do(sctx, steps...), what)
	}
	for _, sel := range []string{`body[data-ready="1"]`, `tr[data-key="wh1|A-01|WIDGET|"]`, `#live.on`, `.card[data-warehouse="wh1"]`,
		`tr[data-gateway="wh1/dock-1"]`, `#av-body tr[data-sku="WIDGET"]`, `#al-body tr[data-alert-id]`} {
		step("dashboard ready with stock and the live feed: "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	}
	step("name the person", chromedp.SetValue(chromedp.CSS(`#me`), "lead"))
	_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__sameDocument = true`))
	require.NoError(t, err)

	// a scan through the simulator appears without a reload
	g1.scan("CMD:RECEIVE", "LOC:A-03", "QTY:7", "SKU:GIZMO", "CMD:DONE")
	step("the new stock shows up live",
		chromedp.WaitVisible(chromedp.CSS(`tr[data-key="wh1|A-03|GIZMO|"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#feed li`)),
	)
	same, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__sameDocument === true`))
	require.NoError(t, err)
	require.True(t, same, "no reload happened")
	qty, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`tr[data-key="wh1|A-03|GIZMO|"] td.onhand`)))
	require.NoError(t, err)
	require.Equal(t, "7", qty)
	step("a key's history", chromedp.Click(chromedp.CSS(`tr[data-key="wh1|A-01|WIDGET|"]`)), chromedp.WaitVisible(chromedp.CSS(`#history table`)))

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	shot := filepath.Join(artifacts(t), "dashboard.png")
	require.NoError(t, os.WriteFile(shot, png, 0o644))
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))

	// one-click resolution
	row := fmt.Sprintf(`tr[data-conflict-id=%q]`, conflict.ID)
	step("resolve the conflict",
		chromedp.WaitVisible(chromedp.CSS(row+` button[data-action="accept"]`)),
		chromedp.Click(chromedp.CSS(row+` button[data-action="accept"]`)),
	)
	waitFor(t, 15*time.Second, "the conflict resolved by the person named in the page", func() bool {
		var body struct {
			Items []struct {
				ID, Status string
				ResolvedBy string `json:"resolved_by"`
			}
		}
		getJSON(t, base+"/api/v1/conflicts?warehouse=wh1&kind=negative-stock", &body)
		return len(body.Items) == 1 && body.Items[0].Status == "resolved" && body.Items[0].ResolvedBy == "lead"
	})
	step("the row leaves the open conflicts", chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelector(%q) === null`, row)))
	png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(artifacts(t), "dashboard-resolved.png"), png, 0o644))

	// The README shows the first screenshot; refresh it on request only,
	// so a test run leaves the working tree clean.
	if os.Getenv("SHELFSYNC_UPDATE_SCREENSHOT") == "" {
		t.Logf("screenshot saved to %s (SHELFSYNC_UPDATE_SCREENSHOT=1 copies it to docs/dashboard.png)", shot)
		return
	}
	docs := filepath.Join("..", "..", "docs")
	require.NoError(t, os.MkdirAll(docs, 0o755))
	b, err := os.ReadFile(shot)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(docs, "dashboard.png"), b, 0o644))
}
