package api

import (
	"context"
	"encoding"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/server/internal/alerts"
	"github.com/shelfsync/shelfsync/server/internal/masterdata"
	"github.com/shelfsync/shelfsync/server/internal/orders"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
	"github.com/shelfsync/shelfsync/server/internal/webhooks"
)

// TestOpenAPIListsEveryDecodedField: every route whose request body the
// document describes as JSON is called, and every value its handler
// decodes the body into (seen by readJSON, whatever the route does next)
// is walked by reflection: each JSON field, nested ones included, must be
// a property of the documented request schema. A route that decodes a
// body the document does not describe fails too.
func TestOpenAPIListsEveryDecodedField(t *testing.T) {
	doc := loadDoc(t)
	st, err := badger.Open(badger.Options{InMemory: true})
	require.NoError(t, err)
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hooks := webhooks.New(webhooks.Config{Records: st})
	require.NoError(t, hooks.Start(ctx))
	defer hooks.Wait()
	ord := orders.New(orders.Config{}, st)
	require.NoError(t, ord.Start(ctx))
	h := New(Deps{Store: st, Ready: func() error { return nil }, Orders: ord, Alerts: alerts.New(alerts.Config{Records: st}), Webhooks: hooks})

	var mu sync.Mutex
	seen := map[string][]reflect.Type{} // "method path-template kind" → decoded types
	decodeSeen = func(r *http.Request, v any) {
		mu.Lock()
		defer mu.Unlock()
		k := r.Pattern + " " + r.PathValue("kind")
		seen[k] = append(seen[k], reflect.TypeOf(v))
	}
	defer func() { decodeSeen = nil }()
	srv := httptest.NewServer(h)
	defer srv.Close()

	kinds := []string{string(masterdata.Items), string(masterdata.Locations), string(masterdata.Zones), string(masterdata.Thresholds), string(masterdata.POs)}
	type target struct {
		method, tmpl, kind string
		schema             any
	}
	var targets []target
	for tmpl, ops := range doc.Paths {
		for method, op := range ops {
			schema, ok := op.RequestBody.Content["application/json"]["schema"]
			if !ok {
				continue
			}
			ks := []string{""}
			if strings.Contains(tmpl, "{kind}") {
				ks = kinds
			}
			for _, k := range ks {
				targets = append(targets, target{method, tmpl, k, schema})
			}
		}
	}
	sort.Slice(targets, func(i, j int) bool {
		return targets[i].tmpl+targets[i].method+targets[i].kind < targets[j].tmpl+targets[j].method+targets[j].kind
	})
	for _, tg := range targets {
		path := strings.ReplaceAll(wildcard.ReplaceAllStringFunc(tg.tmpl, func(m string) string {
			if m == "{kind}" {
				return tg.kind
			}
			return "x1"
		}), "{", "")
		body := "{}"
		if strings.Contains(tg.tmpl, "/masterdata/") && tg.method == "post" {
			body = "[]"
		}
		req, err := http.NewRequest(strings.ToUpper(tg.method), srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	pattern := func(tg target) string {
		return strings.ToUpper(tg.method) + " " + tg.tmpl + " " + tg.kind
	}
	documented := map[string]bool{}
	for _, tg := range targets {
		k := pattern(tg)
		documented[k] = true
		types := seen[k]
		require.NotEmpty(t, types, "%s: the document describes a JSON body but the handler decoded none", k)
		for _, typ := range types {
			for _, missing := range missingFields(doc, typ, tg.schema, "$") {
				t.Errorf("%s decodes %s, but the document does not list %s", k, typ, missing)
			}
		}
	}
	for k := range seen {
		require.True(t, documented[k], "%s decodes a JSON body the document does not describe", k)
	}
}

// missingFields walks typ's JSON fields against schema and returns the
// paths of those the schema does not list.
func missingFields(doc oaDoc, typ reflect.Type, schema any, at string) []string {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ.Implements(reflect.TypeFor[json.Unmarshaler]()) || reflect.PointerTo(typ).Implements(reflect.TypeFor[json.Unmarshaler]()) ||
		reflect.PointerTo(typ).Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
		return nil // decodes itself: a leaf
	}
	switch typ.Kind() {
	case reflect.Slice, reflect.Array:
		if typ.Elem().Kind() == reflect.Uint8 {
			return nil
		}
		var items []any
		for _, s := range variants(doc, schema) {
			if it, ok := s["items"]; ok {
				items = append(items, it)
			}
		}
		if len(items) == 0 {
			return []string{at + "[] (no items schema)"}
		}
		return missingIn(doc, typ.Elem(), items, at+"[]")
	case reflect.Map:
		return nil
	case reflect.Struct:
		return missingIn(doc, typ, []any{schema}, at)
	}
	return nil
}

// missingIn checks a type against several candidate schemas (the variants
// of a oneOf, the item schemas of a union): a field is listed when one of
// them lists it.
func missingIn(doc oaDoc, typ reflect.Type, schemas []any, at string) []string {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ.Kind() != reflect.Struct {
		var out []string
		for _, s := range schemas {
			if m := missingFields(doc, typ, s, at); len(m) == 0 {
				return nil
			} else if out == nil {
				out = m
			}
		}
		return out
	}
	props := map[string][]any{}
	for _, s := range schemas {
		for _, v := range variants(doc, s) {
			for name, p := range asMap(v["properties"]) {
				props[name] = append(props[name], p)
			}
		}
	}
	var out []string
	for _, f := range jsonFields(typ) {
		ps, ok := props[f.name]
		if !ok {
			out = append(out, at+"."+f.name)
			continue
		}
		out = append(out, missingIn(doc, f.typ, ps, at+"."+f.name)...)
	}
	return out
}

// variants resolves a schema into the object schemas it may be: $ref,
// allOf merged, each oneOf/anyOf branch.
func variants(doc oaDoc, schema any) []map[string]any {
	s := merged(doc, schema)
	if s == nil {
		return nil
	}
	var out []map[string]any
	for _, key := range []string{"oneOf", "anyOf"} {
		if alts, ok := s[key].([]any); ok {
			for _, a := range alts {
				out = append(out, variants(doc, a)...)
			}
		}
	}
	return append(out, s)
}

type jsonField struct {
	name string
	typ  reflect.Type
}

// jsonFields lists the fields encoding/json decodes into a struct type.
func jsonFields(typ reflect.Type) []jsonField {
	var out []jsonField
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				out = append(out, jsonFields(ft)...)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, jsonField{name, f.Type})
	}
	return out
}

