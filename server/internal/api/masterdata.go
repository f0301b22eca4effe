package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/shelfsync/shelfsync/protocol"
	"github.com/shelfsync/shelfsync/server/internal/events"
	"github.com/shelfsync/shelfsync/server/internal/masterdata"
	"github.com/shelfsync/shelfsync/server/internal/routing"
)

// registerMasterdata serves master data (catalog, locations, zones,
// thresholds, purchase orders, settings), CSV import and export, and pick
// routing.
func (h *Handler) registerMasterdata() {
	md, rt := routing.Setup(h.d.Store, masterdata.Options{Logger: h.d.Logger})
	h.router, h.md = rt, md
	if h.d.Router != nil {
		h.d.Router(rt)
	}
	wh := pathWarehouse
	kind := func(w http.ResponseWriter, r *http.Request) (masterdata.Kind, bool) {
		k, err := masterdata.ParseKind(r.PathValue("kind"))
		if err != nil {
			writeError(w, http.StatusNotFound, err.Error())
			return "", false
		}
		return k, true
	}
	fail := func(w http.ResponseWriter, err error) {
		switch {
		case errors.Is(err, masterdata.ErrNotFound), errors.Is(err, routing.ErrNoOrder):
			writeError(w, http.StatusNotFound, err.Error())
		case errors.Is(err, masterdata.ErrInvalid):
			writeError(w, http.StatusBadRequest, err.Error())
		case errors.Is(err, ErrBodyTooLarge), errors.Is(err, errSpool):
			writeError(w, bodyStatus(err), err.Error())
		default:
			h.d.Logger.Error("master data", "err", err)
			writeError(w, http.StatusInternalServerError, err.Error())
		}
	}
	changed := func(wh string) { h.publish(events.Event{MasterData: []string{wh}}) }

	h.handle("GET /api/v1/masterdata/{warehouse}/settings", func(w http.ResponseWriter, r *http.Request) {
		wh, ok := wh(w, r)
		if !ok {
			return
		}
		st, err := md.Settings(r.Context(), wh)
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	h.handle("PUT /api/v1/masterdata/{warehouse}/settings", func(w http.ResponseWriter, r *http.Request) {
		wh, ok := wh(w, r)
		if !ok {
			return
		}
		var st protocol.Settings
		if !decodeBody(w, r, &st) {
			return
		}
		if err := md.PutSettings(r.Context(), wh, st); err != nil {
			fail(w, err)
			return
		}
		changed(wh)
		writeJSON(w, http.StatusOK, st)
	})
	h.handle("GET /api/v1/masterdata/{warehouse}/reorder-alerts", func(w http.ResponseWriter, r *http.Request) {
		wh, ok := wh(w, r)
		if !ok {
			return
		}
		as, err := md.ReorderAlerts(r.Context(), wh)
		if err != nil {
			fail(w, err)
			return
		}
		if as == nil {
			as = []masterdata.ReorderAlert{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": as})
	})
	h.handle("GET /api/v1/masterdata/{warehouse}/notices", func(w http.ResponseWriter, r *http.Request) {
		wh, ok := wh(w, r)
		if !ok {
			return
		}
		ns, taken, err := md.Notices(r.Context(), wh)
		if err != nil {
			fail(w, err)
			return
		}
		type view struct {
			protocol.Notice
			Taken bool `json:"taken"`
		}
		out := make([]view, 0, len(ns))
		for _, n := range ns {
			out = append(out, view{n, taken[n.ID]})
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": out})
	})
	h.handle("GET /api/v1/masterdata/{warehouse}/{kind}", func(w http.ResponseWriter, r *http.Request) {
		wh, ok := wh(w, r)
		if !ok {
			return
		}
		k, ok := kind(w, r)
		if !ok {
			return
		}
		owner, ok := itemsOwner(w, r, k)
		if !ok {
			return
		}
		if r.URL.Query().Get("format") == "csv" {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", `attachment; filename="`+wh+"-"+string(k)+`.csv"`)
			if err := md.ExportOwner(r.Context(), wh, k, owner, w); err != nil {
				h.d.Logger.Error("export", "err", err)
			}
			return
		}
		v, err := md.List(r.Context(), wh, k)
		if err != nil {
			fail(w, err)
			return
		}
		if its, ok := v.([]protocol.Item); ok && owner != "" {
			v = masterdata.OwnedItems(its, owner)
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": v})
	})
	h.handle("POST /api/v1/masterdata/{warehouse}/{kind}", func(w http.ResponseWriter, r *http.Request) {
		wh, ok := wh(w, r)
		if !ok {
			return
		}
		k, ok := kind(w, r)
		if !ok {
			return
		}
		n, err := putJSON(w, r, md, wh, k, true)
		if err != nil {
			fail(w, err)
			return
		}
		changed(wh)
		writeJSON(w, http.StatusOK, map[string]any{"written": n})
	})
	h.handle("GET /api/v1/masterdata/{warehouse}/{kind}/{id}", func(w http.ResponseWriter, r *http.Request) {
		wh, ok := wh(w, r)
		if !ok {
			return
		}
		k, ok := kind(w, r)
		if !ok {
			return
		}
		if _, ok := itemsOwner(w, r, k); !ok {
			return
		}
		v, err := md.Get(r.Context(), wh, k, r.PathValue("id"))
		if err != nil {
			fail(w, err)
			return
		}
		if it, ok := v.(protocol.Item); ok && !ownedBy(w, r, it.Owner) {
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
	h.handle("PUT /api/v1/masterdata/{warehouse}/{kind}/{id}", func(w http.ResponseWriter, r *http.Request) {
		wh, ok := wh(w, r)
		if !ok {
			return
		}
		k, ok := kind(w, r)
		if !ok {
			return
		}
		if _, err := putJSON(w, r, md, wh, k, false); err != nil {
			fail(w, err)
			return
		}
		changed(wh)
		if _, ok := itemsOwner(w, r, k); !ok {
			return
		}
		v, err := md.Get(r.Context(), wh, k, r.PathValue("id"))
		if err != nil {
			fail(w, err)
			return
		}
		if it, ok := v.(protocol.Item); ok && !ownedBy(w, r, it.Owner) {
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
	h.handle("DELETE /api/v1/masterdata/{warehouse}/{kind}/{id}", func(w http.ResponseWriter, r *http.Request) {
		wh, ok := wh(w, r)
		if !ok {
			return
		}
		k, ok := kind(w, r)
		if !ok {
			return
		}
		if err := md.Delete(r.Context(), wh, k, r.PathValue("id")); err != nil {
			fail(w, err)
			return
		}
		changed(wh)
		w.WriteHeader(http.StatusNoContent)
	})
	h.handle("POST /api/v1/masterdata/{warehouse}/{kind}/import", func(w http.ResponseWriter, r *http.Request) {
		wh, ok := wh(w, r)
		if !ok {
			return
		}
		k, ok := kind(w, r)
		if !ok {
			return
		}
		// Progress streams as NDJSON: one line per batch written and per
		// refused row, then a line with "done": true.
		rc := http.NewResponseController(w)
		started := false
		enc := json.NewEncoder(w)
		progress := func(p masterdata.Progress) {
			if !started {
				w.Header().Set("Content-Type", "application/x-ndjson")
				w.WriteHeader(http.StatusOK)
				started = true
			}
			_ = enc.Encode(p)
			_ = rc.Flush()
		}
		f, err := h.spool(w, r)
		if err != nil {
			writeError(w, bodyStatus(err), err.Error())
			return
		}
		defer closeSpool(f)
		_, err = md.Import(r.Context(), wh, k, f, progress)
		if err != nil && !started {
			fail(w, err)
			return
		}
		if err != nil {
			_ = enc.Encode(map[string]string{"error": err.Error()})
		}
		changed(wh)
	})
	h.handle("POST /api/v1/masterdata/{warehouse}/pos/{id}/close", func(w http.ResponseWriter, r *http.Request) {
		wh, ok := wh(w, r)
		if !ok {
			return
		}
		by := r.URL.Query().Get("by")
		if by == "" {
			by = "api"
		}
		p, cs, err := md.ClosePO(r.Context(), wh, r.PathValue("id"), by)
		if err != nil {
			fail(w, err)
			return
		}
		changed(wh)
		writeJSON(w, http.StatusOK, map[string]any{"po": p, "discrepancies": cs})
	})
	h.handle("POST /api/v1/routing/{warehouse}/orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		wh, ok := wh(w, r)
		if !ok {
			return
		}
		res, err := rt.RouteOrder(r.Context(), wh, r.PathValue("id"))
		if err != nil {
			fail(w, err)
			return
		}
		changed(wh)
		writeJSON(w, http.StatusOK, res)
	})
	h.handle("POST /api/v1/routing/{warehouse}/count-tasks", func(w http.ResponseWriter, r *http.Request) {
		wh, ok := wh(w, r)
		if !ok {
			return
		}
		var body struct {
			Location string `json:"location"`
			Reason   string `json:"reason"`
		}
		if !decodeBody(w, r, &body) {
			return
		}
		if body.Location == "" || len(body.Location) > protocol.MaxFieldLen {
			writeError(w, http.StatusBadRequest, "location: 1-64 bytes required")
			return
		}
		t, err := rt.CountTask(r.Context(), wh, body.Location, body.Reason)
		if err != nil {
			fail(w, err)
			return
		}
		changed(wh)
		writeJSON(w, http.StatusCreated, t)
	})
}

// putJSON decodes a record (one: the path's {id} must match its key) or a
// JSON array of records, and writes them.
func putJSON(w http.ResponseWriter, r *http.Request, md *masterdata.Service, wh string, k masterdata.Kind, many bool) (int, error) {
	bad := func(err error) error {
		if errors.Is(err, ErrBodyTooLarge) {
			return err
		}
		return errors.Join(masterdata.ErrInvalid, err)
	}
	decode := func(v any) error { return readJSON(w, r, v) }
	id := r.PathValue("id")
	checkID := func(got string) error {
		if !many && got != id {
			return errors.Join(masterdata.ErrInvalid, errors.New("the record's key "+got+" differs from the path's "+id))
		}
		return nil
	}
	switch k {
	case masterdata.Items:
		vs, err := one[protocol.Item](decode, many)
		if err != nil {
			return 0, bad(err)
		}
		for _, v := range vs {
			if err := checkID(v.SKU); err != nil {
				return 0, err
			}
		}
		return len(vs), md.PutItems(r.Context(), wh, vs)
	case masterdata.Locations:
		vs, err := one[protocol.Location](decode, many)
		if err != nil {
			return 0, bad(err)
		}
		for _, v := range vs {
			if err := checkID(v.Code); err != nil {
				return 0, err
			}
		}
		return len(vs), md.PutLocations(r.Context(), wh, vs)
	case masterdata.Zones:
		vs, err := one[masterdata.Zone](decode, many)
		if err != nil {
			return 0, bad(err)
		}
		for _, v := range vs {
			if err := checkID(v.Zone); err != nil {
				return 0, err
			}
		}
		return len(vs), md.PutZones(r.Context(), wh, vs)
	case masterdata.Thresholds:
		vs, err := one[protocol.Threshold](decode, many)
		if err != nil {
			return 0, bad(err)
		}
		for _, v := range vs {
			if err := checkID(v.SKU); err != nil {
				return 0, err
			}
		}
		return len(vs), md.PutThresholds(r.Context(), wh, vs)
	case masterdata.POs:
		vs, err := one[protocol.PurchaseOrder](decode, many)
		if err != nil {
			return 0, bad(err)
		}
		for _, v := range vs {
			if err := checkID(v.ID); err != nil {
				return 0, err
			}
		}
		return len(vs), md.PutPOs(r.Context(), wh, vs)
	case masterdata.ASNs:
		vs, err := one[protocol.ASN](decode, many)
		if err != nil {
			return 0, bad(err)
		}
		for _, v := range vs {
			if err := checkID(v.SSCC); err != nil {
				return 0, err
			}
		}
		return len(vs), md.PutASNs(r.Context(), wh, vs)
	}
	return 0, masterdata.ErrInvalid
}

func one[T any](decode func(any) error, many bool) ([]T, error) {
	if many {
		var vs []T
		err := decode(&vs)
		return vs, err
	}
	var v T
	err := decode(&v)
	return []T{v}, err
}

// itemsOwner scopes a master-data read: a token bound to an owner reads
// only items (its own catalogue: 403 for another kind, which holds every
// owner's data); the owner the items are limited to is returned
// (ownerScope: the token's, or ?owner= for a token bound to none).
func itemsOwner(w http.ResponseWriter, r *http.Request, k masterdata.Kind) (string, bool) {
	if o := tokenOwner(r); o != "" && k != masterdata.Items {
		forbidOwner(w, o)
		return "", false
	}
	if k != masterdata.Items {
		return "", true
	}
	return ownerScope(w, r, r.URL.Query().Get("owner"))
}
