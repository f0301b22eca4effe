package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/shelfsync/shelfsync/server/internal/alerts"
)

// Alerts is the alert service the alert routes use.
type Alerts interface {
	List(ctx context.Context, q alerts.Query) ([]alerts.Alert, bool, error)
	Get(ctx context.Context, id string) (alerts.Alert, error)
	Ack(ctx context.Context, id, by, note string) (alerts.Alert, error)
	Resolve(ctx context.Context, id, by, note string) (alerts.Alert, error)
}

// AlertAction is the body of an alert's ack and resolve.
type AlertAction struct {
	By   string `json:"by"`
	Note string `json:"note"`
}

var _ Alerts = (*alerts.Service)(nil)

func alertError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, alerts.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, alerts.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, alerts.ErrAcknowledged), errors.Is(err, alerts.ErrClosed):
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func (h *Handler) registerAlerts() {
	h.handle("GET /api/v1/alerts", func(w http.ResponseWriter, r *http.Request) {
		svc := h.d.Alerts
		limit, offset, ok := page(w, r, 100)
		if !ok {
			return
		}
		q := r.URL.Query()
		standing := q.Get("standing")
		if standing != "" && standing != "true" && standing != "false" {
			writeError(w, http.StatusBadRequest, "standing: want true or false")
			return
		}
		owner, ok := ownerScope(w, r, q.Get("owner"))
		if !ok {
			return
		}
		as, more, err := svc.List(r.Context(), alerts.Query{Warehouse: q.Get("warehouse"), Kind: alerts.Kind(q.Get("kind")),
			Status: alerts.Status(q.Get("status")), Standing: standing == "true", SKU: q.Get("sku"), Owner: owner, Limit: limit, Offset: offset})
		if err != nil {
			alertError(w, err)
			return
		}
		if as == nil {
			as = []alerts.Alert{}
		}
		writeJSON(w, http.StatusOK, listBody(as, more, offset+len(as)))
	})
	h.handle("GET /api/v1/alerts/{id}", func(w http.ResponseWriter, r *http.Request) {
		svc := h.d.Alerts
		a, err := svc.Get(r.Context(), r.PathValue("id"))
		if err != nil {
			alertError(w, err)
			return
		}
		if !ownedBy(w, r, a.Owner) {
			return
		}
		writeJSON(w, http.StatusOK, a)
	})
	for _, action := range []struct {
		path string
		do   func(svc Alerts, ctx context.Context, id, by, note string) (alerts.Alert, error)
	}{{"ack", Alerts.Ack}, {"resolve", Alerts.Resolve}} {
		h.handle("POST /api/v1/alerts/{id}/"+action.path, func(w http.ResponseWriter, r *http.Request) {
			var body AlertAction
			if !decodeBody(w, r, &body) {
				return
			}
			if tokenOwner(r) != "" { // a client acts on its own alerts only
				a, err := h.d.Alerts.Get(r.Context(), r.PathValue("id"))
				if err != nil {
					alertError(w, err)
					return
				}
				if !ownedBy(w, r, a.Owner) {
					return
				}
			}
			a, err := action.do(h.d.Alerts, r.Context(), r.PathValue("id"), body.By, body.Note)
			if err != nil {
				alertError(w, err)
				return
			}
			writeJSON(w, http.StatusOK, a)
		})
	}
}
