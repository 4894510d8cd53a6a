package process

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/esign"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/outbox"
	"github.com/ortaq/ortaq/internal/servicedef"
	"github.com/ortaq/ortaq/internal/web"
)

// SignatureVerifier checks an electronic signature over data as of at and
// says who signed (internal/esign).
type SignatureVerifier interface {
	Verify(ctx context.Context, data []byte, sig esign.Signature, at time.Time) (esign.Signer, error)
}

// Statement is what an applicant signs: the application as submitted,
// fixed when the signature is asked for. Its JSON (keys in a fixed order)
// is the exact data signed.
type Statement struct {
	Type        string         `json:"type"`
	Application StatementApp   `json:"application"`
	Service     StatementSvc   `json:"service"`
	Applicant   string         `json:"applicant_iin"`
	Inputs      map[string]any `json:"inputs"`
	RequestedAt time.Time      `json:"requested_at"`
}

// StatementApp names the application signed.
type StatementApp struct {
	ID          uuid.UUID `json:"id"`
	Number      string    `json:"number"`
	SubmittedAt time.Time `json:"submitted_at"`
}

// StatementSvc names the service applied for, with its title in every
// language.
type StatementSvc struct {
	ID      string    `json:"id"`
	Version int       `json:"version"`
	Title   i18n.Text `json:"title"`
}

// StatementType versions the statement's shape.
const StatementType = "ortaq.application.statement/v1"

