package api

import (
	_ "embed"
	"net/http"
)

// openapiJSON is the OpenAPI 3 description of every /api/v1 route;
// openapi_test.go checks it against the registered routes.
//
//go:embed openapi.json
var openapiJSON []byte

// OpenAPI returns the OpenAPI document.
func OpenAPI() []byte { return openapiJSON }

func (h *Handler) registerOpenAPI() {
	h.handle("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapiJSON)
	})
}
