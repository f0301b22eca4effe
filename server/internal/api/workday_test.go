package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/dashboard"
	"github.com/shelfsync/shelfsync/server/internal/masterdata"
	"github.com/shelfsync/shelfsync/server/internal/orders"
	"github.com/shelfsync/shelfsync/server/internal/store"
	"github.com/shelfsync/shelfsync/server/internal/store/badger"
)

// workdayServer is a handler over an in-memory store with master data
// (two pick zones and a dock), a purchase order partly received, stock
// at the dock and in the bins, an order routed to a pick task and a count
// task: what the dashboard's views of the day's work sum up.
type workdayServer struct {
	url    string
	t0     time.Time // when the first op happened
	series *dashboard.Series
}

func newWorkdayServer(t *testing.T) workdayServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := badger.Open(badger.Options{InMemory: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	ord := orders.New(orders.Config{Debounce: time.Millisecond, Owner: func(wh, sku string) (owner string, err error) {
		err = st.View(func(tx store.Tx) error { // as the app does: the item's owner in master data
			it, _, err := masterdata.ItemOf(tx, wh, sku)
			owner = it.Owner
			return err
		})
		return owner, err
	}}, st)
	require.NoError(t, ord.Start(ctx))
	series := dashboard.NewSeries(60, nil)
	h := New(Deps{Store: st, Ready: func() error { return nil }, Orders: ord, Committed: followStock{ord}, Series: series})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	post := func(path, body string, want int) {
		t.Helper()
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, want, resp.StatusCode, "%s: %s", path, b)
	}
	post("/api/v1/masterdata/wh1/zones", `[{"zone":"IN","gateway":"dock-1"},{"zone":"ZA","gateway":"pick-1"},{"zone":"ZB","gateway":"pick-2"}]`, 200)
	post("/api/v1/masterdata/wh1/locations", `[{"code":"DOCK-1","zone":"IN","type":"dock"},{"code":"A-01","zone":"ZA","type":"pick","sellable":true},{"code":"B-01","zone":"ZB","type":"storage","sellable":true}]`, 200)
	post("/api/v1/masterdata/wh1/items", `[{"sku":"WIDGET","owner":"acme"},{"sku":"GADGET","owner":"beta"}]`, 200)
	post("/api/v1/masterdata/wh1/thresholds", `[{"sku":"WIDGET","reorder_point":10,"reorder_qty":20,"max":50},{"sku":"GADGET","reorder_point":2,"reorder_qty":5}]`, 200)
	post("/api/v1/masterdata/wh1/pos", `[{"id":"P1","supplier":"ACME","dock":"DOCK-1","lines":[{"line":1,"sku":"WIDGET","qty":10},{"line":2,"sku":"GADGET","qty":5}]}]`, 200)

	t0 := time.Now().Add(-30 * time.Minute).Truncate(time.Millisecond)
	at := func(min int) protocol.HLC {
		return protocol.MakeHLC(t0.Add(time.Duration(min)*time.Minute).UnixMilli(), 0)
	}
	for _, op := range []protocol.Op{
		{HLC: at(0), Kind: protocol.OpReceive, Location: "DOCK-1", SKU: "WIDGET", Qty: 6, Refs: &protocol.Refs{PO: "P1", POLine: 1}},
		{HLC: at(1), Kind: protocol.OpReceive, Location: "DOCK-1", SKU: "GADGET", Qty: 3, Refs: &protocol.Refs{PO: "P1", POLine: 2}},
		{HLC: at(2), Kind: protocol.OpAdjust, Location: "DOCK-1", SKU: "GADGET", Qty: -3, Reason: "damaged"},
		{HLC: at(5), Kind: protocol.OpReceive, Location: "DOCK-1", SKU: "GADGET", Qty: 2, Refs: &protocol.Refs{PO: "P1", POLine: 2}},
		{HLC: at(6), Kind: protocol.OpReceive, Location: "A-01", SKU: "WIDGET", Qty: 4},
		{HLC: at(7), Kind: protocol.OpReceive, Location: "B-01", SKU: "GADGET", Qty: 5},
		{HLC: at(8), Kind: protocol.OpReceive, Location: "B-01", SKU: "SPROCKET", Qty: 1},
		{HLC: at(9), Kind: protocol.OpAdjust, Location: "B-01", SKU: "SPROCKET", Qty: -1, Reason: "damaged"},
	} {
		_, res, err := st.IssueOp(ctx, "wh1", op)
		require.NoError(t, err)
		require.Equal(t, 1, res.Applied, "%+v", op)
		ord.Changed(res.Changes) // as the app does: orders are admitted against this stock
	}
	post("/api/v1/orders", `{"warehouse":"wh1","channel":"web","external_id":"7","lines":[{"sku":"WIDGET","qty":3}]}`, 201)
	// one order, one owner: acme's and beta's skus in one order are refused
	post("/api/v1/orders", `{"warehouse":"wh1","channel":"web","external_id":"8","lines":[{"sku":"WIDGET","qty":1},{"sku":"GADGET","qty":1}]}`, 400)
	post("/api/v1/routing/wh1/count-tasks", `{"location":"B-01","reason":"cycle"}`, 201)
	return workdayServer{url: srv.URL, t0: t0, series: series}
}