// requestSignature asks the applicant to sign the application at step s,
// or finds that they already did in this round (since the last
// correction).
func (f *flowRun) requestSignature(ctx context.Context, s servicedef.Step, a *servicedef.Activation) (due time.Time, signed bool, err error) {
	err = f.tx.QueryRow(ctx, `SELECT due_at, signed_at IS NOT NULL FROM application_signature
		WHERE application_id = $1 AND step = $2 AND superseded_at IS NULL`, f.id, s.ID).Scan(&due, &signed)
	if err == nil || !errors.Is(err, pgx.ErrNoRows) {
		return due, signed, err
	}
	now := f.e.cfg.Clock.Now().UTC().Truncate(time.Microsecond)
	st := Statement{Type: StatementType, Applicant: f.applicant.String(), Inputs: a.Inputs, RequestedAt: now,
		Service: StatementSvc{ID: f.def.ID, Version: f.def.Version, Title: f.def.Title}}
	st.Application.ID = f.id
	if err := f.tx.QueryRow(ctx, `SELECT number, submitted_at FROM application WHERE id = $1`, f.id).
		Scan(&st.Application.Number, &st.Application.SubmittedAt); err != nil {
		return time.Time{}, false, err
	}
	st.Application.SubmittedAt = st.Application.SubmittedAt.UTC()
	data, err := json.Marshal(st)
	if err != nil {
		return time.Time{}, false, err
	}
	if due, err = f.e.deadline(ctx, now, s.Deadline); err != nil {
		return time.Time{}, false, err
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO application_signature (application_id, step, data, requested_at, due_at) VALUES ($1, $2, $3, $4, $5)`,
		f.id, s.ID, data, now, due)
	b.Queue(`INSERT INTO process_timer (application_id, kind, due_at, step, refusal) VALUES ($1, 'applicant_deadline', $2, $3, $4)`,
		f.id, due, s.ID, s.Refusal)
	if err := f.tx.SendBatch(ctx, b).Close(); err != nil {
		return time.Time{}, false, fmt.Errorf("ask for a signature: %w", err)
	}
	return due, false, outbox.Emit(ctx, f.tx, now, "process.signature.requested", f.id.String(), map[string]any{
		"application_id": f.id, "step": s.ID, "to_iin": f.applicant.String(), "due_at": due,
	})
}

// SigningRequest is what the applicant is asked to sign.
type SigningRequest struct {
	Step string `json:"step"`
	// Data is the exact bytes to sign (a Statement as JSON), base64 in JSON.
	Data        []byte        `json:"data"`
	SHA256      string        `json:"sha256"`
	RequestedAt time.Time     `json:"requested_at"`
	DueAt       time.Time     `json:"due_at"`
	SignedAt    *time.Time    `json:"signed_at,omitempty"`
	Signer      *esign.Signer `json:"signer,omitempty"`
}

// SigningRequestOf returns the application's current signing request.
func (e *Engine) SigningRequestOf(ctx context.Context, app uuid.UUID) (SigningRequest, error) {
	var r SigningRequest
	err := e.pool.QueryRow(ctx, `SELECT step, data, requested_at, due_at, signed_at, signer FROM application_signature
		WHERE application_id = $1 AND superseded_at IS NULL ORDER BY id DESC LIMIT 1`, app).
		Scan(&r.Step, &r.Data, &r.RequestedAt, &r.DueAt, &r.SignedAt, &r.Signer)
	if errors.Is(err, pgx.ErrNoRows) {
		return SigningRequest{}, apierr.New(apierr.SigningNotFound)
	}
	if err != nil {
		return SigningRequest{}, err
	}
	sum := sha256.Sum256(r.Data)
	r.SHA256 = hex.EncodeToString(sum[:])
	return r, nil
}

// Sign records the applicant's signature of their application and sends
// it on. The signature itself proves who sends it: it must verify on the
// platform's trust roots and its certificate must name the applicant.
func (e *Engine) Sign(ctx context.Context, app uuid.UUID, sig esign.Signature, requestID string) (esign.Signer, error) {
	if e.cfg.Signatures == nil {
		return esign.Signer{}, errors.New("process: no signature verifier is configured")
	}
	var (
		rowID                int64
		stepID, status       string
		applicant, serviceID string
		version              int
		data                 []byte
		requestedAt          time.Time
	)
	err := e.pool.QueryRow(ctx, `SELECT s.id, s.step, s.data, s.requested_at, a.status, a.applicant_iin, a.service_id, a.service_version
		FROM application_signature s JOIN application a ON a.id = s.application_id
		WHERE s.application_id = $1 AND s.superseded_at IS NULL AND s.signed_at IS NULL`, app).
		Scan(&rowID, &stepID, &data, &requestedAt, &status, &applicant, &serviceID, &version)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && status != StatusAwaitingSignature) {
		return esign.Signer{}, apierr.New(apierr.SigningNotFound)
	}
	if err != nil {
		return esign.Signer{}, err
	}
	now := e.cfg.Clock.Now()
	signer, err := e.cfg.Signatures.Verify(ctx, data, sig, now)
	if err != nil {
		return esign.Signer{}, err
	}
	if signer.IIN != applicant {
		return esign.Signer{}, apierr.New(apierr.SignerNotApplicant)
	}
	plan, err := e.services.Plan(ctx, serviceID, version)
	if err != nil {
		return esign.Signer{}, err
	}
	err = e.inTxWaking(ctx, func(tx pgx.Tx) error {
		var cursor int
		if err := tx.QueryRow(ctx, `SELECT status, cursor FROM application WHERE id = $1 FOR NO KEY UPDATE`, app).Scan(&status, &cursor); err != nil {
			return err
		}
		if status != StatusAwaitingSignature || cursor < 0 || cursor >= len(plan.Steps) || plan.Steps[cursor].Step.ID != stepID {
			return apierr.New(apierr.SigningNotFound) // withdrawn, refused or signed meanwhile
		}
		tag, err := tx.Exec(ctx, `UPDATE application_signature SET signature = $2, signer = $3, signed_at = $4
			WHERE id = $1 AND signed_at IS NULL AND superseded_at IS NULL`, rowID, sig, signer, now)
		if err != nil {
			return fmt.Errorf("record signature: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return apierr.New(apierr.SigningNotFound)
		}
		actor := "citizen:" + signer.IIN
		b := &pgx.Batch{}
		b.Queue(`UPDATE application SET status = 'submitted', cursor = $2, updated_at = $3 WHERE id = $1`, app, plan.Steps[cursor].Next, now)
		b.Queue(`DELETE FROM process_timer WHERE application_id = $1 AND kind = 'applicant_deadline' AND step = $2`, app, stepID)
		queueStep(b, app, step{Name: "signed", Actor: actor, Start: requestedAt, End: now, Outcome: "ok", Detail: map[string]any{
			"step": stepID, "certificate_serial": signer.Serial, "issuer": signer.Issuer, "format": sig.Format, "request_id": requestID,
		}})
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("record signature: %w", err)
		}
		if err := audit.Record(ctx, tx, audit.Event{At: now, Actor: actor, Action: "process.application.sign",
			SubjectIIN: signer.IIN, Object: "application:" + app.String(), Purpose: "service:" + serviceID, RequestID: requestID}); err != nil {
			return err
		}
		if err := outbox.Emit(ctx, tx, now, "process.application.signed", app.String(), map[string]any{
			"application_id": app, "step": stepID, "certificate_serial": signer.Serial,
		}); err != nil {
			return err
		}
		return e.queue(ctx, tx, app)
	})
	return signer, err
}

func (e *Engine) handleSigning(w http.ResponseWriter, r *http.Request) error {
	return answerOf(w, r, apierr.SigningNotFound, e.SigningRequestOf)
}

func (e *Engine) handleSignature(w http.ResponseWriter, r *http.Request) error {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return apierr.New(apierr.SigningNotFound)
	}
	var raw json.RawMessage
	if err := web.DecodeJSON(w, r, &raw); err != nil {
		return err
	}
	// Strictly, so that bad base64 is named where it is (/signature/chain/1).
	sig, err := esign.ParseSignature(raw)
	if err != nil {
		return err
	}
	signer, err := e.Sign(r.Context(), id, sig, web.RequestID(r.Context()))
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"application_id": id, "signer": signer})
	return nil
}
