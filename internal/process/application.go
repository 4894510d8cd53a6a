package process

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/service"
	"github.com/ortaq/ortaq/internal/web"
)

// Application is an application with its timeline.
type Application struct {
	ID             uuid.UUID
	Number         string
	ServiceID      string
	ServiceVersion int
	Status         string
	RefusalCode    string
	DocumentID     *uuid.UUID
	SubmittedAt    time.Time
	DecidedAt      *time.Time
	Timeline       []Step
}

// Step is one line of the timeline.
type Step struct {
	Name       string
	Actor      string
	StartedAt  time.Time
	FinishedAt time.Time
	Outcome    string
	Attempt    int
	// Detail is for operators: errors, task ids, reasons.
	Detail map[string]any
}

// ErrNotFound means there is no such application.
var ErrNotFound = errors.New("application not found")

// Get returns an application with its timeline.
func (e *Engine) Get(ctx context.Context, id uuid.UUID) (Application, error) {
	var a Application
	var refusal *string
	var timeline []storedStep
	err := e.pool.QueryRow(ctx, `SELECT id, number, service_id, service_version, status, refusal_code, document_id, submitted_at, decided_at,
			timeline
		FROM application WHERE id = $1`, id).
		Scan(&a.ID, &a.Number, &a.ServiceID, &a.ServiceVersion, &a.Status, &refusal, &a.DocumentID, &a.SubmittedAt, &a.DecidedAt, &timeline)
	if errors.Is(err, pgx.ErrNoRows) {
		return Application{}, ErrNotFound
	}
	if err != nil {
		return Application{}, fmt.Errorf("read application: %w", err)
	}
	if refusal != nil {
		a.RefusalCode = *refusal
	}
	a.Timeline = make([]Step, len(timeline))
	for i, s := range timeline {
		a.Timeline[i] = Step{Name: s.Step, Actor: s.Actor, StartedAt: s.StartedAt, FinishedAt: s.FinishedAt, Outcome: s.Outcome,
			Attempt: s.Attempt, Detail: s.Detail}
	}
	return a, nil
}

// View is an application as the API shows it, in one language.
type View struct {
	ID             string       `json:"id"`
	Number         string       `json:"number"`
	Service        ServiceRef   `json:"service"`
	Status         string       `json:"status"`
	StatusText     string       `json:"status_text"`
	Refusal        *RefusalView `json:"refusal,omitempty"`
	DocumentID     *string      `json:"document_id,omitempty"`
	SubmittedAt    time.Time    `json:"submitted_at"`
	DecidedAt      *time.Time   `json:"decided_at,omitempty"`
	TargetDuration string       `json:"target_duration"`
	// Correction is what an officer asked the citizen to correct, while the
	// application is returned.
	Correction *CorrectionView `json:"correction,omitempty"`
	// Payment is the fee to pay, while the application awaits payment.
	Payment *PaymentView `json:"payment,omitempty"`
	// Signing is what to sign, while the application awaits a signature.
	Signing  *SigningView `json:"signing,omitempty"`
	Timeline []StepView   `json:"timeline"`
}

// CorrectionView is an officer's request for a correction.
type CorrectionView struct {
	Reason      string    `json:"reason"`
	RequestedAt time.Time `json:"requested_at"`
}

// PaymentView is the fee an application waits for.
type PaymentView struct {
	Invoice    string    `json:"invoice"`
	AmountTiyn int64     `json:"amount_tiyn"`
	Declared   string    `json:"declared"`
	Payee      string    `json:"payee"`
	DueAt      time.Time `json:"due_at"`
}

// SigningView is the signature an application waits for; the data to sign
// is at URL.
type SigningView struct {
	SHA256 string    `json:"sha256"`
	DueAt  time.Time `json:"due_at"`
	URL    string    `json:"url"`
}

// ServiceRef names the service version an application runs on.
type ServiceRef struct {
	ID      string `json:"id"`
	Version int    `json:"version"`
	Title   string `json:"title"`
}

// RefusalView says why an application was refused.
type RefusalView struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Comment is the officer's explanation, when an officer refused.
	Comment string `json:"comment,omitempty"`
}

