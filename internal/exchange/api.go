package exchange

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/exchange/catalogue"
	"github.com/ortaq/ortaq/internal/exchange/xroad"
	"github.com/ortaq/ortaq/internal/web"
)

const adminActor = "admin:api-token"

// MemberRequest is the body of POST /api/v1/exchange/members.
type MemberRequest struct {
	Class string `json:"class"`
	Code  string `json:"code"`
	Name  string `json:"name"`
}

// SubsystemRequest is the body of POST /api/v1/exchange/subsystems.
type SubsystemRequest struct {
	ID   string `json:"id"` // INSTANCE/CLASS/MEMBER/SUBSYSTEM
	Name string `json:"name"`
}

// ServiceRequest is the body of POST /api/v1/exchange/services.
type ServiceRequest struct {
	ID           string          `json:"id"` // INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE
	Title        string          `json:"title"`
	URL          string          `json:"url"`
	OpenAPI      json.RawMessage `json:"openapi,omitempty"`
	PersonalData bool            `json:"personal_data"`
}

// AccessRequest is the body of POST and DELETE /api/v1/exchange/access.
type AccessRequest struct {
	Client  string `json:"client"`
	Service string `json:"service"`
	Method  string `json:"method,omitempty"`
	Path    string `json:"path,omitempty"`
}

// TokenRequest is the body of POST /api/v1/exchange/enrolment-tokens.
type TokenRequest struct {
	Member string `json:"member"` // INSTANCE/CLASS/MEMBER
}

// EnrolRequest is the body of POST /api/v1/exchange/enrol.
type EnrolRequest struct {
	Token   string `json:"token"`
	CSR     []byte `json:"csr"` // DER, base64 in JSON
	Address string `json:"address"`
}

// Routes mounts the central authority. Reading the catalogue and the CA
// certificate is public, enrolment needs a one-time token, every other write
// the administrative bearer token (an empty adminToken switches them off).
func (a *Authority) Routes(s *web.Server, adminToken string) {
	admin := func(h web.HandlerFunc) web.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) error {
			if err := web.RequireBearer(r, adminToken); err != nil {
				return err
			}
			return h(w, r)
		}
	}
	s.HandleFunc("GET /api/v1/exchange/catalogue", a.handleCatalogue)
	s.HandleFunc("GET /api/v1/exchange/ca", a.handleCA)
	s.HandleFunc("POST /api/v1/exchange/enrol", a.handleEnrol)
	s.HandleFunc("POST /api/v1/exchange/timestamp", a.handleTimestamp)
	s.HandleFunc("POST /api/v1/exchange/members", admin(a.handleMember))
	s.HandleFunc("POST /api/v1/exchange/subsystems", admin(a.handleSubsystem))
	s.HandleFunc("POST /api/v1/exchange/services", admin(a.handleService))
	s.HandleFunc("POST /api/v1/exchange/access", admin(a.handleGrant))
	s.HandleFunc("DELETE /api/v1/exchange/access", admin(a.handleRevokeAccess))
	s.HandleFunc("POST /api/v1/exchange/enrolment-tokens", admin(a.handleToken))
	s.HandleFunc("POST /api/v1/exchange/certificates/{serial}/revoke", admin(a.handleRevokeCert))
}

func (a *Authority) handleCatalogue(w http.ResponseWriter, r *http.Request) error {
	env, err := a.SignedSnapshot(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	web.WriteJSON(w, http.StatusOK, env)
	return nil
}

func (a *Authority) handleCA(w http.ResponseWriter, r *http.Request) error {
	ca, _, err := a.CA(r.Context())
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"instance": a.instance, "certificate": ca.Raw})
	return nil
}

func (a *Authority) handleMember(w http.ResponseWriter, r *http.Request) error {
	var req MemberRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	m := catalogue.Member{ID: xroad.ClientID{Instance: a.instance, Class: req.Class, Member: req.Code}, Name: req.Name}
	if err := a.AddMember(r.Context(), m, adminActor); err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusCreated, m)
	return nil
}

