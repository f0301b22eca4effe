package api

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/dashboard"
	"github.com/shelfsync/shelfsync/server/internal/masterdata"
	"github.com/shelfsync/shelfsync/server/internal/orders"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// The views of the day's work the dashboard shows: orders per hour, task
// progress per zone and gateway, receipt progress of purchase orders, the
// dock queue, the reorder list and each gateway's ingest over the last
// hour. Each is a read of what the other routes serve, summed up on the
// server so that a page reads one small document.

// IngestSeries is the per-gateway, per-minute ingest history
// (dashboard.Series).
type IngestSeries interface {
	Window(wh string) []dashboard.GatewaySeries
	Minutes() int
}

var _ IngestSeries = (*dashboard.Series)(nil)

func (h *Handler) registerWorkday() {
	h.handle("GET /api/v1/gateways/series", func(w http.ResponseWriter, r *http.Request) {
		if h.d.Series == nil {
			writeJSON(w, http.StatusOK, map[string]any{"minutes": 0, "items": []dashboard.GatewaySeries{}})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"minutes": h.d.Series.Minutes(), "items": h.d.Series.Window(r.URL.Query().Get("warehouse"))})
	})
	h.handle("GET /api/v1/orders/per-hour", h.ordersPerHour)
	h.handle("GET /api/v1/tasks/summary", h.taskSummary)
	h.handle("GET /api/v1/receiving/{warehouse}/pos", h.receipts)
	h.handle("GET /api/v1/receiving/{warehouse}/dock", h.dockQueue)
	h.handle("GET /api/v1/reorder/{warehouse}", h.reorderList)
}

// clock returns the wall clock the views measure ages against.
func (h *Handler) clock() time.Time {
	if h.d.Hooks.Wall != nil {
		return h.d.Hooks.Wall()
	}
	return time.Now()
}

// ordersPerHour counts the orders created in each of the last `hours`
// hours (default 24, at most 168), oldest first, the last bucket being
// the current hour.
func (h *Handler) ordersPerHour(w http.ResponseWriter, r *http.Request) {
	hours, ok := intParam(r, "hours", 24)
	if !ok || hours < 1 || hours > 168 {
		writeError(w, http.StatusBadRequest, "hours must be 1..168")
		return
	}
	q := r.URL.Query()
	owner, ok := ownerScope(w, r, q.Get("owner"))
	if !ok {
		return
	}
	now := h.clock().Truncate(time.Hour)
	from := now.Add(-time.Duration(hours-1) * time.Hour)
	type bucket struct {
		AtMS   int64 `json:"at_ms"`
		Orders int   `json:"orders"`
	}
	buckets := make([]bucket, hours)
	for i := range buckets {
		buckets[i].AtMS = from.Add(time.Duration(i) * time.Hour).UnixMilli()
	}
	created, err := h.d.Orders.CreatedSince(r.Context(), orders.Query{Warehouse: q.Get("warehouse"), Channel: q.Get("channel"), Owner: owner}, from.UnixMilli())
	if err != nil {
		orderError(w, err)
		return
	}
	total := 0
	for _, ms := range created {
		if i := int((ms - from.UnixMilli()) / time.Hour.Milliseconds()); ms >= from.UnixMilli() && i < hours {
			buckets[i].Orders++
			total++
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"hours": hours, "total": total, "items": buckets})
}

// TaskGroup is the progress of the tasks of one kind in one zone, served
// by one gateway.
type TaskGroup struct {
	Kind    string `json:"kind"`
	Zone    string `json:"zone"`    // "" when the location has no zone
	Gateway string `json:"gateway"` // the zone's gateway; "" when none is set
	Tasks   int    `json:"tasks"`
	Open    int    `json:"open"`
	Done    int    `json:"done"`
	Short   int    `json:"short"`
	Cancel  int    `json:"cancelled"`
	// Qty and Picked sum the pick tasks' quantities and what was picked.
	Qty    int64 `json:"qty"`
	Picked int64 `json:"picked"`
}

