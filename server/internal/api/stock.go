package api

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/expiry"
	"github.com/shelfsync/shelfsync/server/internal/store"
)

// statusMove is the body of POST /api/v1/stock/status.
type statusMove struct {
	Warehouse string               `json:"warehouse"`
	Location  string               `json:"location"`
	SKU       string               `json:"sku"`
	Lot       string               `json:"lot"`
	Owner     string               `json:"owner"`
	From      protocol.StockStatus `json:"from"` // default available
	To        protocol.StockStatus `json:"to"`
	Qty       int64                `json:"qty"` // 0: every unit of the from key
	Reason    string               `json:"reason"`
	By        string               `json:"by"`
}

// moveStatus issues the server-origin status op of m (docs/DESIGN.md,
// "Operations"): it replicates to the gateways and shows in the key's
// history like a scan.
func (h *Handler) moveStatus(r *http.Request, m statusMove) (protocol.Op, store.Result, error) {
	if err := protocol.ValidateID(m.Warehouse); err != nil {
		return protocol.Op{}, store.Result{}, fmt.Errorf("warehouse: %w", err)
	}
	if m.Qty == 0 {
		rows, err := h.d.Store.Stock(r.Context(), store.StockQuery{Warehouse: m.Warehouse, Location: m.Location, SKU: m.SKU, Lot: m.Lot, Owner: m.Owner})
		if err != nil {
			return protocol.Op{}, store.Result{}, err
		}
		for _, row := range rows {
			if row.Lot == m.Lot && row.Owner == m.Owner && row.Status == m.From {
				m.Qty = row.OnHand
			}
		}
		if m.Qty <= 0 {
			return protocol.Op{}, store.Result{}, fmt.Errorf("no %s units of %s%s at %s to move: give qty", m.From, m.SKU, lotOf(m.Lot), m.Location)
		}
	}
	op := protocol.Op{HLC: h.now(), Kind: protocol.OpStatus, Location: m.Location, SKU: m.SKU, Lot: m.Lot, Owner: m.Owner,
		Status: m.From, ToStatus: m.To, Qty: m.Qty, Reason: m.Reason, Operator: m.By}
	return h.d.Store.IssueOp(r.Context(), m.Warehouse, op)
}

func lotOf(lot string) string {
	if lot == "" {
		return ""
	}
	return " lot " + lot
}

func (h *Handler) registerStock() {
	h.handle("GET /api/v1/stock", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		sq := store.StockQuery{Warehouse: q.Get("warehouse"), Location: q.Get("location"), SKU: q.Get("sku"), Lot: q.Get("lot"), Owner: q.Get("owner")}
		if sq.Warehouse == "" {
			writeError(w, http.StatusBadRequest, "warehouse is required: /api/v1/stock?warehouse=WH[&sku=S][&location=L]")
			return
		}
		var ok bool
		if sq.Owner, ok = ownerScope(w, r, sq.Owner); !ok { // a client's token: its own stock only
			return
		}
		n, ok := intParam(r, "limit", 0)
		off, ok2 := intParam(r, "offset", 0)
		if !ok || !ok2 {
			writeError(w, http.StatusBadRequest, "limit and offset must be non-negative integers")
			return
		}
		switch v := q.Get("nonzero"); v {
		case "", "false", "0":
		case "true", "1":
			sq.NonZero = true
		default:
			writeError(w, http.StatusBadRequest, "nonzero must be true or false")
			return
		}
		if n > 0 { // one more than asked tells whether a next page exists
			sq.Limit = off + n + 1
		}
		rows, err := h.d.Store.Stock(r.Context(), sq)
		if err != nil {
			h.d.Logger.Error("stock query", "err", err)
			writeError(w, http.StatusInternalServerError, "stock query failed; see the server log")
			return
		}
		rows = rows[min(off, len(rows)):]
		more := n > 0 && len(rows) > n
		if more {
			rows = rows[:n]
		}
		if rows == nil {
			rows = []store.StockRow{}
		}
		writeJSON(w, http.StatusOK, listBody(rows, more, off+len(rows)))
	})
	// One call moves units between statuses: release a hold (to
	// "available"), reject held units ("damaged"), put units on hold.
	h.handle("POST /api/v1/stock/status", func(w http.ResponseWriter, r *http.Request) {
		var m statusMove
		if !decodeBody(w, r, &m) {
			return
		}
		var ok bool
		if m.Owner, ok = ownerScope(w, r, m.Owner); !ok { // a client's token moves its own units only
			return
		}
		op, res, err := h.moveStatus(r, m)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		h.changed(m.Warehouse, res)
		writeJSON(w, http.StatusOK, map[string]any{"op": op, "applied": res.Applied})
	})
	h.handle("GET /api/v1/stock/near-expiry", func(w http.ResponseWriter, r *http.Request) {
		wh := r.URL.Query().Get("warehouse")
		if wh == "" {
			writeError(w, http.StatusBadRequest, "warehouse is required: /api/v1/stock/near-expiry?warehouse=WH")
			return
		}
		if h.d.NearExpiry == nil {
			writeJSON(w, http.StatusOK, map[string]any{"items": []expiry.Lot{}})
			return
		}
		owner, ok := ownerScope(w, r, r.URL.Query().Get("owner"))
		if !ok {
			return
		}
		lots, err := h.d.NearExpiry(r.Context(), wh)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if owner != "" {
			lots = slices.DeleteFunc(lots, func(l expiry.Lot) bool { return l.Owner != owner })
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": lots})
	})
	h.handle("GET /api/v1/quarantine", func(w http.ResponseWriter, r *http.Request) {
		qs, err := h.d.Store.Quarantined(r.Context(), r.URL.Query().Get("warehouse"))
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		if qs == nil {
			qs = []store.Quarantined{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": qs})
	})
}
