package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/alerts"
	"github.com/shelfsync/shelfsync/server/internal/dashboard"
	"github.com/shelfsync/shelfsync/server/internal/events"
	"github.com/shelfsync/shelfsync/server/internal/orders"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
	"github.com/shelfsync/shelfsync/server/internal/webhooks"
)

type oaDoc struct {
	Paths      map[string]map[string]oaOp `json:"paths"`
	Components struct {
		Schemas map[string]any `json:"schemas"`
	} `json:"components"`
}

type oaOp struct {
	Parameters []struct {
		Name     string `json:"name"`
		In       string `json:"in"`
		Required bool   `json:"required"`
	} `json:"parameters"`
	Responses map[string]struct {
		Ref     string                    `json:"$ref"`
		Content map[string]map[string]any `json:"content"`
	} `json:"responses"`
	RequestBody struct {
		Content     map[string]map[string]any `json:"content"`
		XCSVColumns map[string][]string       `json:"x-csv-columns"`
	} `json:"requestBody"`
}

func loadDoc(t *testing.T) oaDoc {
	var d oaDoc
	require.NoError(t, json.Unmarshal(OpenAPI(), &d), "openapi.json must be valid JSON")
	return d
}

var wildcard = regexp.MustCompile(`\{([A-Za-z0-9_]+)(\.\.\.)?\}`)

// TestOpenAPICoversEveryRoute: every registered /api/v1 route is documented
// with its path parameters, and every documented operation is registered.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	doc := loadDoc(t)
	h := New(Deps{})
	registered := map[string]bool{}
	for _, r := range h.Routes() {
		method, path, ok := strings.Cut(r, " ")
		require.True(t, ok, "route %q has no method", r)
		if !strings.HasPrefix(path, "/api/v1/") {
			continue
		}
		key := strings.ToLower(method) + " " + wildcard.ReplaceAllString(path, "{$1}")
		registered[key] = true
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			documented[method+" "+path] = true
			want := map[string]bool{}
			for _, m := range wildcard.FindAllStringSubmatch(path, -1) {
				want[m[1]] = true
			}
			got := map[string]bool{}
			for _, p := range op.Parameters {
				if p.In == "path" {
					require.True(t, p.Required, "%s %s: path parameter %s must be required", method, path, p.Name)
					got[p.Name] = true
				}
			}
			require.Equal(t, want, got, "%s %s: path parameters", method, path)
			require.NotEmpty(t, op.Responses, "%s %s: responses", method, path)
		}
	}
	var undocumented, unregistered []string
	for k := range registered {
		if !documented[k] {
			undocumented = append(undocumented, k)
		}
	}
	for k := range documented {
		if !registered[k] {
			unregistered = append(unregistered, k)
		}
	}
	sort.Strings(undocumented)
	sort.Strings(unregistered)
	require.Empty(t, undocumented, "routes missing from openapi.json: document them")
	require.Empty(t, unregistered, "openapi.json documents routes no handler serves")
}