func (a *Authority) handleSubsystem(w http.ResponseWriter, r *http.Request) error {
	var req SubsystemRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	id, err := a.parseID("/id", req.ID, true)
	if err != nil {
		return err
	}
	if req.Name == "" {
		return fieldErr("/name", apierr.FieldRequired)
	}
	s := catalogue.Subsystem{ID: id, Name: req.Name}
	if err := a.AddSubsystem(r.Context(), s, adminActor); err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusCreated, s)
	return nil
}

func (a *Authority) handleService(w http.ResponseWriter, r *http.Request) error {
	var req ServiceRequest
	if err := web.DecodeJSONLimit(w, r, &req, 4<<20); err != nil {
		return err
	}
	id, err := xroad.ParseService(req.ID)
	switch {
	case req.ID == "":
		return fieldErr("/id", apierr.FieldRequired)
	case err != nil:
		return fieldErr("/id", apierr.FieldFormat)
	case id.Instance != a.instance:
		return fieldErr("/id", apierr.FieldOneOf)
	case req.Title == "":
		return fieldErr("/title", apierr.FieldRequired)
	case req.URL == "":
		return fieldErr("/url", apierr.FieldRequired)
	}
	s := catalogue.Service{ID: id, Title: req.Title, URL: req.URL, OpenAPI: req.OpenAPI, PersonalData: req.PersonalData}
	if err := a.PutService(r.Context(), s, adminActor); err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, s)
	return nil
}

func (a *Authority) accessOf(req AccessRequest) (catalogue.Access, error) {
	cl, err := a.parseID("/client", req.Client, true)
	if err != nil {
		return catalogue.Access{}, err
	}
	svc, err := xroad.ParseService(req.Service)
	switch {
	case req.Service == "":
		return catalogue.Access{}, fieldErr("/service", apierr.FieldRequired)
	case err != nil:
		return catalogue.Access{}, fieldErr("/service", apierr.FieldFormat)
	}
	return catalogue.Access{Client: cl, Service: svc, Method: req.Method, Path: req.Path}, nil
}

func (a *Authority) handleGrant(w http.ResponseWriter, r *http.Request) error {
	var req AccessRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	acc, err := a.accessOf(req)
	if err != nil {
		return err
	}
	if err := a.Grant(r.Context(), acc, adminActor); err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusCreated, acc)
	return nil
}

func (a *Authority) handleRevokeAccess(w http.ResponseWriter, r *http.Request) error {
	var req AccessRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	acc, err := a.accessOf(req)
	if err != nil {
		return err
	}
	if err := a.Revoke(r.Context(), acc, adminActor); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *Authority) handleToken(w http.ResponseWriter, r *http.Request) error {
	var req TokenRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	m, err := a.parseID("/member", req.Member, false)
	if err != nil {
		return err
	}
	tok, exp, err := a.NewEnrolmentToken(r.Context(), m, adminActor)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	web.WriteJSON(w, http.StatusCreated, map[string]any{"token": tok, "expires_at": exp.UTC().Format(time.RFC3339)})
	return nil
}

func (a *Authority) handleEnrol(w http.ResponseWriter, r *http.Request) error {
	var req EnrolRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Token == "" {
		return fieldErr("/token", apierr.FieldRequired)
	}
	e, err := a.Enrol(r.Context(), req.Token, req.CSR, req.Address)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusCreated, e)
	return nil
}

func (a *Authority) handleRevokeCert(w http.ResponseWriter, r *http.Request) error {
	if err := a.RevokeCertificate(r.Context(), r.PathValue("serial"), adminActor); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// TimestampRequest is the body of POST /api/v1/exchange/timestamp.
type TimestampRequest struct {
	Digest []byte `json:"digest"` // SHA-256, base64 in JSON
}

// TimestampReply answers it.
type TimestampReply struct {
	AtMicros  int64  `json:"at_us"`
	Signature []byte `json:"signature"`
}

func (a *Authority) handleTimestamp(w http.ResponseWriter, r *http.Request) error {
	var req TimestampRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	at, sig, err := a.Timestamp(r.Context(), req.Digest)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, TimestampReply{AtMicros: at, Signature: sig})
	return nil
}
