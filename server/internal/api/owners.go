package api

import (
	"net/http"

	"github.com/shelfsync/shelfsync/server/internal/auth"
)

// Owners (docs/DESIGN.md, "Owners"): an API token may be bound to an owner,
// a 3PL's client. Such a token is served only on the routes whose rule
// here admits it, and refused with 403 on every other: deny by default, so
// a route added without a rule fails TestEveryRouteHasAnOwnerRule, and a
// route that shows or changes every owner's data never serves a client's
// integration. Routes become OwnerScoped as they learn to show and change
// only the token's owner's data.

// OwnerRule says what a token bound to an owner may do on a route.
type OwnerRule int

// Owner rules.
const (
	// OwnerRefused: the route shows or changes data of every owner; a
	// token bound to an owner gets 403.
	OwnerRefused OwnerRule = iota + 1
	// OwnerOpen: the route holds no owner's data (the API description).
	OwnerOpen
	// OwnerScoped: the route shows or changes only the token's owner's
	// data (and answers 403 when asked for another owner's).
	OwnerScoped
)

// tokenOwner returns the owner the request's token is bound to ("": none).
func tokenOwner(r *http.Request) string { return auth.Owner(r.Context()) }

// ownerRules is the rule of every /api/v1 route the handler registers.
var ownerRules = map[string]OwnerRule{
	"POST /api/v1/stock/status":                                    OwnerRefused,
	"GET /api/v1/stock/near-expiry":                                OwnerRefused,
	"GET /api/v1/gateways/series":                                  OwnerRefused,
	"GET /api/v1/orders/per-hour":                                  OwnerRefused,
	"GET /api/v1/tasks/summary":                                    OwnerRefused,
	"GET /api/v1/receiving/{warehouse}/pos":                        OwnerRefused,
	"GET /api/v1/receiving/{warehouse}/dock":                       OwnerRefused,
	"GET /api/v1/reorder/{warehouse}":                              OwnerRefused,
	"DELETE /api/v1/masterdata/{warehouse}/{kind}/{id}":            OwnerRefused,
	"DELETE /api/v1/holds/{warehouse}/{id}":                        OwnerRefused,
	"DELETE /api/v1/webhooks/{id}":                                 OwnerRefused,
	"GET /api/v1/admin/backup":                                     OwnerRefused,
	"GET /api/v1/alerts":                                           OwnerRefused,
	"GET /api/v1/alerts/{id}":                                      OwnerRefused,
	"GET /api/v1/availability":                                     OwnerRefused,
	"GET /api/v1/channels":                                         OwnerRefused,
	"GET /api/v1/channels/{channel}/availability":                  OwnerRefused,
	"GET /api/v1/conflicts":                                        OwnerRefused,
	"GET /api/v1/events":                                           OwnerRefused,
	"GET /api/v1/gateways":                                         OwnerRefused,
	"GET /api/v1/imports":                                          OwnerRefused,
	"GET /api/v1/imports/{id}":                                     OwnerRefused,
	"GET /api/v1/masterdata/{warehouse}/notices":                   OwnerRefused,
	"GET /api/v1/masterdata/{warehouse}/reorder-alerts":            OwnerRefused,
	"GET /api/v1/masterdata/{warehouse}/settings":                  OwnerRefused,
	"GET /api/v1/masterdata/{warehouse}/{kind}":                    OwnerRefused,
	"GET /api/v1/masterdata/{warehouse}/{kind}/{id}":               OwnerRefused,
	"GET /api/v1/openapi.json":                                     OwnerOpen,
	"GET /api/v1/orders":                                           OwnerRefused,
	"GET /api/v1/orders/{warehouse}/{id}":                          OwnerRefused,
	"GET /api/v1/quarantine":                                       OwnerRefused,
	"GET /api/v1/stock":                                            OwnerScoped,
	"GET /api/v1/stock/history":                                    OwnerRefused,
	"GET /api/v1/stock/snapshot.csv":                               OwnerRefused,
	"GET /api/v1/tasks":                                            OwnerRefused,
	"GET /api/v1/warehouses":                                       OwnerRefused,
	"GET /api/v1/webhooks":                                         OwnerRefused,
	"GET /api/v1/webhooks/{id}":                                    OwnerRefused,
	"GET /api/v1/webhooks/{id}/deliveries":                         OwnerRefused,
	"GET /api/v1/webhooks/{id}/failures":                           OwnerRefused,
	"POST /api/v1/alerts/{id}/ack":                                 OwnerRefused,
	"POST /api/v1/alerts/{id}/resolve":                             OwnerRefused,
	"POST /api/v1/conflicts/{id}/resolve":                          OwnerRefused,
	"POST /api/v1/imports/stock":                                   OwnerRefused,
	"POST /api/v1/masterdata/{warehouse}/pos/{id}/close":           OwnerRefused,
	"POST /api/v1/masterdata/{warehouse}/{kind}":                   OwnerRefused,
	"POST /api/v1/masterdata/{warehouse}/{kind}/import":            OwnerRefused,
	"POST /api/v1/holds":                                           OwnerRefused,
	"POST /api/v1/orders":                                          OwnerRefused,
	"POST /api/v1/orders/{warehouse}/{id}/cancel":                  OwnerRefused,
	"POST /api/v1/orders/{warehouse}/{id}/ship":                    OwnerRefused,
	"POST /api/v1/quarantine/{warehouse}/{gateway}/{seq}/{action}": OwnerRefused,
	"POST /api/v1/routing/{warehouse}/count-tasks":                 OwnerRefused,
	"POST /api/v1/routing/{warehouse}/orders/{id}":                 OwnerRefused,
	"POST /api/v1/webhooks":                                        OwnerRefused,
	"POST /api/v1/webhooks/{id}/ping":                              OwnerRefused,
	"PUT /api/v1/channels/{channel}":                               OwnerRefused,
	"PUT /api/v1/masterdata/{warehouse}/settings":                  OwnerRefused,
	"PUT /api/v1/masterdata/{warehouse}/{kind}/{id}":               OwnerRefused,
	"PUT /api/v1/webhooks/{id}":                                    OwnerRefused,
}

// OwnerAllowed reports whether a token bound to an owner may use route
// (auth.Config.OwnerAllowed).
func OwnerAllowed(route string) bool {
	r := ownerRules[route]
	return r != 0 && r != OwnerRefused
}
