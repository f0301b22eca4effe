package api

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/shelfsync/shelfsync/server/internal/webhooks"
)

// Webhooks is the webhook manager the webhook routes use.
type Webhooks interface {
	Create(ctx context.Context, e webhooks.Endpoint) (webhooks.Endpoint, error)
	Update(ctx context.Context, id string, e webhooks.Endpoint) (webhooks.Endpoint, error)
	Delete(ctx context.Context, id string) error
	List(ctx context.Context) ([]webhooks.View, error)
	Get(ctx context.Context, id string) (webhooks.View, error)
	Deliveries(ctx context.Context, id string, dead bool, limit int) ([]webhooks.Delivery, error)
	Failures(ctx context.Context, id string, limit int) ([]webhooks.Failure, error)
	Ping(ctx context.Context, id string) (uint64, error)
}

var _ Webhooks = (*webhooks.Manager)(nil)

func webhookError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, webhooks.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, webhooks.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func (h *Handler) registerWebhooks() {
	h.handle("GET /api/v1/webhooks", func(w http.ResponseWriter, r *http.Request) {
		m := h.d.Webhooks
		owner, ok := ownerScope(w, r, r.URL.Query().Get("owner"))
		if !ok {
			return
		}
		vs, err := m.List(r.Context())
		if err != nil {
			webhookError(w, err)
			return
		}
		if owner != "" {
			vs = slices.DeleteFunc(vs, func(v webhooks.View) bool { return v.Owner != owner })
		}
		if vs == nil {
			vs = []webhooks.View{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": vs})
	})
	h.handle("POST /api/v1/webhooks", func(w http.ResponseWriter, r *http.Request) {
		m := h.d.Webhooks
		var e webhooks.Endpoint
		if !decodeBody(w, r, &e) {
			return
		}
		var ok bool
		if e.Owner, ok = ownerScope(w, r, e.Owner); !ok { // a client's endpoint is bound to it
			return
		}
		e, err := m.Create(r.Context(), e)
		if err != nil {
			webhookError(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, e) // the only answer that shows the secret
	})
	h.handle("GET /api/v1/webhooks/{id}", func(w http.ResponseWriter, r *http.Request) {
		m := h.d.Webhooks
		v, err := m.Get(r.Context(), r.PathValue("id"))
		if err != nil {
			webhookError(w, err)
			return
		}
		if !ownedBy(w, r, v.Owner) {
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
	h.handle("PUT /api/v1/webhooks/{id}", func(w http.ResponseWriter, r *http.Request) {
		m := h.d.Webhooks
		var e webhooks.Endpoint
		if !decodeBody(w, r, &e) {
			return
		}
		if !h.endpointOwned(w, r) {
			return
		}
		var ok bool
		if e.Owner, ok = ownerScope(w, r, e.Owner); !ok {
			return
		}
		if _, err := m.Update(r.Context(), r.PathValue("id"), e); err != nil {
			webhookError(w, err)
			return
		}
		v, err := m.Get(r.Context(), r.PathValue("id"))
		if err != nil {
			webhookError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
	h.handle("DELETE /api/v1/webhooks/{id}", func(w http.ResponseWriter, r *http.Request) {
		m := h.d.Webhooks
		if !h.endpointOwned(w, r) {
			return
		}
		if err := m.Delete(r.Context(), r.PathValue("id")); err != nil {
			webhookError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	h.handle("GET /api/v1/webhooks/{id}/deliveries", func(w http.ResponseWriter, r *http.Request) {
		m := h.d.Webhooks
		if !h.endpointOwned(w, r) {
			return
		}
		limit, _, ok := page(w, r, 100)
		if !ok {
			return
		}
		status := r.URL.Query().Get("status")
		if status != "" && status != "pending" && status != "dead" {
			writeError(w, http.StatusBadRequest, "status must be pending (default) or dead")
			return
		}
		ds, err := m.Deliveries(r.Context(), r.PathValue("id"), status == "dead", limit)
		if err != nil {
			webhookError(w, err)
			return
		}
		if ds == nil {
			ds = []webhooks.Delivery{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": ds})
	})
	h.handle("GET /api/v1/webhooks/{id}/failures", func(w http.ResponseWriter, r *http.Request) {
		m := h.d.Webhooks
		if !h.endpointOwned(w, r) {
			return
		}
		limit, _, ok := page(w, r, 100)
		if !ok {
			return
		}
		fs, err := m.Failures(r.Context(), r.PathValue("id"), limit)
		if err != nil {
			webhookError(w, err)
			return
		}
		if fs == nil {
			fs = []webhooks.Failure{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": fs})
	})
	h.handle("POST /api/v1/webhooks/{id}/ping", func(w http.ResponseWriter, r *http.Request) {
		m := h.d.Webhooks
		if !h.endpointOwned(w, r) {
			return
		}
		seq, err := m.Ping(r.Context(), r.PathValue("id"))
		if err != nil {
			webhookError(w, err)
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]any{"delivery": seq})
	})
}

// endpointOwned answers 403 unless the webhook endpoint of the path's id
// is bound to the owner of a token bound to one; an unknown endpoint is
// left to the handler (404).
func (h *Handler) endpointOwned(w http.ResponseWriter, r *http.Request) bool {
	if tokenOwner(r) == "" {
		return true
	}
	v, err := h.d.Webhooks.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, webhooks.ErrNotFound) {
		return true
	}
	if err != nil {
		webhookError(w, err)
		return false
	}
	return ownedBy(w, r, v.Owner)
}
