package web

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/ortaq/ortaq/internal/apierr"
)

// RequireBearer checks that r carries "Authorization: Bearer <token>". An
// empty token means the operation is switched off on this node.
func RequireBearer(r *http.Request, token string) error {
	if token == "" {
		return apierr.New(apierr.Forbidden)
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
		return apierr.New(apierr.Unauthorized)
	}
	return nil
}