func (h *Handler) taskSummary(w http.ResponseWriter, r *http.Request) {
	wh := r.URL.Query().Get("warehouse")
	if err := protocol.ValidateID(wh); err != nil {
		writeError(w, http.StatusBadRequest, "warehouse: "+err.Error()+" (/api/v1/tasks/summary?warehouse=WH)")
		return
	}
	ts, err := h.d.Store.Tasks(r.Context(), wh)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	zoneOf, gwOf, err := h.zones(r.Context(), wh)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	groups := map[[2]string]*TaskGroup{}
	for _, t := range ts {
		z := zoneOf[t.Location]
		g := groups[[2]string{t.Kind, z}]
		if g == nil {
			g = &TaskGroup{Kind: t.Kind, Zone: z, Gateway: gwOf[z]}
			groups[[2]string{t.Kind, z}] = g
		}
		g.Tasks++
		switch t.Status {
		case "", "open":
			g.Open++
		case "done":
			g.Done++
		case "short":
			g.Short++
		case "cancelled":
			g.Cancel++
		}
		if t.Kind == "pick" {
			g.Qty += t.Qty
			g.Picked += t.Picked
		}
	}
	out := make([]TaskGroup, 0, len(groups))
	for _, g := range groups {
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Zone < out[j].Zone
	})
	if ts == nil {
		ts = []protocol.Task{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"warehouse": wh, "groups": out, "tasks": ts})
}

// zones returns the zone of every location of wh and the gateway of every
// zone, from the master data.
func (h *Handler) zones(ctx context.Context, wh string) (zoneOf, gwOf map[string]string, err error) {
	zoneOf, gwOf = map[string]string{}, map[string]string{}
	ls, err := h.md.List(ctx, wh, masterdata.Locations)
	if err != nil {
		return nil, nil, err
	}
	for _, l := range ls.([]protocol.Location) {
		zoneOf[l.Code] = l.Zone
	}
	zs, err := h.md.List(ctx, wh, masterdata.Zones)
	if err != nil {
		return nil, nil, err
	}
	for _, z := range zs.([]masterdata.Zone) {
		gwOf[z.Zone] = z.Gateway
	}
	return zoneOf, gwOf, nil
}

// POProgress is a purchase order with its receipt progress.
type POProgress struct {
	masterdata.PO
	Ordered       int64 `json:"ordered"`        // units over every line
	ReceivedQty   int64 `json:"received_qty"`   // units received against its lines (at most each line's qty counts)
	Over          int64 `json:"over"`           // units received beyond a line's qty
	UnexpectedQty int64 `json:"unexpected_qty"` // units received for skus no line lists
}

