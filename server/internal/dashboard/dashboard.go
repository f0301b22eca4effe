// Package dashboard is the web dashboard the server serves itself: static
// HTML, JavaScript and CSS embedded in the binary (no build step) that
// read the JSON API, and the Hub that feeds its live updates over
// server-sent events (/api/v1/events).
//
// Pages: the overview (warehouses at a glance, gateways with online state
// and backlog, each gateway's ingest and backlog per minute over the last
// hour, stock search that hides rows at 0 unless asked with a key's
// history and on-hand plot, conflicts with one-click resolution, alerts
// with acknowledgement, availability per channel), and the day's work:
// orders by status, channel and owner with orders per hour, pick and count
// tasks per zone and gateway, purchase orders with receipt progress and the
// dock queue, the reorder list, and master data (read-only) with a CSV
// import. Plots are inline SVG the page draws from the API's JSON.
//
// Series keeps the per-gateway, per-minute ingest figures the ingest plot
// reads.
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Handler serves the dashboard under /dashboard/.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/dashboard/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'")
		files.ServeHTTP(w, r)
	})
}