func (s workdayServer) get(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := http.Get(s.url + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, 200, resp.StatusCode, "%s: %s", path, b)
	require.NoError(t, json.Unmarshal(b, v), "%s", b)
	// and the body, with its rows, matches the OpenAPI document
	doc := loadDoc(t)
	tmpl := templateOf(doc, "GET", strings.SplitN(path, "?", 2)[0])
	require.NotEmpty(t, tmpl, path)
	var any any
	require.NoError(t, json.Unmarshal(b, &any))
	require.NoError(t, validate(doc, doc.Paths[tmpl]["get"].Responses["200"].Content["application/json"]["schema"], any, "$"), "%s: %s", path, b)
}

func TestWorkdayViews(t *testing.T) {
	s := newWorkdayServer(t)

	t.Run("task progress per zone and gateway", func(t *testing.T) {
		var body struct {
			Groups []TaskGroup
			Tasks  []protocol.Task
		}
		s.get(t, "/api/v1/tasks/summary?warehouse=wh1", &body)
		require.Len(t, body.Tasks, 2)
		require.Equal(t, []TaskGroup{
			{Kind: "count", Zone: "ZB", Gateway: "pick-2", Tasks: 1, Open: 1},
			{Kind: "pick", Zone: "ZA", Gateway: "pick-1", Tasks: 1, Open: 1, Qty: 3},
		}, body.Groups, "the order's pick at A-01 (zone ZA) and the count of B-01 (zone ZB)")
	})

	t.Run("receipt progress", func(t *testing.T) {
		var body struct{ Items []POProgress }
		s.get(t, "/api/v1/receiving/wh1/pos", &body)
		require.Len(t, body.Items, 1)
		p := body.Items[0]
		require.Equal(t, "P1", p.ID)
		require.EqualValues(t, 15, p.Ordered)
		require.EqualValues(t, 11, p.ReceivedQty, "6 widgets and 3+2 gadgets, the damaged ones included: they were received")
		require.Equal(t, map[uint32]int64{1: 6, 2: 5}, p.Received)
	})

	t.Run("the dock queue with age", func(t *testing.T) {
		var body struct {
			Docks []string
			Items []DockRow
		}
		s.get(t, "/api/v1/receiving/wh1/dock", &body)
		require.Equal(t, []string{"DOCK-1"}, body.Docks)
		require.Len(t, body.Items, 2)
		w, g := body.Items[0], body.Items[1]
		require.Equal(t, "WIDGET", w.SKU, "oldest first")
		require.EqualValues(t, 6, w.OnHand)
		require.Equal(t, s.t0.UnixMilli(), w.SinceMS)
		require.GreaterOrEqual(t, w.AgeSeconds, 30*60.0)
		require.Equal(t, "GADGET", g.SKU)
		require.EqualValues(t, 2, g.OnHand)
		require.Equal(t, s.t0.Add(5*time.Minute).UnixMilli(), g.SinceMS, "the wait restarts when the key went back to 0")
	})

	t.Run("the reorder list", func(t *testing.T) {
		var body struct{ Items []ReorderRow }
		s.get(t, "/api/v1/reorder/wh1", &body)
		require.Equal(t, []ReorderRow{{SKU: "WIDGET", OnHand: 10, ReorderPoint: 10, ReorderQty: 20, Max: 50, OnOrder: 4, SuggestedQty: 36}}, body.Items,
			"WIDGET: 6 at the dock + 4 in A-01 is at its point; 4 more are on order; GADGET's 7 is above its point 2")
	})

	t.Run("stock hides zero rows when asked", func(t *testing.T) {
		var all, nonzero struct{ Items []map[string]any }
		s.get(t, "/api/v1/stock?warehouse=wh1", &all)
		s.get(t, "/api/v1/stock?warehouse=wh1&nonzero=true&limit=50", &nonzero)
		require.Len(t, all.Items, 5, "DOCK-1 ×2, A-01, B-01 ×2 (SPROCKET at 0)")
		require.Len(t, nonzero.Items, 4)
		for _, r := range nonzero.Items {
			require.NotEqual(t, "SPROCKET", r["sku"])
		}
	})

	t.Run("orders per hour", func(t *testing.T) {
		var body struct {
			Hours, Total int
			Items        []struct {
				AtMS   int64 `json:"at_ms"`
				Orders int
			}
		}
		s.get(t, "/api/v1/orders/per-hour?warehouse=wh1&hours=6", &body)
		require.Equal(t, 6, body.Hours)
		require.Len(t, body.Items, 6)
		require.Equal(t, 1, body.Total)
		n := 0
		for i, b := range body.Items {
			n += b.Orders
			if i > 0 {
				require.Equal(t, time.Hour.Milliseconds(), b.AtMS-body.Items[i-1].AtMS)
			}
		}
		require.Equal(t, 1, n)
		s.get(t, "/api/v1/orders/per-hour?warehouse=wh1&channel=market", &body)
		require.Equal(t, 0, body.Total, "the one order came from web")
		s.get(t, "/api/v1/orders/per-hour?warehouse=wh2", &body)
		require.Equal(t, 0, body.Total)
		require.Len(t, body.Items, 24, "24 hours by default")
	})

	t.Run("orders by owner", func(t *testing.T) {
		var body struct {
			Items []orders.Order
		}
		s.get(t, "/api/v1/orders?warehouse=wh1", &body)
		require.Len(t, body.Items, 1, "the mixed-owner order was refused")
		require.Equal(t, "acme", body.Items[0].Owner, "WIDGET is acme's item")
		s.get(t, "/api/v1/orders?warehouse=wh1&owner=acme", &body)
		require.Len(t, body.Items, 1)
		s.get(t, "/api/v1/orders?warehouse=wh1&owner=beta", &body)
		require.Empty(t, body.Items)
	})

	t.Run("ingest series", func(t *testing.T) {
		s.series.Applied("wh1", "dock-1", 4, 0)
		s.series.Backlog("wh1", "dock-1", 2)
		var body struct {
			Minutes int
			Items   []dashboard.GatewaySeries
		}
		s.get(t, "/api/v1/gateways/series?warehouse=wh1", &body)
		require.Equal(t, 60, body.Minutes)
		require.Len(t, body.Items, 1)
		require.Len(t, body.Items[0].Points, 60)
		require.EqualValues(t, 4, body.Items[0].Points[59].Applied)
	})

	for _, bad := range []string{"/api/v1/orders/per-hour?hours=0", "/api/v1/tasks/summary", "/api/v1/stock?warehouse=wh1&nonzero=maybe"} {
		resp, err := http.Get(s.url + bad)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, 400, resp.StatusCode, bad)
	}
}

func TestWaitingSince(t *testing.T) {
	// the wait starts at the first op after the key was last at or below 0
	require.EqualValues(t, 0, waitingSince(nil))
	h := func(ms int64, onHand int64) store.HistoryEntry {
		return store.HistoryEntry{HLC: protocol.MakeHLC(ms, 0), OnHand: onHand}
	}
	require.EqualValues(t, 10, waitingSince([]store.HistoryEntry{h(10, 2), h(20, 5)}))
	require.EqualValues(t, 30, waitingSince([]store.HistoryEntry{h(10, 2), h(20, 0), h(30, 1), h(40, 3)}))
	require.EqualValues(t, 30, waitingSince([]store.HistoryEntry{h(10, 2), h(20, -1), h(30, 1)}))
	require.EqualValues(t, 0, waitingSince([]store.HistoryEntry{h(10, 2), h(20, 0)}))
}
