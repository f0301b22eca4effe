package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/alerts"
	"github.com/shelfsync/shelfsync/server/internal/auth"
	"github.com/shelfsync/shelfsync/server/internal/dashboard"
	"github.com/shelfsync/shelfsync/server/internal/expiry"
	"github.com/shelfsync/shelfsync/server/internal/masterdata"
	"github.com/shelfsync/shelfsync/server/internal/orders"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/webhooks"
)

// ownersWorld is one warehouse of two owners, acme and globex, behind the
// real token guard: each has its own item (MILK-A, MILK-G) and both hold
// the shared sku MILK at A-01 (one GTIN's units of two owners, told apart
// by the stock key's owner); each has an order, a checkout hold, a reorder
// alert, a negative-stock conflict, a near-expiry lot and a webhook
// endpoint. There is also a gateway alert, which is no owner's.
type ownersWorld struct {
	t   *testing.T
	url string
	// tokens: acme's and globex's (admin role: no role refusal hides an
	// owner rule) and the operator's, bound to no owner.
	acme, globex, ops string
	// ids of globex's records, and of acme's alert
	gAlert, aAlert, gateAlert, gHook, aHook string
	hub                                     *dashboard.Hub // the live feed
	logs                                    *lockedBuffer  // the handler's log
	// refused is shelfsync_api_owner_refused_total, fed by the guard and
	// the handler as the app wires them
	refused *prometheus.CounterVec
}

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newOwnersWorld(t *testing.T) *ownersWorld {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	path := filepath.Join(t.TempDir(), "tokens")
	w := &ownersWorld{t: t}
	var err error
	w.acme, err = auth.AddOwnerToken(path, "acme-erp", auth.RoleAdmin, "acme")
	require.NoError(t, err)
	w.globex, err = auth.AddOwnerToken(path, "globex-erp", auth.RoleAdmin, "globex")
	require.NoError(t, err)
	w.ops, err = auth.AddToken(path, "ops", auth.RoleAdmin)
	require.NoError(t, err)
	w.refused = NewOwnerRefusedCounter(prometheus.NewRegistry())
	g, st := guarded(t, path, func(c *auth.Config) {
		c.OwnerRefused = func(route string) { w.refused.WithLabelValues(route).Inc() }
	})
	owner := func(wh, sku string) (owner string, err error) { // as the app does: the item's owner in master data
		err = st.View(func(tx store.Tx) error {
			it, _, err := masterdata.ItemOf(tx, wh, sku)
			owner = it.Owner
			return err
		})
		return owner, err
	}
	ord := orders.New(orders.Config{Debounce: time.Millisecond, Owner: owner}, st)
	require.NoError(t, ord.Start(ctx))
	ran := make(chan struct{})
	go func() { defer close(ran); ord.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-ran }) // before the store closes
	al := alerts.New(alerts.Config{Records: st, Owner: owner})
	hooks := webhooks.New(webhooks.Config{Records: st})
	require.NoError(t, hooks.Start(ctx))
	t.Cleanup(func() { cancel(); hooks.Wait() })
	nearExpiry := func(context.Context, string) ([]expiry.Lot, error) {
		return []expiry.Lot{{Warehouse: "wh1", SKU: "MILK-A", Lot: "L1", Owner: "acme", Expiry: "2030-01-01"},
			{Warehouse: "wh1", SKU: "MILK-G", Lot: "L9", Owner: "globex", Expiry: "2030-01-01"}}, nil
	}
	w.hub = dashboard.NewHub()
	w.logs = &lockedBuffer{}
	h := New(Deps{Logger: slog.New(slog.NewTextHandler(w.logs, nil)), Store: st, Ready: func() error { return nil }, Middleware: g.Middleware, Orders: ord, Alerts: al,
		Webhooks: hooks, Committed: followStock{ord}, NearExpiry: nearExpiry, Events: w.hub, OwnerRefused: w.refused})
	srv := httptest.NewServer(g.Protect(h))
	t.Cleanup(srv.Close)
	w.url = srv.URL

	w.want(w.ops, "POST", "/api/v1/masterdata/wh1/locations", `[{"code":"A-01","type":"pick","sellable":true}]`, 200)
	w.want(w.ops, "POST", "/api/v1/masterdata/wh1/items", `[{"sku":"MILK-A","owner":"acme"},{"sku":"MILK-G","owner":"globex"}]`, 200)
	w.want(w.ops, "POST", "/api/v1/masterdata/wh1/thresholds", `[{"sku":"MILK-A","reorder_point":100},{"sku":"MILK-G","reorder_point":100}]`, 200)
	hlc := int64(1000)
	issue := func(op protocol.Op) {
		hlc++
		op.HLC = protocol.MakeHLC(hlc, 0)
		_, res, err := st.IssueOp(ctx, "wh1", op)
		require.NoError(t, err)
		ord.Changed(res.Changes)
	}
	for _, o := range []struct{ owner, sku string }{{"acme", "MILK-A"}, {"globex", "MILK-G"}} {
		issue(protocol.Op{Kind: protocol.OpReceive, Location: "A-01", SKU: o.sku, Qty: 10, Owner: o.owner})
		issue(protocol.Op{Kind: protocol.OpReceive, Location: "A-01", SKU: "MILK", Qty: 3, Owner: o.owner})
		issue(protocol.Op{Kind: protocol.OpPick, Location: "A-01", SKU: "MILK", Qty: 5, Owner: o.owner}) // a negative-stock conflict of the owner
	}
	w.want(w.ops, "PUT", "/api/v1/channels/web", `{}`, 200)
	require.Eventually(t, func() bool { // the order model saw the stock
		rows, _, _ := ord.Availability("wh1", "MILK-G")
		return len(rows) == 1 && rows[0].Available == 10
	}, 10*time.Second, 5*time.Millisecond)
	w.want(w.ops, "POST", "/api/v1/orders", `{"warehouse":"wh1","channel":"web","external_id":"G1","lines":[{"sku":"MILK-G","qty":1}]}`, 201)
	w.want(w.acme, "POST", "/api/v1/orders", `{"warehouse":"wh1","channel":"web","external_id":"A1","lines":[{"sku":"MILK-A","qty":1}]}`, 201)
	w.want(w.globex, "POST", "/api/v1/holds", `{"warehouse":"wh1","channel":"web","checkout_id":"GC","lines":[{"sku":"MILK-G","qty":1}]}`, 201)
	for _, sku := range []string{"MILK-G", "MILK-A"} {
		a, err := al.Raise(alerts.Alert{Kind: alerts.KindReorder, Warehouse: "wh1", SKU: sku, Message: sku + " low"})
		require.NoError(t, err)
		if sku == "MILK-G" {
			w.gAlert = a.ID
			require.Equal(t, "globex", a.Owner, "a sku's alert carries its item's owner")
		} else {
			w.aAlert = a.ID
		}
	}
	a, err := al.Raise(alerts.Alert{Kind: alerts.KindGatewayOffline, Warehouse: "wh1", Gateway: "gw1", Message: "gw1 offline"})
	require.NoError(t, err)
	w.gateAlert = a.ID
	var e webhooks.Endpoint
	w.decode(w.want(w.globex, "POST", "/api/v1/webhooks", `{"url":"http://127.0.0.1:1/g","events":["order"]}`, 201), &e)
	require.Equal(t, "globex", e.Owner, "an owner's token creates its owner's endpoint")
	w.gHook = e.ID
	w.decode(w.want(w.acme, "POST", "/api/v1/webhooks", `{"url":"http://127.0.0.1:1/a","events":["order"]}`, 201), &e)
	w.aHook = e.ID
	return w
}

