package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStockImportObeysScannerRules: the rules a gateway's scanner applies
// hold for a stock import — an unknown bin (once the warehouse defines
// locations), a lot-tracked item without a lot, an expiry-tracked item
// without an expiry, a malformed expiry — each a row error with its row
// number, and nothing of the file is applied. Fixed, the file applies.
func TestStockImportObeysScannerRules(t *testing.T) {
	srv, _ := newBadgerAPI(t, Deps{})
	put := func(path, body string) {
		t.Helper()
		code, resp := do(t, http.MethodPut, srv.URL+"/api/v1/masterdata/W1/"+path, "application/json", strings.NewReader(body))
		require.Equal(t, http.StatusOK, code, resp)
	}
	put("locations/A-01", `{"code":"A-01","type":"storage"}`)
	put("items/PLAIN", `{"sku":"PLAIN"}`)
	put("items/LOTTED", `{"sku":"LOTTED","track_lot":true}`)
	put("items/MILK", `{"sku":"MILK","track_expiry":true}`)
	put("locations/G-01", `{"code":"G-01","type":"storage","owner":"globex"}`)
	put("items/ACME-TEA", `{"sku":"ACME-TEA","owner":"acme"}`)

	imp := func(csv string) ImportJob {
		t.Helper()
		code, body := do(t, http.MethodPost, srv.URL+"/api/v1/imports/stock", "text/csv", strings.NewReader(csv))
		require.Equal(t, http.StatusAccepted, code, body)
		var j ImportJob
		require.NoError(t, json.Unmarshal([]byte(body), &j))
		return waitImport(t, srv, j.ID)
	}
	j := imp("warehouse,location,sku,lot,expiry,qty\n" +
		"W1,A-01,PLAIN,,,5\n" + // row 2: fine
		"W1,Z-99,PLAIN,,,1\n" + // row 3: unknown bin
		"W1,A-01,LOTTED,,,2\n" + // row 4: no lot
		"W1,A-01,MILK,L7,,3\n" + // row 5: no expiry
		"W1,A-01,MILK,L7,2026-13-01,3\n" + // row 6: not a date
		"W1,A-01,MILK,,2027-01-31,3\n" + // row 7: expiry-tracked is lot-tracked: no lot
		"W1,A-01,MILK,L8,2027-01-31,4\n" + // row 8: fine
		"W1,G-01,ACME-TEA,,,1\n") // row 9: acme's item at globex's bin
	require.Equal(t, "failed", j.Status, "%+v", j)
	require.Zero(t, j.Done)
	got := map[int]string{}
	for _, e := range j.Errors {
		got[e.Row] = e.Error
	}
	require.Len(t, got, 6, "%+v", j.Errors)
	require.Contains(t, got[9], "G-01 holds globex's units")
	require.Contains(t, got[3], `unknown location "Z-99"`)
	require.Contains(t, got[4], "LOTTED is lot-tracked")
	require.Contains(t, got[5], "MILK is expiry-tracked")
	require.Contains(t, got[6], `expiry "2026-13-01"`)
	require.Contains(t, got[7], "MILK is lot-tracked")
	require.Empty(t, stockOf(t, srv, "W1"), "nothing half-applied")

	j = imp("warehouse,location,sku,lot,expiry,qty\nW1,A-01,PLAIN,,,5\nW1,A-01,LOTTED,L1,,2\nW1,A-01,MILK,L8,2027-01-31,4\n")
	require.Equal(t, "done", j.Status, "%+v", j)
	require.Equal(t, map[string]int64{"A-01/PLAIN": 5, "A-01/LOTTED": 2, "A-01/MILK": 4}, stockOf(t, srv, "W1"))
}
