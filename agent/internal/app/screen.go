package app

import (
	"net/http"
	"strings"

	"github.com/shelfsync/shelfsync/agent/internal/screen"
)

// withScreen serves the gateway screen (/screen…) beside the API.
func (a *Agent) withScreen(apiH http.Handler) http.Handler {
	sh := screen.Handler(screen.Source{
		Warehouse: a.cfg.Warehouse, Gateway: a.cfg.Gateway, Devices: a.devices.Devices, Store: a.st,
		Connected: func() (bool, string) { s := a.uplink.State(); return s.Connected, s.LastError },
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/screen" || strings.HasPrefix(r.URL.Path, "/screen/") {
			sh.ServeHTTP(w, r)
			return
		}
		apiH.ServeHTTP(w, r)
	})
}