func (h *Handler) receipts(w http.ResponseWriter, r *http.Request) {
	wh, ok := pathWarehouse(w, r)
	if !ok {
		return
	}
	pos, err := h.md.Receipts(r.Context(), wh)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := make([]POProgress, 0, len(pos))
	for _, p := range pos {
		pp := POProgress{PO: p}
		for _, l := range p.Lines {
			got := p.Received[l.Line]
			pp.Ordered += l.Qty
			pp.ReceivedQty += min(got, l.Qty)
			pp.Over += max(got-l.Qty, 0)
		}
		for _, n := range p.Unexpected {
			pp.UnexpectedQty += n
		}
		out = append(out, pp)
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

// DockRow is stock waiting at a dock location to be put away.
type DockRow struct {
	store.StockRow
	// SinceMS is when the key last rose from zero (or below) to the
	// quantity it has now been holding: the start of its wait.
	SinceMS    int64   `json:"since_ms"`
	AgeSeconds float64 `json:"age_seconds"`
}

// dockQueue lists the stock at the warehouse's dock locations (locations
// of type dock, and the docks purchase orders name), oldest first.
func (h *Handler) dockQueue(w http.ResponseWriter, r *http.Request) {
	wh, ok := pathWarehouse(w, r)
	if !ok {
		return
	}
	docks, err := h.docks(r.Context(), wh)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	now := h.clock()
	out := []DockRow{}
	for _, loc := range docks {
		rows, err := h.d.Store.Stock(r.Context(), store.StockQuery{Warehouse: wh, Location: loc, NonZero: true})
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		for _, row := range rows {
			if row.OnHand <= 0 {
				continue
			}
			hs, err := h.d.Store.History(r.Context(), row.Key())
			if err != nil {
				writeError(w, http.StatusInternalServerError, err.Error())
				return
			}
			d := DockRow{StockRow: row, SinceMS: waitingSince(hs)}
			if d.SinceMS > 0 {
				d.AgeSeconds = max(now.Sub(time.UnixMilli(d.SinceMS)).Seconds(), 0)
			}
			out = append(out, d)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].SinceMS < out[j].SinceMS })
	writeJSON(w, http.StatusOK, map[string]any{"docks": docks, "items": out})
}

// waitingSince returns the time (Unix ms) of the first op after the key's
// on-hand was last at or below zero, from its history in merge order.
func waitingSince(hs []store.HistoryEntry) int64 {
	var since int64
	for i, e := range hs {
		if e.OnHand <= 0 {
			since = 0
			continue
		}
		if since == 0 || (i > 0 && hs[i-1].OnHand <= 0) {
			since = e.HLC.Millis()
		}
	}
	return since
}

// docks returns the dock locations of wh, sorted.
func (h *Handler) docks(ctx context.Context, wh string) ([]string, error) {
	set := map[string]bool{}
	ls, err := h.md.List(ctx, wh, masterdata.Locations)
	if err != nil {
		return nil, err
	}
	for _, l := range ls.([]protocol.Location) {
		if l.Type == protocol.LocDock {
			set[l.Code] = true
		}
	}
	ps, err := h.md.List(ctx, wh, masterdata.POs)
	if err != nil {
		return nil, err
	}
	for _, p := range ps.([]masterdata.PO) {
		if p.Dock != "" {
			set[p.Dock] = true
		}
	}
	out := make([]string, 0, len(set))
	for l := range set {
		out = append(out, l)
	}
	sort.Strings(out)
	return out, nil
}

// ReorderRow is a sku at or below its reorder point.
type ReorderRow struct {
	SKU          string `json:"sku"`
	OnHand       int64  `json:"on_hand"`
	ReorderPoint int64  `json:"reorder_point"`
	ReorderQty   int64  `json:"reorder_qty"`
	Max          int64  `json:"max,omitempty"`
	OnOrder      int64  `json:"on_order"`
	SuggestedQty int64  `json:"suggested_qty"`
	Seasonal     bool   `json:"seasonal,omitempty"`
}

// reorderList lists every sku of wh with a threshold whose whole-warehouse
// on-hand is at or below the reorder point in effect today, with the
// suggested order quantity (protocol.Threshold.SuggestedOrder, the one
// formula).
func (h *Handler) reorderList(w http.ResponseWriter, r *http.Request) {
	wh, ok := pathWarehouse(w, r)
	if !ok {
		return
	}
	owner, ok := ownerScope(w, r, r.URL.Query().Get("owner"))
	if !ok {
		return
	}
	ths, err := h.md.List(r.Context(), wh, masterdata.Thresholds)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	rows, err := h.d.Store.Stock(r.Context(), store.StockQuery{Warehouse: wh, NonZero: true})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	onHand := map[string]int64{}
	for _, row := range rows {
		onHand[row.SKU] += row.OnHand
	}
	onOrder, err := h.md.OnOrderAll(r.Context(), wh)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	today := h.clock().UTC().Format(time.DateOnly)
	out := []ReorderRow{}
	for _, t := range ths.([]protocol.Threshold) {
		eff := t.On(today)
		n := onHand[t.SKU]
		if n > eff.ReorderPoint {
			continue
		}
		if owner != "" {
			if o, err := h.skuOwner(r.Context(), wh, t.SKU); err != nil {
				writeError(w, http.StatusInternalServerError, err.Error())
				return
			} else if o != owner {
				continue
			}
		}
		out = append(out, ReorderRow{SKU: t.SKU, OnHand: n, ReorderPoint: eff.ReorderPoint, ReorderQty: eff.ReorderQty, Max: eff.Max,
			OnOrder: onOrder[t.SKU], Seasonal: seasonalOn(t, today),
			SuggestedQty: eff.SuggestedOrder(n, onOrder[t.SKU])})
	}
	writeJSON(w, http.StatusOK, map[string]any{"warehouse": wh, "day": today, "items": out})
}

// pathWarehouse reads and checks the {warehouse} path value.
func pathWarehouse(w http.ResponseWriter, r *http.Request) (string, bool) {
	v := r.PathValue("warehouse")
	if err := protocol.ValidateID(v); err != nil {
		writeError(w, http.StatusBadRequest, "warehouse: "+err.Error())
		return "", false
	}
	return v, true
}

// seasonalOn reports whether a seasonal override of t is in effect on day.
func seasonalOn(t protocol.Threshold, day string) bool {
	for _, s := range t.Seasonal {
		if s.From <= day && day <= s.To {
			return true
		}
	}
	return false
}
