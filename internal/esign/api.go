package esign

import (
	"crypto/x509"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/web"
)

// adminActor is who edits through the API while the administrative token is
// the only way to sign in as an administrator.
const adminActor = "admin:api-token"

// AddRootRequest is the body of POST /api/v1/esign/roots.
type AddRootRequest struct {
	Certificate []byte `json:"certificate"` // DER, base64 in JSON
}

// RevokeRequest is the body of POST /api/v1/esign/revocations: the revoked
// certificate itself, or its issuer and serial number.
type RevokeRequest struct {
	Certificate []byte     `json:"certificate,omitempty"` // DER, base64 in JSON
	Issuer      string     `json:"issuer,omitempty"`
	Serial      string     `json:"serial,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
}

// RootsView answers GET /api/v1/esign/roots.
type RootsView struct {
	Roots []Root `json:"roots"`
}

// Routes mounts the trust store's administrative API. Every route needs the
// administrative bearer token; an empty adminToken switches them off.
func (v *Verifier) Routes(s *web.Server, adminToken string) {
	admin := func(h web.HandlerFunc) web.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) error {
			if err := web.RequireBearer(r, adminToken); err != nil {
				return err
			}
			return h(w, r)
		}
	}
	s.HandleFunc("GET /api/v1/esign/roots", admin(v.handleRoots))
	s.HandleFunc("POST /api/v1/esign/roots", admin(v.handleAddRoot))
	s.HandleFunc("DELETE /api/v1/esign/roots/{id}", admin(v.handleRemoveRoot))
	s.HandleFunc("POST /api/v1/esign/revocations", admin(v.handleRevoke))
}

func (v *Verifier) handleRoots(w http.ResponseWriter, r *http.Request) error {
	roots, err := v.Roots(r.Context())
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, RootsView{Roots: append([]Root{}, roots...)})
	return nil
}

func (v *Verifier) handleAddRoot(w http.ResponseWriter, r *http.Request) error {
	var req AddRootRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	if len(req.Certificate) == 0 {
		return apierr.New(apierr.Validation, apierr.FieldError{Path: "/certificate", Code: apierr.FieldRequired})
	}
	root, err := v.AddRoot(r.Context(), req.Certificate, adminActor)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/esign/roots/"+strconv.FormatInt(root.ID, 10))
	web.WriteJSON(w, http.StatusCreated, root)
	return nil
}

func (v *Verifier) handleRemoveRoot(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return apierr.New(apierr.Validation, apierr.FieldError{Path: "/id", Code: apierr.FieldFormat})
	}
	err = v.RemoveRoot(r.Context(), id, adminActor)
	if errors.Is(err, ErrNotFound) {
		return apierr.New(apierr.TrustRootNotFound)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (v *Verifier) handleRevoke(w http.ResponseWriter, r *http.Request) error {
	var req RevokeRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	rev := Revocation{Issuer: req.Issuer, Serial: req.Serial, Reason: req.Reason}
	if req.RevokedAt != nil {
		rev.RevokedAt = *req.RevokedAt
	}
	if len(req.Certificate) > 0 {
		c, err := x509.ParseCertificate(req.Certificate)
		if err != nil {
			return apierr.New(apierr.Validation, apierr.FieldError{Path: "/certificate", Code: apierr.FieldFormat})
		}
		rev.Issuer, rev.Serial = c.Issuer.String(), serialHex(c)
	}
	out, err := v.Revoke(r.Context(), rev, adminActor)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusCreated, out)
	return nil
}