// TestOpenAPIListsEveryCSVColumn: the CSV imports' columns — the master
// data's of every kind and the stock import's — are the document's
// x-csv-columns of their routes, and the stock import reads no column it
// does not declare.
func TestOpenAPIListsEveryCSVColumn(t *testing.T) {
	doc := loadDoc(t)
	md := doc.Paths["/api/v1/masterdata/{warehouse}/{kind}/import"]["post"].RequestBody.XCSVColumns
	for _, k := range []masterdata.Kind{masterdata.Items, masterdata.Locations, masterdata.Zones, masterdata.Thresholds, masterdata.POs} {
		all, must := masterdata.Columns(k)
		require.NotEmpty(t, all, "kind %s", k)
		require.Equal(t, all, md[string(k)], "x-csv-columns of %s", k)
		for _, c := range must {
			require.Contains(t, all, c)
		}
	}
	stock := doc.Paths["/api/v1/imports/stock"]["post"].RequestBody.XCSVColumns
	require.Equal(t, stockImportColumns, stock["stock"], "x-csv-columns of the stock import")
	// The columns stockRowOp reads (rec["…"]) are all declared.
	fs := token.NewFileSet()
	f, err := parser.ParseFile(fs, "csv.go", nil, 0)
	require.NoError(t, err)
	var read []string
	ast.Inspect(f, func(n ast.Node) bool {
		ix, ok := n.(*ast.IndexExpr)
		if !ok {
			return true
		}
		if id, ok := ix.X.(*ast.Ident); ok && id.Name == "rec" {
			if lit, ok := ix.Index.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				c, _ := strconv.Unquote(lit.Value)
				read = append(read, c)
			}
		}
		return true
	})
	require.NotEmpty(t, read)
	for _, c := range read {
		require.True(t, slices.Contains(stockImportColumns, c), "the stock import reads column %q it does not declare", c)
	}
}
