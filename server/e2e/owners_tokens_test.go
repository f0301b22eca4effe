package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/server/internal/auth"
)

// ownerRefused sums shelfsync_api_owner_refused_total over its routes, read
// from the server's /metrics with a token of no owner.
func ownerRefused(t *testing.T, c *cluster, tok string) float64 {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+c.httpAddr+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	sum := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "shelfsync_api_owner_refused_total{"); ok {
			_, v, _ := strings.Cut(rest, "} ")
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			require.NoError(t, err, line)
			sum += f
		}
	}
	return sum
}

// ownedAvailability is an owner's availability (topic and webhook).
type ownedAvailability struct {
	availability
	Owner string `json:"owner"`
}

// TestTwoOwnersTokensOverRealProcesses is the owners' done-when over a
// real server, agent and scanner: acme and globex keep one carton (one
// GTIN) under their own skus in one warehouse, received by scan into each
// owner's bin. Each owner's token sees only its stock, orders and
// availability; every write to the other's data is 403 and changes
// nothing; each owner's retained availability topic and webhook endpoint
// carry only its skus and its orders, while the operator's token sees
// both owners.
func TestTwoOwnersTokensOverRealProcesses(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tokens")
	opsTok, err := auth.AddToken(path, "ops", auth.RoleAdmin)
	require.NoError(t, err)
	acmeTok, err := auth.AddOwnerToken(path, "acme-shop", auth.RoleOperator, "acme")
	require.NoError(t, err)
	globexTok, err := auth.AddOwnerToken(path, "globex-shop", auth.RoleOperator, "globex")
	require.NoError(t, err)
	c := newClusterWith(t, "--api-tokens", path)
	c.token = opsTok
	as := func(tok string) *cluster { cc := *c; cc.token = tok; return &cc }
	acme, globex := as(acmeTok), as(globexTok)

	dock := c.newGateway("wh1", "dock1")
	c.mustDo("POST", "/api/v1/masterdata/wh1/zones", []map[string]any{{"zone": "DOCK", "gateway": "dock1"}}, nil)
	c.mustDo("POST", "/api/v1/masterdata/wh1/locations", []map[string]any{
		{"code": "RECEIVING", "zone": "DOCK", "type": "dock"},
		{"code": "A-01", "zone": "DOCK", "type": "storage", "sellable": true, "owner": "acme"},
		{"code": "B-01", "zone": "DOCK", "type": "storage", "sellable": true, "owner": "globex"}}, nil)
	c.mustDo("POST", "/api/v1/masterdata/wh1/items", []map[string]any{
		{"sku": "ACME-MILK", "gtins": []string{milkGTIN}, "owner": "acme"},
		{"sku": "GLOBEX-MILK", "gtins": []string{milkGTIN}, "owner": "globex"}}, nil)
	waitFor(t, 30*time.Second, "both owners' items and the locations at the gateway", func() bool {
		s := dock.screen()
		return s.Counts["items"] == 2 && s.Counts["locations"] == 3
	})
	topics := c.tap("shelfsync/v1/owners/+/channels/web/availability")
	ownerAlerts := c.tap("shelfsync/v1/owners/+/alerts")
	c.mustDo("POST", "/api/v1/masterdata/wh1/thresholds", []map[string]any{{"sku": "ACME-MILK", "reorder_point": 3}}, nil)
	c.mustDo("PUT", "/api/v1/channels/web", map[string]any{"share_pct": 100}, nil)
	hooks := map[string]*hookReceiver{}
	for owner, cl := range map[string]*cluster{"acme": acme, "globex": globex} {
		rcv := newHookReceiver(t)
		rcv.start()
		rcv.register(cl, map[string]any{"events": []string{"availability", "order"}})
		hooks[owner] = rcv
	}

	ean := strings.TrimPrefix(milkGTIN, "0")
	b := dock.scanAll(t, "OP:alice", "CMD:RECEIVE", "LOC:A-01", "QTY:5", ean, "LOC:B-01", "QTY:7", ean, "CMD:DONE")
	require.Equal(t, 0, b["bad"], "%v", dock.reasons(""))
	owners := func(cl *cluster, path string) map[string]int64 {
		var body struct {
			Items []struct {
				SKU    string
				Owner  string
				OnHand int64 `json:"on_hand"`
			}
		}
		require.Equal(t, 200, cl.call("GET", path, nil, &body))
		out := map[string]int64{}
		for _, it := range body.Items {
			out[it.Owner+"/"+it.SKU] += it.OnHand
		}
		return out
	}
	waitFor(t, 30*time.Second, "both owners' stock at the server", func() bool {
		return len(owners(c, "/api/v1/stock?warehouse=wh1")) == 2
	})
	require.Equal(t, map[string]int64{"acme/ACME-MILK": 5}, owners(acme, "/api/v1/stock?warehouse=wh1"))
	require.Equal(t, map[string]int64{"globex/GLOBEX-MILK": 7}, owners(globex, "/api/v1/stock?warehouse=wh1"))
	require.Equal(t, 403, acme.call("GET", "/api/v1/stock?warehouse=wh1&owner=globex", nil, nil))

	// orders: each its own; the other's skus and orders are 403
	order := func(cl *cluster, ext, sku string) int {
		return cl.call("POST", "/api/v1/orders", map[string]any{"warehouse": "wh1", "channel": "web", "external_id": ext,
			"lines": []map[string]any{{"sku": sku, "qty": 1}}}, nil)
	}
	waitFor(t, 30*time.Second, "the order model sees the stock", func() bool {
		var a struct{ Items []struct{ Available int64 } }
		return c.call("GET", "/api/v1/availability?warehouse=wh1", nil, &a) == 200 && len(a.Items) == 2 &&
			a.Items[0].Available > 0 && a.Items[1].Available > 0
	})
	require.Equal(t, 201, order(acme, "A1", "ACME-MILK"))
	require.Equal(t, 201, order(globex, "G1", "GLOBEX-MILK"))
	require.Equal(t, 403, order(acme, "A2", "GLOBEX-MILK"), "acme orders globex's milk")
	require.Equal(t, 404, c.call("GET", "/api/v1/orders/wh1/web-A2", nil, nil), "nothing was taken")
	require.Equal(t, 403, acme.call("GET", "/api/v1/orders/wh1/web-G1", nil, nil))
	require.Equal(t, 403, acme.call("POST", "/api/v1/orders/wh1/web-G1/cancel", nil, nil))
	require.Equal(t, 403, acme.call("POST", "/api/v1/holds", map[string]any{"warehouse": "wh1", "channel": "web", "checkout_id": "x",
		"lines": []map[string]any{{"sku": "GLOBEX-MILK", "qty": 1}}}, nil))
	var g1 orderView
	require.Equal(t, 200, globex.call("GET", "/api/v1/orders/wh1/web-G1", nil, &g1))
	require.Equal(t, "open", g1.Status, "acme's cancel changed nothing")
	byOwner := func(cl *cluster) map[string]int64 {
		var body struct {
			Items []struct{ ID, Owner string }
		}
		require.Equal(t, 200, cl.call("GET", "/api/v1/orders", nil, &body))
		out := map[string]int64{}
		for _, o := range body.Items {
			out[o.Owner+"/"+o.ID]++
		}
		return out
	}
	require.Equal(t, map[string]int64{"acme/web-A1": 1}, byOwner(acme))
	require.Equal(t, map[string]int64{"globex/web-G1": 1}, byOwner(globex))
	require.Equal(t, map[string]int64{"acme/web-A1": 1, "globex/web-G1": 1}, byOwner(c))

	// availability: the API, the retained per-owner topic, the owner's webhook
	skus := func(cl *cluster) map[string]int64 {
		var a struct {
			Items []struct {
				SKU       string
				Available int64
			}
		}
		require.Equal(t, 200, cl.call("GET", "/api/v1/availability?warehouse=wh1", nil, &a))
		out := map[string]int64{}
		for _, it := range a.Items {
			out[it.SKU] = it.Available
		}
		return out
	}
	require.Equal(t, map[string]int64{"ACME-MILK": 4}, skus(acme))
	require.Equal(t, map[string]int64{"GLOBEX-MILK": 6}, skus(globex))
	require.Equal(t, 403, acme.call("GET", "/api/v1/availability?owner=globex", nil, nil))
	lastOn := func(topic string) (ownedAvailability, bool) {
		var out ownedAvailability
		found := false
		for _, m := range topics.all() {
			if m.topic == topic {
				require.NoError(t, json.Unmarshal(m.payload, &out))
				found = true
			}
		}
		return out, found
	}
	for owner, want := range map[string]map[string]int64{"acme": {"ACME-MILK": 4}, "globex": {"GLOBEX-MILK": 6}} {
		topic := "shelfsync/v1/owners/" + owner + "/channels/web/availability"
		waitFor(t, 30*time.Second, owner+"'s topic offers its milk after its order", func() bool {
			a, ok := lastOn(topic)
			if !ok || len(a.Items) != 1 {
				return false
			}
			return a.of(a.Items[0].SKU) == want[a.Items[0].SKU]
		})
		for _, m := range topics.all() { // never the other owner's sku, on any message of the topic
			if m.topic == topic {
				var a ownedAvailability
				require.NoError(t, json.Unmarshal(m.payload, &a))
				require.Equal(t, owner, a.Owner)
				for _, it := range a.Items {
					require.Contains(t, want, it.SKU, "%s's topic: %s", owner, m.payload)
				}
			}
		}
		rcv := hooks[owner]
		waitFor(t, 30*time.Second, owner+"'s webhook gets its order and availability", func() bool {
			as := rcv.received("availability")
			if len(as) == 0 || len(rcv.received("order")) == 0 {
				return false
			}
			var a ownedAvailability
			require.NoError(t, json.Unmarshal(as[len(as)-1].body, &a))
			return len(a.Items) == 1 && a.of(a.Items[0].SKU) == want[a.Items[0].SKU]
		})
		for _, d := range rcv.received("") {
			switch d.event {
			case "availability":
				var a ownedAvailability
				require.NoError(t, json.Unmarshal(d.body, &a))
				require.Equal(t, owner, a.Owner)
				for _, it := range a.Items {
					require.Contains(t, want, it.SKU, "%s's webhook: %s", owner, d.body)
				}
			case "order":
				var o struct{ Order struct{ Owner string } }
				require.NoError(t, json.Unmarshal(d.body, &o))
				require.Equal(t, owner, o.Order.Owner, "%s's webhook got %s", owner, d.body)
			}
		}
	}

	// acme's alerts on its own topic: a pick takes ACME-MILK down to its
	// reorder point (2 picked of the 5 on hand: 5 → 3)
	b = dock.scanAll(t, "CMD:PICK", "LOC:A-01", "QTY:2", ean, "CMD:DONE")
	require.Equal(t, 0, b["bad"], "%v", dock.reasons(""))
	type alertMsg struct{ Kind, SKU, Owner, Warehouse, Status string }
	onTopic := func(owner string) []alertMsg {
		var out []alertMsg
		for _, m := range ownerAlerts.all() {
			if m.topic == "shelfsync/v1/owners/"+owner+"/alerts" {
				var a alertMsg
				require.NoError(t, json.Unmarshal(m.payload, &a), string(m.payload))
				out = append(out, a)
			}
		}
		return out
	}
	waitFor(t, 30*time.Second, "acme's reorder alert on acme's alerts topic", func() bool {
		for _, a := range onTopic("acme") {
			if a.Kind == "reorder" && a.SKU == "ACME-MILK" && a.Status == "open" {
				return true
			}
		}
		return false
	})
	for _, a := range onTopic("acme") {
		require.Equal(t, "acme", a.Owner, "acme's topic: %+v", a)
		require.Equal(t, "wh1", a.Warehouse)
	}
	for _, a := range onTopic("globex") {
		require.Equal(t, "globex", a.Owner, "globex's topic carries none of acme's: %+v", a)
	}

	// the dashboard: with acme's token it shows acme's stock and
	// availability; with the operator's, its Owner field narrows it to globex
	t.Run("dashboard", func(t *testing.T) { // skipped without chromium, like the other dashboard tests
		br := newBrowser(t, c, 1280, 900)
		shows := func(tok, ownerField string) (stock, avail []string) {
			// on a page of the origin without scripts: a dashboard left open
			// would go on (its live feed) with the new token before it reloads
			br.step("log in", 20*time.Second, chromedp.Navigate(br.base+"/healthz"), chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
				`localStorage.setItem("shelfsync.token", %q); localStorage.setItem("shelfsync.owner", %q)`, tok, ownerField)))
			br.open("")
			br.step("stock and availability drawn", 20*time.Second, chromedp.WaitVisible(chromedp.CSS(`#stock-body tr[data-key]`)),
				chromedp.WaitVisible(chromedp.CSS(`#av-body tr[data-sku]`)))
			return eval[[]string](br, `[...document.querySelectorAll("#stock-body tr[data-key]")].map((r) => r.dataset.key)`),
				eval[[]string](br, `[...document.querySelectorAll("#av-body tr[data-sku]")].map((r) => r.dataset.sku)`)
		}
		refusedBefore := ownerRefused(t, c, opsTok)
		// an Owner filter left in the browser (globex) is no 403 for acme's token: it sees its own
		stockRows, availRows := shows(acmeTok, "globex")
		require.Equal(t, []string{"wh1|A-01|ACME-MILK||acme|available"}, stockRows)
		require.Equal(t, []string{"ACME-MILK"}, availRows)

		// what acme's token may not use is left out with a note, never a 403
		require.True(t, eval[bool](br, `document.getElementById("gateways").hidden && document.getElementById("ingest-section").hidden`),
			"the gateway and ingest panels are hidden")
		require.Equal(t, []string{"Gateways", "Ingest and backlog per gateway"},
			eval[[]string](br, `[...document.querySelectorAll("main .owner-note")].filter((n) => n.offsetParent).map((n) => n.dataset.ownerNote)`))
		require.Contains(t, eval[string](br, `document.querySelector('[data-owner-note="Gateways"]').textContent`), "not available to client tokens")
		require.Equal(t, []string{"Overview", "Orders", "Reorder", "Master data"}, eval[[]string](br, `[...document.querySelectorAll("#nav a")].map((a) => a.textContent)`),
			"no Tasks or Receiving page in the navigation")
		require.NotContains(t, eval[string](br, `document.body.innerText`), "bound to owner", "no 403 shown")
		for _, view := range []string{"tasks", "receiving"} {
			br.open("work.html?view=" + view)
			require.True(t, eval[bool](br, `!document.getElementById("view-note").hidden && [...document.querySelectorAll("div.view")].every((v) => v.hidden)`), view)
			require.Contains(t, eval[string](br, `document.getElementById("view-note").textContent`), "not available to client tokens", view)
			require.NotContains(t, eval[string](br, `document.body.innerText`), "bound to owner", view)
		}
		for _, view := range []string{"orders", "reorder", "masterdata"} { // the pages it may use draw without an error
			br.open("work.html?view=" + view)
			require.Empty(t, eval[string](br, `document.getElementById("status-line").textContent`), view)
			require.True(t, eval[bool](br, `document.getElementById("view-note").hidden`), view)
		}
		require.Equal(t, []string{"items"}, eval[[]string](br, `[...document.querySelectorAll("#f-kind option")].map((o) => o.value)`),
			"of master data a client's token reads its items")
		require.Equal(t, []string{"ACME-MILK"}, eval[[]string](br, `[...document.querySelectorAll("#md-body tr[data-id]")].map((r) => r.dataset.id)`))
		require.True(t, eval[bool](br, `document.getElementById("import").hidden`), "no import for a client's token")
		require.Equal(t, refusedBefore, ownerRefused(t, c, opsTok), "the dashboard asked the server nothing acme's token may not have")
		// the metric does count a refusal (it is not dead)
		require.Equal(t, 403, acme.call("GET", "/api/v1/gateways", nil, nil))
		require.Equal(t, refusedBefore+1, ownerRefused(t, c, opsTok))
		stockRows, availRows = shows(opsTok, "globex")
		require.Equal(t, []string{"wh1|B-01|GLOBEX-MILK||globex|available"}, stockRows)
		require.Equal(t, []string{"GLOBEX-MILK"}, availRows)
		stockRows, _ = shows(opsTok, "")
		require.Len(t, stockRows, 2, "the operator's token without the filter: both owners")
	})
}
