package document

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/web"
)

// View is a document as the API returns it.
type View struct {
	ID       string          `json:"id"`
	Number   string          `json:"number"`
	Kind     string          `json:"kind"`
	Issuer   string          `json:"issuer"`
	IssuedAt time.Time       `json:"issued_at"`
	Fields   json.RawMessage `json:"fields"`
	KeyID    string          `json:"key_id"`
	// JWS is the signed document itself; it verifies offline.
	JWS string `json:"jws"`
}

// ViewOf renders d for the API.
func ViewOf(d Document) View {
	return View{ID: d.ID.String(), Number: d.Number, Kind: d.Kind, Issuer: d.Issuer,
		IssuedAt: d.IssuedAt, Fields: d.Fields, KeyID: d.KeyID, JWS: d.JWS}
}

// Routes mounts the document API.
func (s *Store) Routes(srv *web.Server) {
	srv.HandleFunc("GET /api/v1/documents/{id}", s.handleGet)
	srv.HandleFunc("POST /api/v1/documents/verify", s.handleVerify)
	srv.HandleFunc("GET /api/v1/keys", func(w http.ResponseWriter, r *http.Request) error {
		keys, err := s.Keys(r.Context())
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"keys": keys})
		return nil
	})
}

// Read returns a document and audits the read of its subject's data in the
// same transaction: no read without its trace.
func (s *Store) Read(ctx context.Context, id uuid.UUID, actor, requestID string) (Document, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Document{}, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	d, err := one(ctx, tx, "WHERE id = $1", id)
	if err != nil {
		return Document{}, err
	}
	if err := audit.Record(ctx, tx, audit.Event{
		At: s.clock.Now(), Actor: actor, Action: "document.read", SubjectIIN: d.SubjectIIN,
		Object: "document:" + d.ID.String(), Purpose: "document holder view", RequestID: requestID,
	}); err != nil {
		return Document{}, err
	}
	return d, tx.Commit(ctx)
}

func (s *Store) handleGet(w http.ResponseWriter, r *http.Request) error {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return apierr.New(apierr.DocumentNotFound)
	}
	d, err := s.Read(r.Context(), id, "anonymous", web.RequestID(r.Context()))
	if errors.Is(err, ErrNotFound) {
		return apierr.New(apierr.DocumentNotFound)
	}
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, ViewOf(d))
	return nil
}

// VerifyRequest is the body of POST /api/v1/documents/verify.
type VerifyRequest struct {
	JWS string `json:"jws"`
}

func (s *Store) handleVerify(w http.ResponseWriter, r *http.Request) error {
	var req VerifyRequest
	if err := web.DecodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.JWS == "" {
		return apierr.New(apierr.Validation, apierr.FieldError{Path: "/jws", Code: apierr.FieldRequired})
	}
	if len(req.JWS) > maxJWS {
		return apierr.New(apierr.Validation, apierr.FieldError{Path: "/jws", Code: apierr.FieldTooLong})
	}
	v, err := s.Verify(r.Context(), req.JWS)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, v)
	return nil
}