// do sends one request with a token and returns the status and body.
func (w *ownersWorld) do(token, method, path, body string) (int, string) {
	w.t.Helper()
	req, err := http.NewRequest(method, w.url+path, strings.NewReader(body))
	require.NoError(w.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(w.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(w.t, err)
	return resp.StatusCode, string(b)
}

// want sends a request and requires the status; it returns the body.
func (w *ownersWorld) want(token, method, path, body string, code int) string {
	w.t.Helper()
	got, b := w.do(token, method, path, body)
	require.Equal(w.t, code, got, "%s %s: %s", method, path, b)
	return b
}

func (w *ownersWorld) decode(body string, v any) {
	w.t.Helper()
	require.NoError(w.t, json.Unmarshal([]byte(body), v), body)
}

// owners returns the distinct values of the "owner" fields of a list's items.
func (w *ownersWorld) owners(body string) map[string]int {
	w.t.Helper()
	var l struct {
		Items []struct {
			Owner string `json:"owner"`
		} `json:"items"`
	}
	w.decode(body, &l)
	out := map[string]int{}
	for _, it := range l.Items {
		out[it.Owner]++
	}
	return out
}

// skus returns the "sku" fields of a body's items (and totals).
func (w *ownersWorld) skus(body string) []string {
	w.t.Helper()
	var l struct {
		Items []struct {
			SKU string `json:"sku"`
		} `json:"items"`
		Totals []struct {
			SKU string `json:"sku"`
		} `json:"totals"`
	}
	w.decode(body, &l)
	var out []string
	for _, it := range append(l.Items, l.Totals...) {
		out = append(out, it.SKU)
	}
	return out
}

// TestOwnerScopeOnEveryRoute is the owner rule of every route exercised
// against real data: acme's token is pointed at globex's data on each
// route and gets 403 (a write, or a read naming globex's data) or an
// answer with acme's data only (a list), while the same route serves acme
// its own; routes that stay closed to owner tokens answer 403. A route
// without a check here fails the test.
func TestOwnerScopeOnEveryRoute(t *testing.T) {
	w := newOwnersWorld(t)
	A, G, ops := w.acme, w.globex, w.ops
	forbidden := func(token, method, path, body string) {
		t.Helper()
		code, b := w.do(token, method, path, body)
		require.Equal(t, http.StatusForbidden, code, "%s %s: %s", method, path, b)
	}
	onlyAcme := func(body string) {
		t.Helper()
		got := w.owners(body)
		require.NotEmpty(t, got, body)
		for o := range got {
			require.Equal(t, "acme", o, body)
		}
	}
	orderStatus := func(id string) orders.Status {
		var o orders.Order
		w.decode(w.want(ops, "GET", "/api/v1/orders/wh1/"+id, "", 200), &o)
		return o.Status
	}
	alertStatus := func(id string) alerts.Status {
		var a alerts.Alert
		w.decode(w.want(ops, "GET", "/api/v1/alerts/"+id, "", 200), &a)
		return a.Status
	}
	checks := map[string]func(){
		"GET /api/v1/openapi.json": func() { w.want(A, "GET", "/api/v1/openapi.json", "", 200) },
		"GET /api/v1/whoami": func() {
			require.JSONEq(t, `{"authenticated":true,"name":"acme-erp","role":"admin","owner":"acme"}`, w.want(A, "GET", "/api/v1/whoami", "", 200))
			require.JSONEq(t, `{"authenticated":true,"name":"ops","role":"admin"}`, w.want(ops, "GET", "/api/v1/whoami", "", 200), "a token of no owner")
		},
		"GET /api/v1/channels": func() { // allocations, no owner's data
			require.Contains(t, w.want(A, "GET", "/api/v1/channels", "", 200), `"channel":"web"`)
		},
		"GET /api/v1/events": func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "GET", w.url+"/api/v1/events", nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+A)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, 200, resp.StatusCode)
			rd := bufio.NewReader(resp.Body)
			for { // subscribed once it says so
				line, err := rd.ReadString('\n')
				require.NoError(t, err)
				if line == ": connected\n" {
					break
				}
			}
			change := func(sku, owner string) map[string]any {
				return map[string]any{"location": "A-01", "sku": sku, "owner": owner, "on_hand": 1}
			}
			w.hub.Publish("batch", map[string]any{"warehouse": "wh1", "applied": 2, "changes": []any{change("MILK-G", "globex"), change("MILK-A", "acme")}})
			w.hub.Publish("batch", map[string]any{"warehouse": "wh1", "applied": 1, "changes": []any{change("MILK-G", "globex")}})
			w.hub.Publish("conflict", map[string]any{"id": "neg:g", "owner": "globex"})
			w.hub.Publish("order", map[string]any{"event": "created", "order": map[string]any{"id": "web-G1", "owner": "globex"}})
			w.hub.Publish("order", map[string]any{"event": "created", "order": map[string]any{"id": "web-A1", "owner": "acme"}})
			w.hub.Publish("alert", map[string]any{"id": "g", "owner": "globex"})
			w.hub.Publish("alert", map[string]any{"id": "gw", "gateway": "gw1"})
			w.hub.Publish("gateway", map[string]any{"gateway": "gw1"})
			w.hub.Publish("availability", map[string]any{"channel": "web", "items": 2})
			w.hub.Publish("alert", map[string]any{"id": "last", "owner": "acme"})
			var got []string
			for !strings.Contains(strings.Join(got, " "), `"last"`) {
				line, err := rd.ReadString('\n')
				require.NoError(t, err, "the stream so far: %v", got)
				if d, ok := strings.CutPrefix(line, "data: "); ok {
					got = append(got, strings.TrimSpace(d))
				}
			}
			require.Equal(t, []string{
				`{"applied":1,"changes":[{"location":"A-01","on_hand":1,"owner":"acme","sku":"MILK-A"}],"warehouse":"wh1"}`,
				`{"event":"created","order":{"id":"web-A1","owner":"acme"}}`,
				`{"channel":"web"}`,
				`{"id":"last","owner":"acme"}`}, got, "acme's live feed: its own changes, order and alert, and a nudge for availability")
		},
		"GET /api/v1/masterdata/{warehouse}/{kind}": func() { // its own catalogue; no other kind
			require.Equal(t, []string{"MILK-A"}, w.skus(w.want(A, "GET", "/api/v1/masterdata/wh1/items", "", 200)))
			b := w.want(A, "GET", "/api/v1/masterdata/wh1/items?format=csv", "", 200)
			require.Contains(t, b, "MILK-A")
			require.NotContains(t, b, "MILK-G")
			forbidden(A, "GET", "/api/v1/masterdata/wh1/items?owner=globex", "")
			forbidden(A, "GET", "/api/v1/masterdata/wh1/locations", "")
			forbidden(A, "GET", "/api/v1/masterdata/wh1/thresholds?format=csv", "")
			require.Equal(t, []string{"MILK-G"}, w.skus(w.want(ops, "GET", "/api/v1/masterdata/wh1/items?owner=globex", "", 200)))
		},
		"GET /api/v1/masterdata/{warehouse}/{kind}/{id}": func() {
			forbidden(A, "GET", "/api/v1/masterdata/wh1/items/MILK-G", "")
			forbidden(A, "GET", "/api/v1/masterdata/wh1/locations/A-01", "")
			w.want(A, "GET", "/api/v1/masterdata/wh1/items/MILK-A", "", 200)
		},
		"GET /api/v1/warehouses": func() {
			var ws struct {
				Items []WarehouseSummary
			}
			w.decode(w.want(A, "GET", "/api/v1/warehouses", "", 200), &ws)
			require.Len(t, ws.Items, 1)
			require.Equal(t, WarehouseSummary{Warehouse: "wh1", SKUs: 1, OnHand: 10, Available: 9, Reserved: 1, OpenConflicts: 1}, ws.Items[0],
				"acme's one sku (its order reserves 1) and its conflict; no gateway")
			w.decode(w.want(ops, "GET", "/api/v1/warehouses", "", 200), &ws)
			require.Equal(t, 3, ws.Items[0].SKUs, "MILK-A, MILK-G and the shared MILK (no item)")
			require.Equal(t, 2, ws.Items[0].OpenConflicts)
			forbidden(A, "GET", "/api/v1/warehouses?owner=globex", "")
		},
		"GET /api/v1/stock": func() {
			onlyAcme(w.want(A, "GET", "/api/v1/stock?warehouse=wh1", "", 200))
			forbidden(A, "GET", "/api/v1/stock?warehouse=wh1&owner=globex", "")
		},
		"POST /api/v1/stock/status": func() {
			forbidden(A, "POST", "/api/v1/stock/status", `{"warehouse":"wh1","location":"A-01","sku":"MILK-G","owner":"globex","to":"hold","qty":1}`)
			var got struct{ Op protocol.Op }
			w.decode(w.want(A, "POST", "/api/v1/stock/status", `{"warehouse":"wh1","location":"A-01","sku":"MILK-A","to":"hold","qty":1}`, 200), &got)
			require.Equal(t, "acme", got.Op.Owner, "a move without an owner is the token's owner's")
		},
		"GET /api/v1/stock/near-expiry": func() {
			onlyAcme(w.want(A, "GET", "/api/v1/stock/near-expiry?warehouse=wh1", "", 200))
			forbidden(A, "GET", "/api/v1/stock/near-expiry?warehouse=wh1&owner=globex", "")
		},
		"GET /api/v1/stock/history": func() {
			forbidden(A, "GET", "/api/v1/stock/history?warehouse=wh1&location=A-01&sku=MILK&owner=globex", "")
			var hs struct {
				Owner string
				Items []json.RawMessage
			}
			w.decode(w.want(A, "GET", "/api/v1/stock/history?warehouse=wh1&location=A-01&sku=MILK", "", 200), &hs)
			require.Equal(t, "acme", hs.Owner)
			require.Len(t, hs.Items, 2, "acme's receive and pick of the shared sku")
		},
		"GET /api/v1/stock/snapshot.csv": func() {
			b := w.want(A, "GET", "/api/v1/stock/snapshot.csv?warehouse=wh1", "", 200)
			require.Contains(t, b, ",acme,")
			require.NotContains(t, b, "globex")
			require.NotContains(t, b, "MILK-G")
			forbidden(A, "GET", "/api/v1/stock/snapshot.csv?warehouse=wh1&owner=globex", "")
		},
		"GET /api/v1/availability": func() {
			require.ElementsMatch(t, []string{"MILK-A", "MILK-A"}, w.skus(w.want(A, "GET", "/api/v1/availability?warehouse=wh1", "", 200)))
			forbidden(A, "GET", "/api/v1/availability?owner=globex", "")
			require.Contains(t, w.skus(w.want(G, "GET", "/api/v1/availability?warehouse=wh1", "", 200)), "MILK-G")
		},
		"GET /api/v1/channels/{channel}/availability": func() {
			b := w.want(A, "GET", "/api/v1/channels/web/availability", "", 200)
			require.Equal(t, []string{"MILK-A"}, w.skus(b))
			require.Contains(t, b, `"owner":"acme"`)
			forbidden(A, "GET", "/api/v1/channels/web/availability?owner=globex", "")
		},
		"POST /api/v1/orders": func() {
			forbidden(A, "POST", "/api/v1/orders", `{"warehouse":"wh1","channel":"web","external_id":"X1","lines":[{"sku":"MILK-G","qty":1}]}`)
			w.want(ops, "GET", "/api/v1/orders/wh1/web-X1", "", 404) // nothing was taken
			forbidden(A, "POST", "/api/v1/orders", `{"warehouse":"wh1","channel":"web","external_id":"X2","lines":[{"sku":"UNKNOWN","qty":1}]}`)
			forbidden(A, "POST", "/api/v1/orders", `{"warehouse":"wh1","channel":"web","external_id":"X3","hold":"hold-web-GC","lines":[{"sku":"MILK-A","qty":1}]}`)
			require.Equal(t, orders.StatusHeld, orderStatus("hold-web-GC"), "globex's hold is not converted")
		},
		"GET /api/v1/orders": func() {
			onlyAcme(w.want(A, "GET", "/api/v1/orders", "", 200))
			forbidden(A, "GET", "/api/v1/orders?owner=globex", "")
			require.Equal(t, map[string]int{"acme": 1, "globex": 2}, w.owners(w.want(ops, "GET", "/api/v1/orders", "", 200)), "the operator sees every owner's")
			require.Equal(t, map[string]int{"globex": 2}, w.owners(w.want(ops, "GET", "/api/v1/orders?owner=globex", "", 200)))
		},
		"GET /api/v1/orders/{warehouse}/{id}": func() {
			counted := testutil.ToFloat64(w.refused.WithLabelValues("GET /api/v1/orders/{warehouse}/{id}"))
			forbidden(A, "GET", "/api/v1/orders/wh1/web-G1", "")
			require.Equal(t, counted+1, testutil.ToFloat64(w.refused.WithLabelValues("GET /api/v1/orders/{warehouse}/{id}")), "a scoped route's 403 is counted by route")
			require.Contains(t, w.logs.String(), `msg="owner token refused another owner's data" route="GET /api/v1/orders/{warehouse}/{id}" path=/api/v1/orders/wh1/web-G1 owner=acme`)
			w.want(A, "GET", "/api/v1/orders/wh1/web-A1", "", 200)
			require.Equal(t, counted+1, testutil.ToFloat64(w.refused.WithLabelValues("GET /api/v1/orders/{warehouse}/{id}")), "acme's own order: not counted")
		},
		"POST /api/v1/orders/{warehouse}/{id}/cancel": func() {
			forbidden(A, "POST", "/api/v1/orders/wh1/web-G1/cancel", "")
			require.Equal(t, orders.StatusOpen, orderStatus("web-G1"))
		},
		"POST /api/v1/orders/{warehouse}/{id}/ship": func() {
			forbidden(A, "POST", "/api/v1/orders/wh1/web-G1/ship", "")
			require.Equal(t, orders.StatusOpen, orderStatus("web-G1"))
			w.want(A, "POST", "/api/v1/orders/wh1/web-A1/ship", "", 200)
		},
		"POST /api/v1/holds": func() {
			forbidden(A, "POST", "/api/v1/holds", `{"warehouse":"wh1","channel":"web","checkout_id":"AC","lines":[{"sku":"MILK-G","qty":1}]}`)
			w.want(A, "POST", "/api/v1/holds", `{"warehouse":"wh1","channel":"web","checkout_id":"AC","lines":[{"sku":"MILK-A","qty":1}]}`, 201)
		},
		"DELETE /api/v1/holds/{warehouse}/{id}": func() {
			forbidden(A, "DELETE", "/api/v1/holds/wh1/hold-web-GC", "")
			require.Equal(t, orders.StatusHeld, orderStatus("hold-web-GC"))
		},
		"GET /api/v1/orders/per-hour": func() {
			total := func(token string) int {
				var ph struct{ Total int }
				w.decode(w.want(token, "GET", "/api/v1/orders/per-hour", "", 200), &ph)
				return ph.Total
			}
			require.Equal(t, 1, total(A), "acme's order")
			require.Equal(t, 2, total(G), "globex's order and hold")
			require.Equal(t, 3, total(ops))
			forbidden(A, "GET", "/api/v1/orders/per-hour?owner=globex", "")
		},
		"GET /api/v1/alerts": func() {
			onlyAcme(w.want(A, "GET", "/api/v1/alerts", "", 200))
			forbidden(A, "GET", "/api/v1/alerts?owner=globex", "")
			require.Equal(t, map[string]int{"acme": 1, "globex": 1, "": 1}, w.owners(w.want(ops, "GET", "/api/v1/alerts", "", 200)))
		},
		"GET /api/v1/alerts/{id}": func() {
			forbidden(A, "GET", "/api/v1/alerts/"+w.gAlert, "")
			forbidden(A, "GET", "/api/v1/alerts/"+w.gateAlert, "")
			w.want(A, "GET", "/api/v1/alerts/"+w.aAlert, "", 200)
		},
		"POST /api/v1/alerts/{id}/ack": func() {
			forbidden(A, "POST", "/api/v1/alerts/"+w.gAlert+"/ack", `{"by":"mallory"}`)
			require.Equal(t, alerts.StatusOpen, alertStatus(w.gAlert))
			w.want(A, "POST", "/api/v1/alerts/"+w.aAlert+"/ack", `{"by":"ann"}`, 200)
		},
		"POST /api/v1/alerts/{id}/resolve": func() {
			forbidden(A, "POST", "/api/v1/alerts/"+w.gAlert+"/resolve", `{"by":"mallory"}`)
			require.Equal(t, alerts.StatusOpen, alertStatus(w.gAlert))
		},
		"GET /api/v1/webhooks": func() {
			onlyAcme(w.want(A, "GET", "/api/v1/webhooks", "", 200))
			forbidden(A, "GET", "/api/v1/webhooks?owner=globex", "")
		},
		"POST /api/v1/webhooks": func() {
			forbidden(A, "POST", "/api/v1/webhooks", `{"url":"http://127.0.0.1:1/x","owner":"globex"}`)
		},
		"GET /api/v1/webhooks/{id}": func() {
			forbidden(A, "GET", "/api/v1/webhooks/"+w.gHook, "")
			w.want(A, "GET", "/api/v1/webhooks/"+w.aHook, "", 200)
		},
		"PUT /api/v1/webhooks/{id}": func() {
			forbidden(A, "PUT", "/api/v1/webhooks/"+w.gHook, `{"url":"http://127.0.0.1:1/stolen"}`)
			forbidden(A, "PUT", "/api/v1/webhooks/"+w.aHook, `{"url":"http://127.0.0.1:1/a","owner":"globex"}`)
			require.NotContains(t, w.want(ops, "GET", "/api/v1/webhooks/"+w.gHook, "", 200), "stolen")
		},
		"DELETE /api/v1/webhooks/{id}": func() {
			forbidden(A, "DELETE", "/api/v1/webhooks/"+w.gHook, "")
			w.want(ops, "GET", "/api/v1/webhooks/"+w.gHook, "", 200)
		},
		"GET /api/v1/webhooks/{id}/deliveries": func() {
			forbidden(A, "GET", "/api/v1/webhooks/"+w.gHook+"/deliveries", "")
			w.want(A, "GET", "/api/v1/webhooks/"+w.aHook+"/deliveries", "", 200)
		},
		"GET /api/v1/webhooks/{id}/failures": func() {
			forbidden(A, "GET", "/api/v1/webhooks/"+w.gHook+"/failures", "")
		},
		"POST /api/v1/webhooks/{id}/ping": func() {
			forbidden(A, "POST", "/api/v1/webhooks/"+w.gHook+"/ping", "")
		},
		"GET /api/v1/conflicts": func() {
			onlyAcme(w.want(A, "GET", "/api/v1/conflicts", "", 200))
			forbidden(A, "GET", "/api/v1/conflicts?owner=globex", "")
			require.Equal(t, map[string]int{"acme": 1, "globex": 1}, w.owners(w.want(ops, "GET", "/api/v1/conflicts", "", 200)))
		},
		"GET /api/v1/reorder/{warehouse}": func() {
			require.Equal(t, []string{"MILK-A"}, w.skus(w.want(A, "GET", "/api/v1/reorder/wh1", "", 200)))
			require.ElementsMatch(t, []string{"MILK-A", "MILK-G"}, w.skus(w.want(ops, "GET", "/api/v1/reorder/wh1", "", 200)))
		},
	}
	param := regexp.MustCompile(`\{[a-z]+\}`)
	routes := slices.Sorted(maps.Keys(ownerRules)) // every route (TestEveryRouteHasAnOwnerRule), in a fixed order
	for _, route := range routes {
		switch ownerRules[route] {
		case OwnerRefused:
			require.NotContains(t, checks, route, "%s is refused to owner tokens: its check is the 403", route)
			method, pattern, _ := strings.Cut(route, " ")
			url := param.ReplaceAllStringFunc(pattern, func(p string) string {
				if p == "{warehouse}" {
					return "wh1"
				}
				return "x"
			})
			counted := testutil.ToFloat64(w.refused.WithLabelValues(route))
			code, b := w.do(A, method, url, "{}")
			require.Equal(t, http.StatusForbidden, code, "%s: %s", route, b)
			require.Contains(t, b, "bound to owner acme", route)
			require.Equal(t, counted+1, testutil.ToFloat64(w.refused.WithLabelValues(route)), "the guard's 403 on %s is counted by route", route)
		default:
			check, ok := checks[route]
			require.True(t, ok, "%s serves owner tokens but has no check here against another owner's data", route)
			check()
		}
	}
}
