package consent

import (
	"cmp"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/web"
)

// Routes mounts the consent API on s.
func (l *Ledger) Routes(s *web.Server) {
	s.HandleFunc("POST /api/v1/consents", l.handleAsk)
	s.HandleFunc("GET /api/v1/consents", l.handleList)
	s.HandleFunc("GET /api/v1/consents/{id}", l.handleGet)
	s.HandleFunc("POST /api/v1/consents/{id}/approve", l.handleApprove)
	s.HandleFunc("POST /api/v1/consents/{id}/refuse", l.handleRefuse)
	s.HandleFunc("POST /api/v1/consents/{id}/revoke", l.handleRevoke)
	s.HandleFunc("POST /api/v1/consents/{id}/code", l.handleResend)
	s.HandleFunc("GET /api/v1/consents/{id}/receipts", l.handleReceipts)
	s.HandleFunc("POST /api/v1/consents/receipts/verify", l.handleVerify)
	s.HandleFunc("GET /api/v1/consents/keys", l.handleKeys)
	s.HandleFunc("POST /api/v1/consents/check", l.handleCheck)
	s.HandleFunc("GET /api/v1/consents/feed", l.handleFeed)
	s.HandleFunc("POST /api/v1/consents/access-reports", l.handleAccessReports)
}

func consentID(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return uuid.Nil, ErrNotFound
	}
	return id, nil
}

// View is a consent with its receipts, as the API answers.
type View struct {
	Consent
	Receipts []Receipt `json:"receipts,omitempty"`
}

func (l *Ledger) handleAsk(w http.ResponseWriter, r *http.Request) error {
	p, err := identity.Require(r)
	if err != nil {
		return err
	}
	requester, ok := Requester(p)
	if !ok {
		return apierr.New(apierr.Forbidden)
	}
	var req Request
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	c, err := l.Ask(r.Context(), req, requester, p.Actor(), web.RequestID(r.Context()))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/consents/"+c.ID.String())
	web.WriteJSON(w, http.StatusCreated, c)
	return nil
}

func (l *Ledger) handleList(w http.ResponseWriter, r *http.Request) error {
	p, err := identity.Require(r)
	if err != nil {
		return err
	}
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return apierr.New(apierr.Validation, apierr.FieldError{Path: "/limit", Code: apierr.FieldOutOfRange})
		}
		limit = n
	}
	cs, err := l.List(r.Context(), p, r.URL.Query().Get("subject_iin"), limit)
	if err != nil {
		return err
	}
	if cs == nil {
		cs = []Consent{}
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"consents": cs})
	return nil
}

// viewOf reads the consent the path names, with its receipts, for a caller
// who may see it.
func (l *Ledger) viewOf(r *http.Request) (View, error) {
	p, err := identity.Require(r)
	if err != nil {
		return View{}, err
	}
	id, err := consentID(r)
	if err != nil {
		return View{}, err
	}
	c, err := l.Get(r.Context(), id, p)
	if err != nil {
		return View{}, err
	}
	rs, err := l.Receipts(r.Context(), c)
	if err != nil {
		return View{}, err
	}
	return View{Consent: c, Receipts: rs}, nil
}

func (l *Ledger) handleGet(w http.ResponseWriter, r *http.Request) error {
	v, err := l.viewOf(r)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, v)
	return nil
}

// ApproveRequest is the body of POST /api/v1/consents/{id}/approve: the
// code the person received (not needed when the person approves).
type ApproveRequest struct {
	Code string `json:"code"`
}

// decide runs one of the state changes and answers the consent with its
// receipts.
func (l *Ledger) decide(w http.ResponseWriter, r *http.Request, fn func(id uuid.UUID, p identity.Principal) (Consent, error)) error {
	p, err := identity.Require(r)
	if err != nil {
		return err
	}
	id, err := consentID(r)
	if err != nil {
		return err
	}
	c, err := fn(id, p)
	if err != nil {
		return err
	}
	rs, err := l.Receipts(r.Context(), c)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, View{Consent: c, Receipts: rs})
	return nil
}

func (l *Ledger) handleApprove(w http.ResponseWriter, r *http.Request) error {
	var req ApproveRequest
	if r.ContentLength != 0 {
		if err := web.DecodeJSON(w, r, &req); err != nil {
			return err
		}
	}
	return l.decide(w, r, func(id uuid.UUID, p identity.Principal) (Consent, error) {
		return l.Approve(r.Context(), id, req.Code, p, web.RequestID(r.Context()))
	})
}

func (l *Ledger) handleRefuse(w http.ResponseWriter, r *http.Request) error {
	return l.decide(w, r, func(id uuid.UUID, p identity.Principal) (Consent, error) {
		return l.Refuse(r.Context(), id, p, web.RequestID(r.Context()))
	})
}

