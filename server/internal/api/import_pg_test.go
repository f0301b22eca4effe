package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/store/pgtest"
	"github.com/shelfsync/shelfsync/server/internal/store/postgres"
)

// TestIntegrationStockImportOnPostgres: a stock CSV of several chunks
// (ImportChunk rows each, one IssueOps transaction per warehouse run) over
// two warehouses is applied on PostgreSQL as on Badger: a key already on
// record is counted (its difference is a variance), a new key gets an
// opening balance, a new key with qty 0 writes nothing, and every applied
// row takes the warehouse's next server seq once.
func TestIntegrationStockImportOnPostgres(t *testing.T) {
	st, err := postgres.Open(context.Background(), pgtest.FreshSchema(t), postgres.Options{MaxConns: 4})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	srv := httptest.NewServer(New(Deps{Store: st, Ready: func() error { return nil }, UploadDir: t.TempDir()}))
	t.Cleanup(srv.Close)

	_, _, err = st.IssueOp(context.Background(), "W1", protocol.Op{HLC: protocol.MakeHLC(1000, 0), Kind: protocol.OpReceive, Location: "L0", SKU: "S0000", Qty: 50})
	require.NoError(t, err)

	const rows = 2*ImportChunk + 77
	var b strings.Builder
	b.WriteString("warehouse,location,sku,qty\n")
	want := map[string]map[string]int64{"W1": {}, "W2": {}}
	applied := map[string]int{}
	for i := range rows {
		wh := "W1"
		if i/100%2 == 1 { // runs of 100 rows per warehouse
			wh = "W2"
		}
		loc, sku, qty := fmt.Sprintf("L%d", i%7), fmt.Sprintf("S%04d", i), int64(i%5)
		if i == 0 {
			loc, qty = "L0", 20 // the key on record: counted down from 50
		}
		fmt.Fprintf(&b, "%s,%s,%s,%d\n", wh, loc, sku, qty)
		if qty != 0 || i == 0 {
			want[wh][loc+"/"+sku] = qty
			applied[wh]++
		}
	}
	code, body := do(t, http.MethodPost, srv.URL+"/api/v1/imports/stock?by=test", "text/csv", strings.NewReader(b.String()))
	require.Equal(t, http.StatusAccepted, code, body)
	var j ImportJob
	require.NoError(t, json.Unmarshal([]byte(body), &j))
	j = waitImport(t, srv, j.ID)
	require.Equal(t, "done", j.Status, "%+v", j)
	require.Equal(t, rows, j.Total)
	require.Equal(t, rows, j.Done)
	require.Zero(t, j.Failed, "%+v", j.Errors)

	for wh, w := range want {
		require.Equal(t, w, stockOf(t, srv, wh), wh)
		wm, err := st.Watermark(context.Background(), wh, protocol.ServerOrigin)
		require.NoError(t, err)
		extra := 0
		if wh == "W1" {
			extra = 1 // the receive before the import
		}
		require.Equal(t, uint64(applied[wh]+extra), wm, "%s: one server seq per applied row", wh)
	}
	cs, err := st.Conflicts(context.Background(), conflicts.Query{Warehouse: "W1", Kind: conflicts.KindVariance})
	require.NoError(t, err)
	require.Len(t, cs, 1, "the counted key's difference is a variance; opening balances are none")
	require.Equal(t, "S0000", cs[0].SKU)
	cs, err = st.Conflicts(context.Background(), conflicts.Query{})
	require.NoError(t, err)
	require.Len(t, cs, 1, "%+v", cs)
}
