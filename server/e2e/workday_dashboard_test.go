package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// browser drives one headless Chromium over the cluster's dashboard.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
}

// newBrowser starts Chromium with a window of w×h pixels on the
// dashboard's first page.
func newBrowser(t *testing.T, c *cluster, w, h int) *browser {
	bin := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-quic", true), chromedp.NoFirstRun,
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(w, h))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	b := &browser{t: t, ctx: ctx, base: "http://" + c.httpAddr}
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(b.base+"/")), "the browser starts")
	return b
}

// step runs actions with a deadline.
func (b *browser) step(what string, d time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	require.NoError(b.t, chromedp.Do(ctx, steps...), what)
}

// open loads a dashboard page and waits until it has drawn.
func (b *browser) open(page string) {
	b.t.Helper()
	b.step("open "+page, 30*time.Second, chromedp.Navigate(b.base+"/dashboard/"+page), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="1"]`)))
}

// eval returns a JavaScript expression's value.
func eval[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	require.NoError(b.t, err, js)
	return v
}

// rows returns the text of every cell of the rows matching sel, by row.
func (b *browser) rows(sel string) [][]string {
	b.t.Helper()
	return eval[[][]string](b, fmt.Sprintf(`[...document.querySelectorAll(%q)].map((r) => [...r.cells].map((c) => c.textContent.trim()))`, sel))
}

// marks returns the data-y of every mark (rect.bar or circle.pt) matching sel.
func (b *browser) marks(sel string) []float64 {
	b.t.Helper()
	return eval[[]float64](b, fmt.Sprintf(`[...document.querySelectorAll(%q)].map((e) => Number(e.dataset.y))`, sel))
}

// screenshot saves the viewport as name in the artefacts, and in docs/
// with SHELFSYNC_UPDATE_SCREENSHOT=1.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	require.NoError(b.t, err)
	require.NoError(b.t, os.WriteFile(filepath.Join(artifacts(b.t), name), png, 0o644))
	if os.Getenv("SHELFSYNC_UPDATE_SCREENSHOT") != "" {
		require.NoError(b.t, os.WriteFile(filepath.Join("..", "..", "docs", name), png, 0o644))
	}
}

func sum(xs []float64) (n float64) {
	for _, x := range xs {
		n += x
	}
	return n
}

// TestIntegrationDashboardDayPages drives every page of the day's work in
// headless Chromium over a warehouse with a receiving shift behind it, and
// checks what each shows against the seeded data and the API: stock
// without its zero rows unless asked, a key's on-hand plot, each gateway's
// ingest plot, orders by status/channel/owner and per hour, task progress
// per zone and gateway, receipt progress and the dock queue, the reorder
// list, and master data with a CSV import. Each page's screenshot goes to
// the artefacts (docs/dashboard-*.png with SHELFSYNC_UPDATE_SCREENSHOT=1).
func TestIntegrationDashboardDayPages(t *testing.T) {
	c := newCluster(t)
	dock, pick := c.newGateway("wh1", "dock1"), c.newGateway("wh1", "pick1")
	setupMasterData(t, c) // shift_test.go: 7 locations, 4 items, POs P1 (MILK 10, BOLT 5) and P2 (SOAP 4) at RECEIVING
	c.mustDo("POST", "/api/v1/masterdata/wh1/thresholds", []map[string]any{
		{"sku": "MILK", "reorder_point": 8, "reorder_qty": 12}, {"sku": "SOAP", "reorder_point": 3, "max": 10}}, nil)
	waitFor(t, 20*time.Second, "master data at both gateways", func() bool {
		d, p := dock.screen(), pick.screen()
		return len(d.POs) == 2 && d.Counts["items"] == 4 && p.Counts["items"] == 4
	})
	// a receiving shift: P1 short, P2 partly; the milk put away, the rest
	// waiting at the dock
	dock.scanAll(t, "CMD:RECEIVE", "PO:P1", "QTY:6", milkA, "QTY:3", bolt, "CMD:DONE")
	dock.scanAll(t, "CMD:RECEIVE", "PO:P2", "QTY:2", "SKU:SOAP", "CMD:DONE")
	dock.scanAll(t, "CMD:PUTAWAY", "QTY:6", milkA, "LOC:A-01", "CMD:DONE")
	for _, ch := range []string{"web", "marketplace"} {
		c.mustDo("PUT", "/api/v1/channels/"+ch, map[string]any{"share_pct": 100}, nil)
	}
	waitFor(t, 20*time.Second, "the milk put away at the server", func() bool { return c.ledger("wh1")["A-01/MILK/LOT-A"] == 6 })
	for i, o := range []struct{ id, channel, sku string }{{"O1", "web", "MILK"}, {"O2", "web", "MILK"}, {"O3", "marketplace", "MILK"}} {
		c.mustDo("POST", "/api/v1/orders", map[string]any{"warehouse": "wh1", "channel": o.channel, "external_id": fmt.Sprint(i + 1), "id": o.id,
			"lines": []map[string]any{{"sku": o.sku, "qty": 2 - i%2}}}, nil)
	}
	c.mustDo("POST", "/api/v1/orders/wh1/O3/cancel", nil, nil)
	c.mustDo("POST", "/api/v1/routing/wh1/count-tasks", map[string]any{"location": "B-01", "reason": "cycle count"}, nil)
	// one of O1's two picked, the task left open (no CMD:DONE, which would
	// record a short pick: the bin's other unit taken off and counted)
	pick.scanAll(t, "CMD:PICK", "ORD:O1", "LOC:A-01", milkA)
	waitFor(t, 20*time.Second, "the pick at the server", func() bool {
		return c.ledger("wh1")["A-01/MILK/LOT-A"] == 5 && dock.status().OutboxDepth == 0 && pick.status().OutboxDepth == 0
	})

	b := newBrowser(t, c, 1280, 900)
	api := func(path string, v any) { getJSON(t, b.base+path, v) }

	t.Run("overview: stock without zero rows, a key's history plot, ingest plots", func(t *testing.T) {
		b.t = t
		b.open("")
		b.step("stock rows", 20*time.Second, chromedp.WaitVisible(chromedp.CSS(`tr[data-key="wh1|RECEIVING|BOLT|"]`)))
		require.Empty(t, b.rows(`#stock-body tr[data-key="wh1|RECEIVING|MILK|LOT-A"]`), "the milk put away left a 0 at RECEIVING: hidden")
		for _, r := range b.rows(`#stock-body tr[data-key]`) {
			require.NotEqual(t, "0", r[3], "no row at 0: %v", r)
		}
		b.step("show zero rows", 20*time.Second, chromedp.Click(chromedp.CSS(`#stock-zero`)),
			chromedp.WaitVisible(chromedp.CSS(`tr[data-key="wh1|RECEIVING|MILK|LOT-A"]`)))
		require.Equal(t, [][]string{{"RECEIVING", "MILK", "LOT-A", "0"}}, b.rows(`tr[data-key="wh1|RECEIVING|MILK|LOT-A"]`))

		var h struct {
			Items []struct {
				OnHand int64 `json:"on_hand"`
			}
		}
		api("/api/v1/stock/history?warehouse=wh1&location=A-01&sku=MILK&lot=LOT-A", &h)
		require.Len(t, h.Items, 2, "put away, then picked")
		b.step("a key's history plot", 20*time.Second, chromedp.Click(chromedp.CSS(`tr[data-key="wh1|A-01|MILK|LOT-A"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#history svg[data-plot="history"]`)))
		require.Equal(t, []float64{6, 5}, b.marks(`#history svg[data-plot="history"] circle.pt`), "one point per op, at the on-hand after it")

		var series struct {
			Items []struct {
				Warehouse, Gateway string
				Points             []struct{ Applied float64 }
			}
		}
		api("/api/v1/gateways/series?warehouse=wh1", &series)
		require.Len(t, series.Items, 2)
		for _, g := range series.Items {
			var applied float64
			for _, p := range g.Points {
				applied += p.Applied
			}
			require.Positive(t, applied, g.Gateway)
			sel := fmt.Sprintf(`figure[data-gateway="wh1/%s"] svg[data-plot="ingest"] rect.bar`, g.Gateway)
			b.step("the ingest plot of "+g.Gateway, 45*time.Second, chromedp.Poll[chromedp.Void](fmt.Sprintf(
				`(() => { const m = [...document.querySelectorAll(%q)]; return m.length === 60 && m.reduce((n, e) => n + Number(e.dataset.y), 0) === %v; })()`, sel, applied),
				chromedp.WithPollingTimeout(40*time.Second), chromedp.WithPollingInterval(500*time.Millisecond)))
			require.Len(t, b.marks(sel), 60, "one bar per minute of the hour")
		}
		b.screenshot("dashboard-overview.png")
	})

	t.Run("orders by status, channel and owner, and per hour", func(t *testing.T) {
		b.t = t
		b.open("work.html?view=orders&warehouse=wh1")
		require.Equal(t, [][]string{{"cancelled", "1"}, {"open", "2"}}, b.rows(`#by-status tbody tr`))
		require.Equal(t, [][]string{{"marketplace", "1", "0"}, {"web", "2", "2"}}, b.rows(`#by-channel tbody tr`))
		require.Equal(t, [][]string{{"(none)", "3", "2"}}, b.rows(`#by-owner tbody tr`), "no item has an owner yet")
		o1 := b.rows(`tr[data-order="wh1/O1"]`)
		require.Len(t, o1, 1)
		require.Equal(t, []string{"O1", "web", "", "open", "1", "1 / 2 (50%)"}, o1[0][:6])
		var ph struct {
			Total int
			Items []struct{ Orders float64 }
		}
		api("/api/v1/orders/per-hour?warehouse=wh1&hours=24", &ph)
		require.Equal(t, 3, ph.Total)
		bars := b.marks(`svg[data-plot="orders-per-hour"] rect.bar`)
		require.Len(t, bars, 24, "one bar per hour")
		want := make([]float64, 0, 24)
		for _, it := range ph.Items {
			want = append(want, it.Orders)
		}
		require.Equal(t, want, bars)
		require.EqualValues(t, 3, bars[23], "all three taken this hour")
		b.screenshot("dashboard-orders.png")
		b.step("connected to the live events", 20*time.Second, chromedp.WaitVisible(chromedp.CSS(`#live.on`)))
		require.True(t, eval[bool](b, `window.__sameDocument = true`))
		c.mustDo("POST", "/api/v1/orders", map[string]any{"warehouse": "wh1", "channel": "web", "external_id": "4", "id": "O4",
			"lines": []map[string]any{{"sku": "MILK", "qty": 1}}}, nil) // MILK: BOLT is only at RECEIVING, not sellable (409)
		b.step("a new order shows up without a reload", 20*time.Second, chromedp.WaitVisible(chromedp.CSS(`tr[data-order="wh1/O4"]`)))
		require.True(t, eval[bool](b, `window.__sameDocument === true`), "no reload happened")
		require.Equal(t, [][]string{{"cancelled", "1"}, {"open", "3"}}, b.rows(`#by-status tbody tr`))
		b.step("filter by channel", 20*time.Second, chromedp.SetValue(chromedp.CSS(`#f-channel`), "marketplace"),
			chromedp.Evaluate[chromedp.Void](`document.getElementById("f-channel").dispatchEvent(new Event("change"))`),
			chromedp.Poll[chromedp.Void](`document.querySelectorAll("#orders-body tr[data-order]").length === 1`))
		require.Equal(t, "O3", b.rows(`#orders-body tr[data-order]`)[0][0])
		b.step("filter by an owner no order has", 20*time.Second, chromedp.SetValue(chromedp.CSS(`#f-channel`), ""),
			chromedp.SetValue(chromedp.CSS(`#f-owner`), "acme"),
			chromedp.Evaluate[chromedp.Void](`document.getElementById("f-owner").dispatchEvent(new Event("change"))`),
			chromedp.Poll[chromedp.Void](`document.querySelectorAll("#orders-body tr[data-order]").length === 0`))
		// BOLT becomes acme's item: an order of it is acme's order
		c.mustDo("POST", "/api/v1/masterdata/wh1/items", []map[string]any{{"sku": "BOLT", "gtins": []string{bolt}, "owner": "acme"}}, nil)
		// (a channel that backorders: no BOLT is sellable yet)
		c.mustDo("PUT", "/api/v1/channels/b2b", map[string]any{"share_pct": 100, "policy": "backorder"}, nil)
		c.mustDo("POST", "/api/v1/orders", map[string]any{"warehouse": "wh1", "channel": "b2b", "external_id": "5", "id": "O5",
			"lines": []map[string]any{{"sku": "BOLT", "qty": 1}}}, nil)
		b.step("acme's order shows up under the owner filter", 20*time.Second,
			chromedp.WaitVisible(chromedp.CSS(`tr[data-order="wh1/O5"]`)))
		require.Equal(t, [][]string{{"acme", "1", "0"}}, b.rows(`#by-owner tbody tr`), "orders by owner: acme's one order (backordered)")
		require.Equal(t, []string{"O5", "b2b", "acme", "backordered"}, b.rows(`tr[data-order="wh1/O5"]`)[0][:4])
	})

	t.Run("tasks per zone and gateway with progress", func(t *testing.T) {
		b.t = t
		b.open("work.html?view=tasks&warehouse=wh1")
		var s struct {
			Groups []struct {
				Kind, Zone, Gateway                 string
				Tasks, Open, Done, Short, Cancelled int
				Qty, Picked                         int64
			}
		}
		api("/api/v1/tasks/summary?warehouse=wh1", &s)
		var want [][]string
		for _, g := range s.Groups {
			want = append(want, []string{g.Kind, g.Zone, g.Gateway, fmt.Sprint(g.Tasks), fmt.Sprint(g.Open), fmt.Sprint(g.Done), fmt.Sprint(g.Short)})
		}
		got := b.rows(`#groups-body tr[data-kind]`)
		for i := range got {
			got[i] = got[i][:7]
		}
		require.Equal(t, want, got)
		count := b.rows(`#groups-body tr[data-kind="count"][data-zone="PICK"]`)
		require.Len(t, count, 1)
		require.Equal(t, []string{"count", "PICK", "pick1", "1", "1", "0", "0", "0 / 1 (0%)"}, count[0], "the count task of B-01, zone PICK, served by pick1")
		picks := b.rows(`#groups-body tr[data-kind="pick"][data-zone="PICK"]`)
		require.Len(t, picks, 1)
		require.Equal(t, "pick1", picks[0][2])
		b.step("the open tasks", 20*time.Second, chromedp.WaitVisible(chromedp.CSS(`#tasks-body tr[data-task]`)))
		b.screenshot("dashboard-tasks.png")
	})

	t.Run("purchase orders, receipt progress and the dock queue", func(t *testing.T) {
		b.t = t
		b.open("work.html?view=receiving&warehouse=wh1")
		p1, p2 := b.rows(`tr[data-po="P1"]`), b.rows(`tr[data-po="P2"]`)
		require.Len(t, p1, 1)
		require.Len(t, p2, 1)
		require.Equal(t, []string{"P1", "Dairy & Bolts", "RECEIVING"}, p1[0][:3])
		require.Equal(t, "9 / 15 (60%)", p1[0][4], "6 of 10 MILK and 3 of 5 BOLT")
		require.Equal(t, "2 / 4 (50%)", p2[0][4])
		dockRows := b.rows(`#dock-body tr[data-key]`)
		sort.Slice(dockRows, func(i, j int) bool { return dockRows[i][1] < dockRows[j][1] })
		require.Len(t, dockRows, 2, "BOLT and SOAP wait at RECEIVING; the milk was put away: %v", dockRows)
		require.Equal(t, []string{"RECEIVING", "BOLT", "", "3"}, dockRows[0][:4])
		require.Equal(t, []string{"RECEIVING", "SOAP", "", "2"}, dockRows[1][:4])
		ages := eval[[]string](b, `[...document.querySelectorAll("#dock-body td.age")].map((e) => e.dataset.seconds)`)
		require.Len(t, ages, 2)
		b.screenshot("dashboard-receiving.png")
	})

	t.Run("the reorder list", func(t *testing.T) {
		b.t = t
		b.open("work.html?view=reorder&warehouse=wh1")
		var r struct {
			Items []struct {
				SKU       string
				Suggested int64 `json:"suggested_qty"`
			}
		}
		api("/api/v1/reorder/wh1", &r)
		require.Len(t, r.Items, 2)
		rows := b.rows(`#reorder-body tr[data-sku]`)
		var skus []string
		for _, row := range rows {
			skus = append(skus, row[0])
		}
		require.Equal(t, []string{"MILK", "SOAP"}, skus, "MILK (5 ≤ 8) and SOAP (2 ≤ 3); BOLT's 3 is above its point 2")
		require.Equal(t, []string{"MILK", "5", "8"}, rows[0][:3])
		require.Equal(t, "12", rows[0][5], "no max: the reorder quantity")
		require.Equal(t, []string{"SOAP", "2", "3"}, rows[1][:3])
		require.Equal(t, "10", rows[1][4])
		require.Equal(t, fmt.Sprint(r.Items[1].Suggested), rows[1][5], "SOAP: max 10 − 2 on hand − what P2 still expects")
		b.screenshot("dashboard-reorder.png")
	})

	t.Run("master data, read-only, with a CSV import", func(t *testing.T) {
		b.t = t
		b.open("work.html?view=masterdata&warehouse=wh1")
		ids := eval[[]string](b, `[...document.querySelectorAll("#md-body tr[data-id]")].map((r) => r.dataset.id)`)
		require.Equal(t, []string{"BOLT", "MILK", "SOAP", "TEA"}, ids)
		href := eval[string](b, `document.getElementById("md-export").getAttribute("href")`)
		require.Equal(t, "/api/v1/masterdata/wh1/items?format=csv", href)
		require.Zero(t, eval[int](b, `document.querySelectorAll("#md input:not([type=file]), #md button").length`), "no editing on the master data table")
		b.step("locations", 20*time.Second, chromedp.SetValue(chromedp.CSS(`#f-kind`), "locations"),
			chromedp.Evaluate[chromedp.Void](`document.getElementById("f-kind").dispatchEvent(new Event("change"))`),
			chromedp.Poll[chromedp.Void](`document.querySelectorAll("#md-body tr[data-id]").length === 7`))
		require.Equal(t, []string{"RECEIVING", "DOCK", "dock", "", "", ""}, b.rows(`#md-body tr[data-id="RECEIVING"]`)[0])
		b.screenshot("dashboard-masterdata.png")

		csv := filepath.Join(t.TempDir(), "items.csv")
		require.NoError(t, os.WriteFile(csv, []byte("sku,description\nJAM,Strawberry jam\n,no sku\n"), 0o644))
		b.step("import a CSV", 30*time.Second, chromedp.Click(chromedp.CSS(`#md-import`)),
			chromedp.SetValue(chromedp.CSS(`#import-kind`), "items"),
			chromedp.SetUploadFiles(chromedp.CSS(`#import-file`), []string{csv}),
			chromedp.Click(chromedp.CSS(`#import-form button[type=submit]`)),
			chromedp.Poll[chromedp.Void](`document.getElementById("import-result").dataset.imported === "1"`),
			chromedp.WaitVisible(chromedp.CSS(`#md-body tr[data-id="JAM"]`)))
		res := eval[string](b, `document.getElementById("import-result").textContent`)
		require.Contains(t, res, "1 imported, 1 refused")
		require.Contains(t, res, "line 3")
		var items struct {
			Items []struct{ SKU, Description string }
		}
		api("/api/v1/masterdata/wh1/items", &items)
		require.Len(t, items.Items, 5)
		require.Equal(t, "Strawberry jam", items.Items[1].Description, "JAM sorts second")
	})
}