// TestOpenAPIResponsesMatchHandlers calls every GET route (and the main
// writes) of a server with data and checks status and body against the
// document's schemas.
func TestOpenAPIResponsesMatchHandlers(t *testing.T) {
	doc := loadDoc(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := badger.Open(badger.Options{InMemory: true})
	require.NoError(t, err)
	defer st.Close()
	hooks := webhooks.New(webhooks.Config{Records: st})
	require.NoError(t, hooks.Start(ctx))
	al := alerts.New(alerts.Config{Records: st, Thresholds: alerts.ThresholdsFunc(func(wh, sku string) (alerts.Threshold, bool) {
		return alerts.Threshold{ReorderPoint: 5, Max: 20}, true
	})})
	ord := orders.New(orders.Config{Debounce: time.Millisecond, OnStock: al.ObserveStock, OnConflict: al.ObserveConflict}, st)
	require.NoError(t, ord.Start(ctx))
	go ord.Run(ctx)
	defer hooks.Wait()
	defer cancel()

	h := New(Deps{Store: st, Ready: func() error { return nil }, Orders: ord, Alerts: al, Webhooks: hooks, Events: dashboard.NewHub(), Backup: st.Backup,
		Committed: followStock{ord}})
	srv := httptest.NewServer(h)
	defer srv.Close()

	// data: stock, an order that cannot be met (oversell, alert), a count variance
	_, res, err := st.IssueOp(ctx, "wh1", protocol.Op{HLC: protocol.MakeHLC(1000, 0), Kind: protocol.OpReceive, Location: "A-01", SKU: "WIDGET", Qty: 7})
	require.NoError(t, err)
	ord.Changed(res.Changes)
	ord.Flush(ctx)

	type call struct {
		method, path, body string
		code               int
	}
	var orderID, alertID, hookID, conflictID, importID string
	do := func(c call) (int, []byte, http.Header) {
		req, err := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b, resp.Header
	}
	check := func(c call) []byte {
		t.Helper()
		code, body, hdr := do(c)
		require.Equal(t, c.code, code, "%s %s: %s", c.method, c.path, body)
		tmpl := templateOf(doc, c.method, c.path)
		require.NotEmpty(t, tmpl, "%s %s matches no documented path", c.method, c.path)
		resp, ok := doc.Paths[tmpl][strings.ToLower(c.method)].Responses[fmt.Sprint(code)]
		require.True(t, ok, "%s %s: status %d is not documented", c.method, tmpl, code)
		if ct := hdr.Get("Content-Type"); strings.HasPrefix(ct, "application/json") && resp.Content != nil {
			schema := resp.Content["application/json"]["schema"]
			require.NotNil(t, schema, "%s %s %d: no JSON schema", c.method, tmpl, code)
			var v any
			require.NoError(t, json.Unmarshal(body, &v), "%s %s: body is not JSON", c.method, c.path)
			if err := validate(doc, schema, v, "$"); err != nil {
				t.Errorf("%s %s %d: body does not match the schema: %v\n%s", c.method, tmpl, code, err, body)
			}
		}
		return body
	}
	var o orders.Order
	require.NoError(t, json.Unmarshal(check(call{"POST", "/api/v1/orders", `{"warehouse":"wh1","channel":"web","external_id":"A1","lines":[{"sku":"WIDGET","qty":5}]}`, 201}), &o))
	orderID = o.ID
	check(call{"POST", "/api/v1/orders", `{"warehouse":"wh1","channel":"web","external_id":"A1","lines":[{"sku":"WIDGET","qty":5}]}`, 200})
	check(call{"POST", "/api/v1/orders", `{"warehouse":"wh1","channel":"web","external_id":"A1","lines":[{"sku":"WIDGET","qty":6}]}`, 409})
	check(call{"POST", "/api/v1/orders", `{"warehouse":"wh1","lines":[]}`, 400})
	check(call{"POST", "/api/v1/orders", `{"warehouse":"wh1","channel":"web","external_id":"A2","lines":[{"sku":"WIDGET","qty":3}]}`, 409}) // 2 left: refused with what is available
	check(call{"POST", "/api/v1/holds", `{"warehouse":"wh1","channel":"web","checkout_id":"C1","lines":[{"sku":"WIDGET","qty":2}],"ttl_s":60}`, 201})
	check(call{"POST", "/api/v1/holds", `{"warehouse":"wh1","channel":"web","checkout_id":"C1","lines":[{"sku":"WIDGET","qty":2}],"ttl_s":60}`, 200})
	check(call{"POST", "/api/v1/holds", `{"warehouse":"wh1","channel":"web","checkout_id":"C2","lines":[{"sku":"WIDGET","qty":1}]}`, 409})
	check(call{"POST", "/api/v1/holds", `{"warehouse":"wh1","channel":"web","checkout_id":"C3","lines":[{"sku":"WIDGET","qty":1}],"ttl_s":-1}`, 400})
	check(call{"DELETE", "/api/v1/holds/wh1/hold-web-C1", "", 200})
	check(call{"PUT", "/api/v1/channels/market", `{"share_pct":50,"cap":10}`, 200})
	check(call{"PUT", "/api/v1/channels/outlet", `{"share_pct":100,"policy":"backorder"}`, 200})
	check(call{"PUT", "/api/v1/channels/outlet", `{"policy":"sometimes"}`, 400})
	var ep webhooks.Endpoint
	require.NoError(t, json.Unmarshal(check(call{"POST", "/api/v1/webhooks", `{"url":"http://127.0.0.1:1/x","events":["alert"]}`, 201}), &ep))
	hookID = ep.ID
	var job ImportJob
	require.NoError(t, json.Unmarshal(check(call{"POST", "/api/v1/imports/stock", "warehouse,location,sku,qty\nwh1,B-01,GADGET,4\n", 202}), &job))
	importID = job.ID
	require.Eventually(t, func() bool { j, _ := importTracker.get(importID); return j.Status == "done" }, 5*time.Second, 10*time.Millisecond)
	_, res, err = st.IssueOp(ctx, "wh1", protocol.Op{HLC: protocol.MakeHLC(2000, 0), Kind: protocol.OpCount, Location: "A-01", SKU: "WIDGET", Qty: 2})
	require.NoError(t, err)
	require.NotEmpty(t, res.Conflicts)
	conflictID = res.Conflicts[0].ID
	ord.Changed(res.Changes)
	ord.Flush(ctx)
	for _, op := range []protocol.Op{ // GIZMO: a receipt above the point, a pick across it
		{HLC: protocol.MakeHLC(2100, 0), Kind: protocol.OpReceive, Location: "A-02", SKU: "GIZMO", Qty: 9},
		{HLC: protocol.MakeHLC(2200, 0), Kind: protocol.OpPick, Location: "A-02", SKU: "GIZMO", Qty: 6},
	} {
		_, res, err = st.IssueOp(ctx, "wh1", op)
		require.NoError(t, err)
		ord.Changed(res.Changes)
		ord.Flush(ctx)
	}
	as, _, err := al.List(ctx, alerts.Query{})
	require.NoError(t, err)
	require.NotEmpty(t, as, "the reorder crossing raised an alert")
	alertID = as[0].ID

	gets := []call{
		{"GET", "/api/v1/stock?warehouse=wh1&limit=1", "", 200},
		{"GET", "/api/v1/stock", "", 400},
		{"GET", "/api/v1/stock/history?warehouse=wh1&location=A-01&sku=WIDGET", "", 200},
		{"GET", "/api/v1/stock/near-expiry?warehouse=wh1", "", 200},
		{"GET", "/api/v1/stock/near-expiry", "", 400},
		{"GET", "/api/v1/stock/snapshot.csv?warehouse=wh1", "", 200},
		{"GET", "/api/v1/imports", "", 200},
		{"GET", "/api/v1/imports/" + importID, "", 200},
		{"GET", "/api/v1/imports/nope", "", 404},
		{"GET", "/api/v1/quarantine", "", 200},
		{"GET", "/api/v1/gateways", "", 200},
		{"GET", "/api/v1/warehouses", "", 200},
		{"GET", "/api/v1/conflicts", "", 200},
		{"GET", "/api/v1/tasks?warehouse=wh1", "", 200},
		{"GET", "/api/v1/orders?limit=1", "", 200},
		{"GET", "/api/v1/orders/wh1/" + orderID, "", 200},
		{"GET", "/api/v1/orders/wh1/none", "", 404},
		{"GET", "/api/v1/availability", "", 200},
		{"GET", "/api/v1/channels", "", 200},
		{"GET", "/api/v1/whoami", "", 200},
		{"GET", "/api/v1/channels/web/availability", "", 200},
		{"GET", "/api/v1/channels/none/availability", "", 404},
		{"GET", "/api/v1/alerts", "", 200},
		{"GET", "/api/v1/alerts?status=open&limit=1", "", 200},
		{"GET", "/api/v1/alerts?standing=true", "", 200},
		{"GET", "/api/v1/alerts/" + alertID, "", 200},
		{"GET", "/api/v1/webhooks", "", 200},
		{"GET", "/api/v1/webhooks/" + hookID, "", 200},
		{"GET", "/api/v1/webhooks/" + hookID + "/deliveries", "", 200},
		{"GET", "/api/v1/webhooks/" + hookID + "/failures", "", 200},
		{"GET", "/api/v1/openapi.json", "", 200},
		{"GET", "/api/v1/masterdata/wh1/settings", "", 200},
		{"GET", "/api/v1/masterdata/wh1/reorder-alerts", "", 200},
		{"GET", "/api/v1/masterdata/wh1/notices", "", 200},
		{"GET", "/api/v1/masterdata/wh1/items", "", 200},
		{"GET", "/api/v1/admin/backup", "", 200},
		{"GET", "/api/v1/gateways/series", "", 200},
		{"GET", "/api/v1/orders/per-hour?warehouse=wh1", "", 200},
		{"GET", "/api/v1/orders/per-hour?hours=999", "", 400},
		{"GET", "/api/v1/tasks/summary?warehouse=wh1", "", 200},
		{"GET", "/api/v1/tasks/summary", "", 400},
		{"GET", "/api/v1/receiving/wh1/pos", "", 200},
		{"GET", "/api/v1/receiving/wh1/dock", "", 200},
		{"GET", "/api/v1/reorder/wh1", "", 200},
		{"GET", "/api/v1/stock?warehouse=wh1&nonzero=true", "", 200},
	}
	check(call{"PUT", "/api/v1/masterdata/wh1/asns/106141412345678908", `{"sscc":"106141412345678908","lines":[{"sku":"GADGET","lot":"L1","expiry":"2027-01-31","qty":4}]}`, 200})
	gets = append(gets, call{"GET", "/api/v1/masterdata/wh1/asns", "", 200}, call{"GET", "/api/v1/masterdata/wh1/asns/106141412345678908", "", 200})
	for _, c := range gets {
		check(c)
	}
	for _, c := range []call{
		{"PUT", "/api/v1/webhooks/" + hookID, `{"url":"http://127.0.0.1:1/y","events":["*"]}`, 200},
		{"POST", "/api/v1/webhooks/" + hookID + "/ping", "", 202},
		{"POST", "/api/v1/alerts/" + alertID + "/ack", `{"by":"ana"}`, 200},
		{"POST", "/api/v1/alerts/" + alertID + "/ack", `{"by":"ana"}`, 409},
		{"POST", "/api/v1/alerts/" + alertID + "/ack", `{}`, 400},
		{"POST", "/api/v1/alerts/" + alertID + "/resolve", `{"by":"ana","note":"ordered"}`, 200},
		{"POST", "/api/v1/alerts/" + alertID + "/resolve", `{"by":"ana"}`, 409},
		{"GET", "/api/v1/alerts?standing=maybe", "", 400},
		{"POST", "/api/v1/conflicts/" + url.PathEscape(conflictID) + "/resolve", `{"action":"accept","by":"ana"}`, 200},
		{"POST", "/api/v1/orders/wh1/" + orderID + "/ship", "", 200},
		{"POST", "/api/v1/orders/wh1/" + orderID + "/cancel", "", 409},
		{"DELETE", "/api/v1/webhooks/" + hookID, "", 204},
		{"POST", "/api/v1/stock/status", `{"warehouse":"wh1","location":"A-01","sku":"WIDGET","to":"hold","qty":1,"reason":"QC"}`, 200},
		{"POST", "/api/v1/stock/status", `{"warehouse":"wh1","location":"A-01","sku":"WIDGET","from":"hold","to":"available","reason":"QC OK"}`, 200},
		{"POST", "/api/v1/stock/status", `{"warehouse":"wh1","location":"A-01","sku":"WIDGET","from":"hold","to":"available"}`, 400},
		{"POST", "/api/v1/stock/status", `{"warehouse":"wh1","location":"A-01","sku":"WIDGET","to":"lost","qty":1}`, 400},
	} {
		check(c)
	}

	// every GET route of the document was exercised
	called := map[string]bool{}
	for _, c := range gets {
		called[templateOf(doc, c.method, c.path)] = true
	}
	for path, ops := range doc.Paths {
		if _, ok := ops["get"]; ok && !called[path] && !strings.HasPrefix(path, "/api/v1/masterdata/{warehouse}/{kind}") && path != "/api/v1/events" {
			t.Errorf("GET %s is not exercised by this test: add a call", path)
		}
	}
}

// templateOf returns the documented path that a concrete path matches,
// the most literal one when several do (settings over {kind}).
func templateOf(doc oaDoc, method, path string) string {
	path, _, _ = strings.Cut(path, "?")
	var best string
	for tmpl, ops := range doc.Paths {
		if _, ok := ops[strings.ToLower(method)]; !ok {
			continue
		}
		pat := regexp.QuoteMeta(wildcard.ReplaceAllString(tmpl, "\x00"))
		pat = "^" + strings.ReplaceAll(pat, "\x00", `[^/]+`) + "$"
		if regexp.MustCompile(pat).MatchString(path) && (best == "" || strings.Count(tmpl, "{") < strings.Count(best, "{")) {
			best = tmpl
		}
	}
	return best
}

// merged resolves $ref and folds allOf parts into one object schema.
func merged(doc oaDoc, schema any) map[string]any {
	s, _ := schema.(map[string]any)
	if r, ok := s["$ref"].(string); ok {
		return merged(doc, doc.Components.Schemas[strings.TrimPrefix(r, "#/components/schemas/")])
	}
	all, ok := s["allOf"].([]any)
	if !ok {
		return s
	}
	out := map[string]any{"type": "object"}
	props := map[string]any{}
	var req []any
	for _, part := range all {
		m := merged(doc, part)
		for k, v := range asMap(m["properties"]) {
			props[k] = v
		}
		if r, ok := m["required"].([]any); ok {
			req = append(req, r...)
		}
	}
	out["properties"], out["required"] = props, req
	return out
}

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

// validate checks v against a JSON-schema subset: $ref, type, properties,
// required, items, enum, allOf, oneOf, additionalProperties.
func validate(doc oaDoc, schema any, v any, at string) error {
	s := merged(doc, schema)
	if s == nil {
		return fmt.Errorf("%s: unknown schema %v", at, schema)
	}
	if one, ok := s["oneOf"].([]any); ok {
		var errs []string
		for _, sub := range one {
			if err := validate(doc, sub, v, at); err == nil {
				errs = nil
				break
			} else {
				errs = append(errs, err.Error())
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("%s: matches none of oneOf: %s", at, strings.Join(errs, "; "))
		}
	}
	if typ, ok := s["type"]; ok {
		var types []string
		switch t := typ.(type) {
		case string:
			types = []string{t}
		case []any:
			for _, x := range t {
				types = append(types, x.(string))
			}
		}
		if !slices.Contains(types, jsonType(v)) && !(jsonType(v) == "integer" && slices.Contains(types, "number")) {
			return fmt.Errorf("%s: %s, want %v", at, jsonType(v), types)
		}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, v) {
		return fmt.Errorf("%s: %v not in %v", at, v, enum)
	}
	switch x := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		for _, r := range asStrings(s["required"]) {
			if _, ok := x[r]; !ok {
				return fmt.Errorf("%s: required property %q missing", at, r)
			}
		}
		for k, val := range x {
			if ps, ok := props[k]; ok {
				if err := validate(doc, ps, val, at+"."+k); err != nil {
					return err
				}
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case map[string]any:
				if err := validate(doc, ap, val, at+"."+k); err != nil {
					return err
				}
			case bool:
			default:
				if props != nil {
					return fmt.Errorf("%s: property %q is not documented", at, k)
				}
			}
		}
	case []any:
		if items, ok := s["items"]; ok {
			for i, e := range x {
				if err := validate(doc, items, e, fmt.Sprintf("%s[%d]", at, i)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func asStrings(v any) []string {
	var out []string
	if a, ok := v.([]any); ok {
		for _, x := range a {
			out = append(out, x.(string))
		}
	}
	return out
}

func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if x == float64(int64(x)) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

// followStock is the order model's subscription to the API's commits, run
// in the publisher's goroutine.
type followStock struct{ ord *orders.Service }

func (f followStock) Publish(ev events.Event) { f.ord.Changed(ev.Changes()) }
