package api

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/server/internal/orders"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
)

// newBadgerAPI serves the API over an in-memory Badger store.
func newBadgerAPI(t *testing.T, d Deps) (*httptest.Server, *badger.Store) {
	t.Helper()
	st, err := badger.Open(badger.Options{InMemory: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	d.Store = st
	d.Ready = func() error { return nil }
	if d.UploadDir == "" {
		d.UploadDir = t.TempDir()
	}
	srv := httptest.NewServer(New(d))
	t.Cleanup(srv.Close)
	return srv, st
}

func do(t *testing.T, method, url, ctype string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestJSONBodyHygiene: a body over the limit is 413 (not 400 "unexpected
// EOF"), trailing data is 400, invalid UTF-8 is 400 (not U+FFFD), and codes
// with control or bidi characters or a ".." warehouse are 400.
func TestJSONBodyHygiene(t *testing.T) {
	srv, _ := newBadgerAPI(t, Deps{})
	items := srv.URL + "/api/v1/masterdata/W1/items"
	big := `[{"sku":"` + strings.Repeat("x", 12<<20) + `"}]`
	for _, tc := range []struct {
		name, url, body string
		want            int
		says            string
	}{
		{"12 MB body", items, big, http.StatusRequestEntityTooLarge, "too large"},
		{"trailing data", items, `[{"sku":"A"}] {"sku":"B"}`, http.StatusBadRequest, "trailing data"},
		{"trailing garbage", srv.URL + "/api/v1/masterdata/W1/settings", `{} garbage`, http.StatusBadRequest, "trailing data"},
		{"invalid UTF-8", items, "[{\"sku\":\"A\xff\"}]", http.StatusBadRequest, "UTF-8"},
		{"BEL in sku", items, `[{"sku":"A\u0007B"}]`, http.StatusBadRequest, "control character"},
		{"ESC in sku", items, `[{"sku":"A\u001bB"}]`, http.StatusBadRequest, "control character"},
		{"RLO in sku", items, `[{"sku":"A\u202eB"}]`, http.StatusBadRequest, "control character"},
		{"C1 in location", srv.URL + "/api/v1/masterdata/W1/locations", `[{"code":"L\u0085"}]`, http.StatusBadRequest, "control character"},
		{"dot-dot warehouse", srv.URL + "/api/v1/masterdata/../items", `[{"sku":"A"}]`, http.StatusBadRequest, ""},
		{"dot-dot warehouse escaped", srv.URL + "/api/v1/masterdata/%2E%2E/items", `[{"sku":"A"}]`, http.StatusBadRequest, "only dots"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, http.MethodPost, tc.url, "application/json", strings.NewReader(tc.body))
			if tc.url == srv.URL+"/api/v1/masterdata/W1/settings" {
				code, body = do(t, http.MethodPut, tc.url, "application/json", strings.NewReader(tc.body))
			}
			if tc.name == "dot-dot warehouse" && code == http.StatusNotFound {
				return // the client or mux cleaned the path: it never reached a handler
			}
			require.Equal(t, tc.want, code, body)
			require.Contains(t, body, tc.says)
		})
	}
	code, body := do(t, http.MethodGet, items, "", nil)
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"items":[]}`, body, "nothing refused was stored")
}

// fakeOrders records orders created; the rest is unused here.
type fakeOrders struct {
	Orders
	created []orders.NewOrder
}

func (f *fakeOrders) Create(_ context.Context, n orders.NewOrder) (orders.Order, bool, error) {
	f.created = append(f.created, n)
	return orders.Order{Warehouse: n.Warehouse, ID: n.ID}, true, nil
}

// TestOrderForUnknownWarehouseRefused: an order naming a warehouse nobody
// created is refused instead of creating a phantom warehouse.
func TestOrderForUnknownWarehouseRefused(t *testing.T) {
	fo := &fakeOrders{}
	srv, _ := newBadgerAPI(t, Deps{Orders: fo})
	order := `{"warehouse":"%s","channel":"web","external_id":"1","lines":[{"sku":"A","qty":1}]}`
	code, body := do(t, http.MethodPost, srv.URL+"/api/v1/orders", "application/json", strings.NewReader(fmt.Sprintf(order, "NOPE")))
	require.Equal(t, http.StatusNotFound, code, body)
	require.Contains(t, body, "unknown")
	require.Empty(t, fo.created)

	code, body = do(t, http.MethodPut, srv.URL+"/api/v1/masterdata/W1/locations/L1", "application/json", strings.NewReader(`{"code":"L1"}`))
	require.Equal(t, http.StatusOK, code, body)
	code, body = do(t, http.MethodPost, srv.URL+"/api/v1/orders", "application/json", strings.NewReader(fmt.Sprintf(order, "W1")))
	require.Equal(t, http.StatusCreated, code, body)
	require.Len(t, fo.created, 1)
}

func stockOf(t *testing.T, srv *httptest.Server, wh string) map[string]int64 {
	t.Helper()
	code, body := do(t, http.MethodGet, srv.URL+"/api/v1/stock?warehouse="+wh, "", nil)
	require.Equal(t, http.StatusOK, code, body)
	var v struct {
		Items []struct {
			Location, SKU string
			OnHand        int64 `json:"on_hand"`
		}
	}
	require.NoError(t, json.Unmarshal([]byte(body), &v))
	out := map[string]int64{}
	for _, it := range v.Items {
		out[it.Location+"/"+it.SKU] = it.OnHand
	}
	return out
}

func waitImport(t *testing.T, srv *httptest.Server, id string) ImportJob {
	t.Helper()
	var j ImportJob
	waitUntil(t, "import "+id+" done", func() bool {
		code, body := do(t, http.MethodGet, srv.URL+"/api/v1/imports/"+id, "", nil)
		require.Equal(t, http.StatusOK, code, body)
		require.NoError(t, json.Unmarshal([]byte(body), &j))
		return j.Status != "running"
	})
	return j
}

// TestStockImportOverLimitIs413AndAppliesNothing: the upload that used to
// be cut at the limit (a qty of 123456 imported as 12, the next row lost,
// the job "done") is refused whole.
func TestStockImportOverLimitIs413AndAppliesNothing(t *testing.T) {
	head := "warehouse,location,sku,qty\n"
	row1 := "W1,L1,A,5\n"
	row2 := "W1,L1,B,123456\n"
	row3 := "W1,L1,C,7\n"
	limit := int64(len(head) + len(row1) + len(row2) - 4) // cuts inside row2's qty
	srv, _ := newBadgerAPI(t, Deps{MaxImportBytes: limit})
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(head + row1 + row2 + row3)
		if chunked {
			body = io.MultiReader(body) // no Content-Length: the limit is found while reading
		}
		code, resp := do(t, http.MethodPost, srv.URL+"/api/v1/imports/stock", "text/csv", body)
		require.Equal(t, http.StatusRequestEntityTooLarge, code, resp)
	}
	require.Empty(t, stockOf(t, srv, "W1"), "no row of a refused upload is applied")
}

// TestStockImportWithRowErrorsAppliesNothing: every row is checked first,
// with a report per bad row (line number and reason); one bad row and the
// good rows around it are not applied either.
func TestStockImportWithRowErrorsAppliesNothing(t *testing.T) {
	srv, _ := newBadgerAPI(t, Deps{})
	csvBody := "warehouse,location,sku,qty\nW1,L1,A,5\nW1,L1,B,123456\nW1,L1,C,-3\n..,L1,D,1\nW1,L1,E,9223372036854775807\nW1,L1,\"F\n"
	code, body := do(t, http.MethodPost, srv.URL+"/api/v1/imports/stock", "text/csv", strings.NewReader(csvBody))
	require.Equal(t, http.StatusAccepted, code, body)
	var j ImportJob
	require.NoError(t, json.Unmarshal([]byte(body), &j))
	require.Equal(t, 6, j.Total)
	j = waitImport(t, srv, j.ID)
	require.Equal(t, "failed", j.Status)
	require.Equal(t, 6, j.Checked)
	require.Zero(t, j.Done, "no row applied")
	require.Equal(t, 4, j.Failed, "%+v", j.Errors)
	require.Contains(t, j.Message, "4 row(s)")
	rows := map[int]string{}
	for _, e := range j.Errors {
		rows[e.Row] = e.Error
	}
	require.Contains(t, rows[4], "qty")
	require.Contains(t, rows[5], "warehouse")
	require.Contains(t, rows[6], "qty")
	require.Contains(t, rows, 7)
	require.Empty(t, stockOf(t, srv, "W1"), "the good rows of a refused file are not applied")

	// The same file without its bad rows applies whole.
	code, body = do(t, http.MethodPost, srv.URL+"/api/v1/imports/stock", "text/csv", strings.NewReader("warehouse,location,sku,qty\nW1,L1,A,5\nW1,L1,B,123456\n"))
	require.Equal(t, http.StatusAccepted, code, body)
	require.NoError(t, json.Unmarshal([]byte(body), &j))
	j = waitImport(t, srv, j.ID)
	require.Equal(t, "done", j.Status, "%+v", j)
	require.Equal(t, 2, j.Done)
	require.Equal(t, map[string]int64{"L1/A": 5, "L1/B": 123456}, stockOf(t, srv, "W1"))
}

// TestExportsNeutraliseFormulas: a sku that a spreadsheet would run comes
// out of the CSV exports quoted, and imports read it back unchanged.
func TestExportsNeutraliseFormulas(t *testing.T) {
	srv, _ := newBadgerAPI(t, Deps{})
	evil := `=HYPERLINK("http://x","y")`
	imp := "warehouse,location,sku,qty\nW1,L1,\"" + strings.ReplaceAll(evil, `"`, `""`) + "\",3\nW1,@L2,-SKU,4\n"
	code, body := do(t, http.MethodPost, srv.URL+"/api/v1/imports/stock", "text/csv", strings.NewReader(imp))
	require.Equal(t, http.StatusAccepted, code, body)
	var j ImportJob
	require.NoError(t, json.Unmarshal([]byte(body), &j))
	require.Zero(t, waitImport(t, srv, j.ID).Failed)

	code, body = do(t, http.MethodGet, srv.URL+"/api/v1/stock/snapshot.csv?warehouse=W1", "", nil)
	require.Equal(t, http.StatusOK, code)
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	require.NoError(t, err)
	require.Contains(t, recs, []string{"W1", "L1", "'" + evil, "", "3", "", "available"})
	require.Contains(t, recs, []string{"W1", "'@L2", "'-SKU", "", "4", "", "available"})

	code, body = do(t, http.MethodPut, srv.URL+"/api/v1/masterdata/W1/items/-1%2B1", "application/json", strings.NewReader(`{"sku":"-1+1"}`))
	require.Equal(t, http.StatusOK, code, body)
	code, body = do(t, http.MethodGet, srv.URL+"/api/v1/masterdata/W1/items?format=csv", "", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "'-1+1")
	// The export imports back to the same sku, not to "'-1+1".
	code, body = do(t, http.MethodPost, srv.URL+"/api/v1/masterdata/W2/items/import", "text/csv", bytes.NewReader([]byte(body)))
	require.Equal(t, http.StatusOK, code, body)
	code, body = do(t, http.MethodGet, srv.URL+"/api/v1/masterdata/W2/items/-1%2B1", "", nil)
	require.Equal(t, http.StatusOK, code, body)
}

// waitUntil polls cond until it holds, failing after a generous deadline.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
