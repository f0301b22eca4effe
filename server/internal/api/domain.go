package api

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/protocol/ledger"
	"github.com/shelfsync/shelfsync/server/internal/conflicts"
	"github.com/shelfsync/shelfsync/server/internal/events"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// Hooks are what the API reads from the running server.
type Hooks struct {
	// Now returns the server's HLC for server-origin ops.
	Now func() protocol.HLC
	// Gateway returns live details of a gateway (online, lag) to merge into
	// the stored record; may be nil.
	Live func(g *store.Gateway)
	// Wall returns the wall clock the dashboard's views measure ages and
	// hours against (time.Now when nil).
	Wall func() time.Time
}

// changed publishes the post-commit event of server-origin ops the API
// applied in wh.
func (h *Handler) changed(wh string, res store.Result) {
	h.publish(events.Event{Batches: []events.Batch{{Warehouse: wh, Gateway: protocol.ServerOrigin, WM: res.WM,
		Applied: res.Applied, Quarantined: res.Quarantined, Changes: res.Changes, Conflicts: res.Conflicts}}})
}

func (h *Handler) publish(ev events.Event) {
	if h.d.Committed != nil {
		h.d.Committed.Publish(ev)
	}
}

func (h *Handler) now() protocol.HLC {
	if h.d.Hooks.Now != nil {
		return h.d.Hooks.Now()
	}
	return protocol.MakeHLC(time.Now().UnixMilli(), 0)
}

func (h *Handler) registerDomain() {
	h.handle("GET /api/v1/gateways", func(w http.ResponseWriter, r *http.Request) {
		gs, err := h.d.Store.Gateways(r.Context(), r.URL.Query().Get("warehouse"))
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		type view struct {
			store.Gateway
			LagOps     uint64  `json:"lag_ops"`
			LagSeconds float64 `json:"lag_seconds"`
		}
		out := make([]view, 0, len(gs))
		for _, g := range gs {
			if h.d.Hooks.Live != nil {
				h.d.Hooks.Live(&g)
			}
			v := view{Gateway: g}
			if g.ReportedSeq > g.WM {
				v.LagOps = g.ReportedSeq - g.WM
				if g.LastApplied > 0 {
					v.LagSeconds = time.Since(time.UnixMilli(g.LastApplied)).Seconds()
				} else if g.LastSeen > 0 {
					v.LagSeconds = time.Since(time.UnixMilli(g.LastSeen)).Seconds()
				}
			}
			out = append(out, v)
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": out})
	})
	h.handle("GET /api/v1/conflicts", func(w http.ResponseWriter, r *http.Request) {
		a := h.d.Store
		q := r.URL.Query()
		limit, ok := intParam(r, "limit", 0)
		if !ok {
			writeError(w, http.StatusBadRequest, "limit must be a non-negative integer")
			return
		}
		owner, ok := ownerScope(w, r, q.Get("owner"))
		if !ok {
			return
		}
		cq := conflicts.Query{Warehouse: q.Get("warehouse"), Kind: conflicts.Kind(q.Get("kind")),
			Status: conflicts.Status(q.Get("status")), Location: q.Get("location"), SKU: q.Get("sku"), Limit: limit}
		if owner != "" {
			cq.Limit = 0 // the owner's are picked below
		}
		cs, err := a.Conflicts(r.Context(), cq)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if owner != "" {
			cs = slices.DeleteFunc(cs, func(c conflicts.Conflict) bool { return c.Owner != owner })
			if limit > 0 && len(cs) > limit {
				cs = cs[:limit]
			}
		}
		if cs == nil {
			cs = []conflicts.Conflict{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": cs})
	})
	h.handle("POST /api/v1/conflicts/{id}/resolve", func(w http.ResponseWriter, r *http.Request) {
		a := h.d.Store
		var body struct {
			Action string `json:"action"`
			Qty    int64  `json:"qty"`
			By     string `json:"by"`
			Note   string `json:"note"`
		}
		if !decodeBody(w, r, &body) {
			return
		}
		res, err := a.ResolveConflict(r.Context(), r.PathValue("id"), store.Resolution{Action: body.Action, Qty: body.Qty, By: body.By, Note: body.Note, HLC: h.now()})
		switch {
		case errors.Is(err, conflicts.ErrNotFound):
			writeError(w, http.StatusNotFound, err.Error())
			return
		case errors.Is(err, conflicts.ErrResolved), errors.Is(err, conflicts.ErrResolution):
			writeError(w, http.StatusConflict, err.Error())
			return
		case err != nil:
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		res.Result.Conflicts = append(res.Result.Conflicts, res.Conflict) // the live feed shows the resolution
		h.changed(res.Conflict.Warehouse, res.Result)
		writeJSON(w, http.StatusOK, res)
	})
	h.handle("GET /api/v1/stock/history", func(w http.ResponseWriter, r *http.Request) {
		a := h.d.Store
		q := r.URL.Query()
		k := ledger.Key{WH: q.Get("warehouse"), Location: q.Get("location"), SKU: q.Get("sku"), Lot: q.Get("lot"), Owner: q.Get("owner")}
		var ok bool
		if k.Owner, ok = ownerScope(w, r, k.Owner); !ok { // the key names its owner: a client's token reads its own keys
			return
		}
		if k.WH == "" || k.Location == "" || k.SKU == "" {
			writeError(w, http.StatusBadRequest, "warehouse, location and sku are required (lot, owner and status optional)")
			return
		}
		st, err := protocol.ParseStockStatus(q.Get("status"))
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		k.Status = st
		hs, err := a.History(r.Context(), k)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"warehouse": k.WH, "location": k.Location, "sku": k.SKU, "lot": k.Lot, "owner": k.Owner, "status": k.Status, "items": hs})
	})
	h.handle("GET /api/v1/tasks", func(w http.ResponseWriter, r *http.Request) {
		a := h.d.Store
		ts, err := a.Tasks(r.Context(), r.URL.Query().Get("warehouse"))
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if ts == nil {
			ts = []protocol.Task{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": ts})
	})
	h.handle("POST /api/v1/quarantine/{warehouse}/{gateway}/{seq}/{action}", func(w http.ResponseWriter, r *http.Request) {
		a := h.d.Store
		seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "seq must be a number")
			return
		}
		wh := r.PathValue("warehouse")
		res, err := a.QuarantineAction(r.Context(), wh, r.PathValue("gateway"), seq, r.PathValue("action"), r.URL.Query().Get("by"))
		if errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusNotFound, err.Error())
			return
		}
		if err != nil {
			writeError(w, http.StatusConflict, err.Error())
			return
		}
		h.changed(wh, res)
		writeJSON(w, http.StatusOK, map[string]any{"applied": res.Applied})
	})
}