func (l *Ledger) handleRevoke(w http.ResponseWriter, r *http.Request) error {
	return l.decide(w, r, func(id uuid.UUID, p identity.Principal) (Consent, error) {
		return l.Revoke(r.Context(), id, p, "", web.RequestID(r.Context()))
	})
}

func (l *Ledger) handleResend(w http.ResponseWriter, r *http.Request) error {
	return l.decide(w, r, func(id uuid.UUID, p identity.Principal) (Consent, error) {
		return l.Resend(r.Context(), id, p, web.RequestID(r.Context()))
	})
}

func (l *Ledger) handleReceipts(w http.ResponseWriter, r *http.Request) error {
	v, err := l.viewOf(r)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"receipts": v.Receipts})
	return nil
}

// VerifyRequest is the body of POST /api/v1/consents/receipts/verify.
type VerifyRequest struct {
	JWS string `json:"jws"`
}

func (l *Ledger) handleVerify(w http.ResponseWriter, r *http.Request) error {
	var req VerifyRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.JWS) == "" {
		return apierr.New(apierr.Validation, apierr.FieldError{Path: "/jws", Code: apierr.FieldRequired})
	}
	v, err := l.Verify(r.Context(), req.JWS)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, v)
	return nil
}

func (l *Ledger) handleKeys(w http.ResponseWriter, r *http.Request) error {
	ks, err := l.Keys(r.Context())
	if err != nil {
		return err
	}
	if ks == nil {
		ks = []JWK{}
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"keys": ks})
	return nil
}

// CheckRequest is the body of POST /api/v1/consents/check: an exchange
// gateway (a system) asks whether its client may use the data.
type CheckRequest struct {
	SubjectIIN string   `json:"subject_iin"`
	Requester  string   `json:"requester"` // "exchange:<client id>" for the gateway's clients
	Items      []string `json:"items"`
	Purpose    string   `json:"purpose"`
	ConsentID  string   `json:"consent_id"`
	RequestID  string   `json:"request_id"`
	// Unrecorded: answer only, record nothing (exchange gateways only,
	// which report the call's outcome later: access reports).
	Unrecorded bool `json:"unrecorded,omitempty"`
}

// handleCheck answers a consent check for a system: its own uses
// (requester omitted or its own), or, for an exchange gateway, its
// clients' ("exchange:<client>"). 200 with the basis, or the refusal.
func (l *Ledger) handleCheck(w http.ResponseWriter, r *http.Request) error {
	p, err := identity.Require(r)
	if err != nil {
		return err
	}
	own, ok := Requester(p)
	if !ok || p.Kind != identity.System {
		return apierr.New(apierr.Forbidden)
	}
	var req CheckRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	requester := req.Requester
	if requester == "" {
		requester = own
	}
	// A system checks for itself; only an exchange gateway checks for the
	// exchange's clients (otherwise any system could probe another's
	// consents and have uses recorded in its name).
	if requester != own && !(strings.HasPrefix(requester, "exchange:") && p.HasScope(identity.ScopeExchangeGateway)) {
		return apierr.New(apierr.Forbidden)
	}
	var fields []apierr.FieldError
	if req.SubjectIIN == "" {
		fields = append(fields, apierr.FieldError{Path: "/subject_iin", Code: apierr.FieldRequired})
	} else if _, err := iin.Parse(req.SubjectIIN); err != nil {
		fields = append(fields, iinFieldError("/subject_iin", err))
	}
	if len(req.Items) == 0 {
		fields = append(fields, apierr.FieldError{Path: "/items", Code: apierr.FieldRequired})
	}
	if strings.TrimSpace(req.Purpose) == "" {
		fields = append(fields, apierr.FieldError{Path: "/purpose", Code: apierr.FieldRequired})
	}
	var cid uuid.UUID
	if req.ConsentID != "" {
		if cid, err = uuid.Parse(req.ConsentID); err != nil {
			fields = append(fields, apierr.FieldError{Path: "/consent_id", Code: apierr.FieldFormat})
		}
	}
	if len(fields) > 0 {
		return apierr.New(apierr.Validation, fields...)
	}
	if req.Unrecorded && !p.HasScope(identity.ScopeExchangeGateway) {
		return apierr.New(apierr.Forbidden)
	}
	channel := "api"
	if strings.HasPrefix(requester, "exchange:") {
		channel = "exchange"
	}
	b, err := l.Check(r.Context(), nil, Need{Subject: req.SubjectIIN, Requester: requester, Items: req.Items,
		Purpose: req.Purpose, ConsentID: cid, Actor: p.Actor(), Channel: channel, Unrecorded: req.Unrecorded,
		RequestID: cmp.Or(req.RequestID, web.RequestID(r.Context()))})
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, b)
	return nil
}