// StepView is one timeline step.
type StepView struct {
	Step       string    `json:"step"`
	Title      string    `json:"title"`
	Actor      string    `json:"actor"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	DurationMS float64   `json:"duration_ms"`
	Outcome    string    `json:"outcome"`
	Attempt    int       `json:"attempt"`
}

// ViewOf renders a in lang.
func ViewOf(a Application, def service.Definition, lang i18n.Lang) View {
	v := View{
		ID: a.ID.String(), Number: a.Number,
		Service:     ServiceRef{ID: a.ServiceID, Version: a.ServiceVersion, Title: def.Title.In(lang)},
		Status:      a.Status,
		StatusText:  i18n.T(lang, "status."+a.Status),
		SubmittedAt: a.SubmittedAt, DecidedAt: a.DecidedAt,
		TargetDuration: service.ISODuration(def.TargetDuration),
		Timeline:       make([]StepView, 0, len(a.Timeline)),
	}
	if a.RefusalCode != "" {
		msg := def.Refusals[a.RefusalCode].In(lang)
		if msg == "" {
			msg = i18n.T(lang, "refusal.unspecified")
		}
		v.Refusal = &RefusalView{Code: a.RefusalCode, Message: msg}
	}
	if a.DocumentID != nil {
		s := a.DocumentID.String()
		v.DocumentID = &s
	}
	for _, s := range a.Timeline {
		reason, _ := s.Detail["reason"].(string)
		comment, _ := s.Detail["comment"].(string)
		switch {
		case a.Status == StatusReturned && s.Name == StatusReturned:
			v.Correction = &CorrectionView{Reason: reason, RequestedAt: s.FinishedAt}
		case v.Refusal != nil && s.Name == "review" && s.Outcome == "refuse":
			v.Refusal.Comment = comment
		}
		v.Timeline = append(v.Timeline, StepView{
			Step: s.Name, Title: i18n.T(lang, "step."+s.Name), Actor: s.Actor,
			StartedAt: s.StartedAt, FinishedAt: s.FinishedAt,
			DurationMS: float64(s.FinishedAt.Sub(s.StartedAt).Microseconds()) / 1000,
			Outcome:    s.Outcome, Attempt: s.Attempt,
		})
	}
	return v
}

// View returns the application in lang.
func (e *Engine) View(ctx context.Context, id uuid.UUID, lang i18n.Lang) (View, error) {
	a, err := e.Get(ctx, id)
	if err != nil {
		return View{}, err
	}
	def, err := e.services.Version(ctx, a.ServiceID, a.ServiceVersion)
	if err != nil {
		return View{}, err
	}
	v := ViewOf(a, def, lang)
	switch a.Status {
	case StatusAwaitingPayment:
		inv, err := e.InvoiceOf(ctx, id)
		if err != nil {
			return View{}, err
		}
		v.Payment = &PaymentView{Invoice: inv.Number, AmountTiyn: inv.AmountTiyn, Declared: inv.Declared, Payee: inv.Payee, DueAt: inv.DueAt}
	case StatusAwaitingSignature:
		req, err := e.SigningRequestOf(ctx, id)
		if err != nil {
			return View{}, err
		}
		v.Signing = &SigningView{SHA256: req.SHA256, DueAt: req.DueAt, URL: "/api/v1/applications/" + id.String() + "/signing"}
	}
	return v, nil
}

// SubmitBody is the body of POST /api/v1/applications.
type SubmitBody struct {
	Service string         `json:"service"`
	Inputs  map[string]any `json:"inputs"`
}

// Routes mounts the applications API.
func (e *Engine) Routes(s *web.Server) {
	s.HandleFunc("POST /api/v1/applications", e.handleSubmit)
	s.HandleFunc("GET /api/v1/applications/{id}", e.handleGet)
	s.HandleFunc("POST /api/v1/applications/{id}/withdraw", e.handleWithdraw)
	s.HandleFunc("POST /api/v1/applications/{id}/correction", e.handleCorrection)
	s.HandleFunc("GET /api/v1/applications/{id}/invoice", e.handleInvoice)
	s.HandleFunc("GET /api/v1/applications/{id}/signing", e.handleSigning)
	s.HandleFunc("POST /api/v1/applications/{id}/signature", e.handleSignature)
	s.HandleFunc("POST /api/v1/payments", e.handlePayment)
	s.HandleFunc("GET /api/v1/tasks", e.handleInbox)
	s.HandleFunc("GET /api/v1/tasks/{id}", e.handleTask)
	s.HandleFunc("POST /api/v1/tasks/{id}/claim", e.handleClaim)
	s.HandleFunc("POST /api/v1/tasks/{id}/release", e.handleRelease)
	s.HandleFunc("POST /api/v1/tasks/{id}/decision", e.handleDecision)
	s.HandleFunc("GET /api/v1/tasks/{id}/attachments/{attachment}", e.handleAttachment)
}

// ValidIdempotencyKey reports whether k is an acceptable Idempotency-Key.
func ValidIdempotencyKey(k string) bool {
	if len(k) < 1 || len(k) > 200 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

func (e *Engine) handleSubmit(w http.ResponseWriter, r *http.Request) error {
	// A citizen applies for themselves: the applicant is the signed-in
	// person (inputs.iin must name them). Organisations' systems apply on
	// nobody's behalf until delegations exist.
	who, err := identity.Require(r)
	if err != nil {
		return err
	}
	if who.Kind != identity.Citizen {
		return apierr.New(apierr.Forbidden)
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		return apierr.New(apierr.IdempotencyKeyMissing)
	}
	if !ValidIdempotencyKey(key) {
		return apierr.New(apierr.IdempotencyKeyBad)
	}
	var body SubmitBody
	if err := web.DecodeJSON(w, r, &body); err != nil {
		return err
	}
	// A malformed IIN is answered as the field error it is, by Submit.
	if v, ok := body.Inputs["iin"].(string); ok {
		if applicant, err := iin.Parse(v); err == nil && applicant.String() != who.Subject {
			return apierr.New(apierr.Forbidden)
		}
	}
	app, replayed, err := e.Submit(r.Context(), SubmitRequest{
		ServiceID: body.Service, Inputs: body.Inputs, IdempotencyKey: key, RequestID: web.RequestID(r.Context()),
	})
	if err != nil {
		return err
	}
	def, err := e.services.Version(r.Context(), app.ServiceID, app.ServiceVersion)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/applications/"+app.ID.String())
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	web.WriteJSON(w, http.StatusAccepted, ViewOf(app, def, web.Lang(r)))
	return nil
}

func (e *Engine) handleGet(w http.ResponseWriter, r *http.Request) error {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return apierr.New(apierr.ApplicationNotFound)
	}
	v, err := e.View(r.Context(), id, web.Lang(r))
	if errors.Is(err, ErrNotFound) {
		return apierr.New(apierr.ApplicationNotFound)
	}
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, v)
	return nil
}
