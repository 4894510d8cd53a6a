package app

import (
	_ "embed"
	"net/http"
)

// openAPI documents every /api/v1 route; a test fails when a route is added
// or removed without it.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPIHandler serves the OpenAPI document.
func OpenAPIHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(openAPI)
	})
}
