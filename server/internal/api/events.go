package api

import (
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
				fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", m.ID, m.Type, m.Data)
				fl.Flush()
			}
		}
	})
}
