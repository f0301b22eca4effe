package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/shelfsync/shelfsync/server/internal/dashboard"
)

// Events is the live event feed of the dashboard.
type Events interface {
	Subscribe() (<-chan dashboard.Message, func())
}

var _ Events = (*dashboard.Hub)(nil)

// heartbeat keeps idle event streams open through proxies.
const heartbeat = 15 * time.Second

func (h *Handler) registerEvents() {
	h.handle("GET /api/v1/events", func(w http.ResponseWriter, r *http.Request) {
		fl, ok := w.(http.Flusher)
		if !ok {
			writeError(w, http.StatusInternalServerError, "streaming unsupported by this connection")
			return
		}
		owner := tokenOwner(r) // a client's dashboard: its own events only (ownerEvent)
		ch, stop := h.d.Events.Subscribe()
		defer stop()
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, "retry: 2000\n: connected\n\n")
		fl.Flush()
		t := time.NewTicker(heartbeat)
		defer t.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-t.C:
				fmt.Fprint(w, ": ping\n\n")
				fl.Flush()
			case m, ok := <-ch:
				if !ok {
					return // dropped or shutting down: the browser reconnects
				}
				data := m.Data
				if owner != "" {
					if data = ownerEvent(m.Type, m.Data, owner); data == nil {
						continue
					}
				}
				fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", m.ID, m.Type, data)
				fl.Flush()
			}
		}
	})
}

// ownerEvent returns what a live event shows a token bound to owner, or
// nil when it shows nothing of the owner's: a batch keeps only the
// owner's stock changes (applied then counts them); a conflict, alert or
// order passes when it is the owner's; an availability event is a nudge
// to reload (without the full snapshot's item count); any other type is
// dropped (deny by default).
func ownerEvent(typ string, data []byte, owner string) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	ownerOf := func(raw json.RawMessage) string {
		var v struct {
			Owner string `json:"owner"`
		}
		_ = json.Unmarshal(raw, &v)
		return v.Owner
	}
	switch typ {
	case "batch":
		var changes []json.RawMessage
		_ = json.Unmarshal(m["changes"], &changes)
		kept := []json.RawMessage{}
		for _, c := range changes {
			if ownerOf(c) == owner {
				kept = append(kept, c)
			}
		}
		if len(kept) == 0 {
			return nil
		}
		m["changes"], _ = json.Marshal(kept)
		m["applied"], _ = json.Marshal(len(kept))
		delete(m, "quarantined")
	case "conflict", "alert":
		if ownerOf(data) != owner {
			return nil
		}
		return data
	case "order":
		if ownerOf(m["order"]) != owner {
			return nil
		}
		return data
	case "availability":
		delete(m, "items")
	default:
		return nil
	}
	out, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	return out
}
