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
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/outbox"
	"github.com/ortaq/ortaq/internal/pg"
	"github.com/ortaq/ortaq/internal/refnum"
	"github.com/ortaq/ortaq/internal/servicedef"
	"github.com/ortaq/ortaq/internal/web"
)

// Invoice is a state fee to pay for an application.
type Invoice struct {
	ID            uuid.UUID  `json:"id"`
	Number        string     `json:"number"`
	ApplicationID uuid.UUID  `json:"application_id"`
	Step          string     `json:"step"`
	AmountTiyn    int64      `json:"amount_tiyn"`
	Declared      string     `json:"declared"`
	Payee         string     `json:"payee"`
	Status        string     `json:"status"`
	CreatedAt     time.Time  `json:"created_at"`
	DueAt         time.Time  `json:"due_at"`
	PaidAt        *time.Time `json:"paid_at,omitempty"`
	Reference     *string    `json:"reference,omitempty"`
}

const selectInvoice = `SELECT id, number, application_id, step, amount_tiyn, declared, payee, status, created_at, due_at, paid_at, reference FROM invoice`

func scanInvoice(row pgx.Row) (Invoice, error) {
	var v Invoice
	err := row.Scan(&v.ID, &v.Number, &v.ApplicationID, &v.Step, &v.AmountTiyn, &v.Declared, &v.Payee, &v.Status,
		&v.CreatedAt, &v.DueAt, &v.PaidAt, &v.Reference)
	return v, err
}

// deadline is when an applicant's or officer's time d from now ends: whole
// days count working days on the calendar, anything else clock time.
func (e *Engine) deadline(ctx context.Context, now time.Time, d *servicedef.Duration) (time.Time, error) {
	if d.Days > 0 {
		due, err := e.cfg.Calendar.AddWorkingDays(ctx, now, d.Days)
		if err != nil {
			return time.Time{}, fmt.Errorf("deadline: %w", err)
		}
		return due, nil
	}
	return now.Add(d.D), nil
}

// invoice makes the fee of step s due, or finds the one made by an earlier
// run of the same application (after a correction): paid is true when it
// is already paid, so the flow goes on without charging twice.
func (e *Engine) invoice(ctx context.Context, tx pgx.Tx, app uuid.UUID, applicant string, s servicedef.Step, payee string) (inv Invoice, paid bool, err error) {
	inv, err = scanInvoice(tx.QueryRow(ctx, selectInvoice+` WHERE application_id = $1 AND step = $2`, app, s.ID))
	switch {
	case err == nil:
		return inv, inv.Status == "paid", nil
	case !errors.Is(err, pgx.ErrNoRows):
		return Invoice{}, false, fmt.Errorf("find invoice: %w", err)
	}
	now := e.cfg.Clock.Now()
	amount, err := s.Amount.Tiyn(now)
	if err != nil {
		return Invoice{}, false, err
	}
	due, err := e.deadline(ctx, now, s.Deadline)
	if err != nil {
		return Invoice{}, false, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Invoice{}, false, err
	}
	inv = Invoice{ID: id, Number: refnum.New('P'), ApplicationID: app, Step: s.ID, AmountTiyn: amount, Declared: s.Amount.String(),
		Payee: payee, Status: "open", CreatedAt: now, DueAt: due}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO invoice (id, number, application_id, step, amount_tiyn, declared, payee, status, created_at, due_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9)`,
		inv.ID, inv.Number, app, s.ID, amount, inv.Declared, payee, now, due)
	b.Queue(`INSERT INTO process_timer (application_id, kind, due_at, step, refusal) VALUES ($1, 'applicant_deadline', $2, $3, $4)`,
		app, due, s.ID, s.Refusal)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return Invoice{}, false, fmt.Errorf("make invoice: %w", err)
	}
	err = outbox.Emit(ctx, tx, now, "process.payment.requested", inv.Number, map[string]any{
		"invoice": inv.Number, "application_id": app, "amount_tiyn": amount, "payee": payee, "due_at": due, "to_iin": applicant,
	})
	return inv, false, err
}

// PaymentConfirmation is what a payment gateway reports: the invoice paid,
// how much, and its own id of the payment.
type PaymentConfirmation struct {
	Invoice    string    `json:"invoice"`
	AmountTiyn int64     `json:"amount_tiyn"`
	Reference  string    `json:"reference"`
	PaidAt     time.Time `json:"paid_at"`
	RequestID  string    `json:"-"`
}

// ConfirmPayment records that an invoice was paid and sends its application
// on. Only a system holding the payments scope may confirm. Confirming the
// same payment again answers as the first time; another payment of a paid
// invoice, or a reference already used for another invoice, is refused.
func (e *Engine) ConfirmPayment(ctx context.Context, who identity.Principal, c PaymentConfirmation) (Invoice, error) {
	if !who.HasScope(identity.ScopePayments) {
		return Invoice{}, apierr.New(apierr.Forbidden)
	}
	var fields []apierr.FieldError
	for _, f := range []struct {
		path, value string
		max         int
	}{{"/invoice", c.Invoice, 40}, {"/reference", c.Reference, 100}} {
		switch {
		case f.value == "":
			fields = append(fields, apierr.FieldError{Path: f.path, Code: apierr.FieldRequired})
		case len(f.value) > f.max:
			fields = append(fields, apierr.FieldError{Path: f.path, Code: apierr.FieldTooLong})
		}
	}
	if c.AmountTiyn <= 0 {
		fields = append(fields, apierr.FieldError{Path: "/amount_tiyn", Code: apierr.FieldOutOfRange})
	}
	now := e.cfg.Clock.Now()
	if c.PaidAt.IsZero() || c.PaidAt.After(now.Add(5*time.Minute)) {
		fields = append(fields, apierr.FieldError{Path: "/paid_at", Code: apierr.FieldOutOfRange})
	}
	if len(fields) > 0 {
		return Invoice{}, apierr.New(apierr.Validation, fields...)
	}
	var app uuid.UUID
	var serviceID string
	var version int
	err := e.pool.QueryRow(ctx, `SELECT a.id, a.service_id, a.service_version FROM invoice i JOIN application a ON a.id = i.application_id WHERE i.number = $1`, c.Invoice).
		Scan(&app, &serviceID, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return Invoice{}, apierr.New(apierr.InvoiceNotFound)
	}
	if err != nil {
		return Invoice{}, err
	}
	plan, err := e.services.Plan(ctx, serviceID, version)
	if err != nil {
		return Invoice{}, err
	}
	var inv Invoice
	err = e.inTxWaking(ctx, func(tx pgx.Tx) error {
		// The application first, as every run locks it: no deadlock.
		var status string
		var cursor int
		if err := tx.QueryRow(ctx, `SELECT status, cursor FROM application WHERE id = $1 FOR NO KEY UPDATE`, app).Scan(&status, &cursor); err != nil {
			return err
		}
		var err error
		inv, err = scanInvoice(tx.QueryRow(ctx, selectInvoice+` WHERE number = $1 FOR UPDATE`, c.Invoice))
		if err != nil {
			return err
		}
		switch {
		case inv.Status == "paid" && inv.Reference != nil && *inv.Reference == c.Reference && inv.AmountTiyn == c.AmountTiyn:
			return nil // the same confirmation again
		case inv.Status != "open":
			return apierr.New(apierr.InvoiceClosed)
		case c.AmountTiyn != inv.AmountTiyn:
			return apierr.New(apierr.Validation, apierr.FieldError{Path: "/amount_tiyn", Code: apierr.FieldAmountMismatch})
		}
		i := cursor
		if status != StatusAwaitingPayment || i < 0 || i >= len(plan.Steps) || plan.Steps[i].Step.ID != inv.Step {
			// An open invoice belongs to an application waiting for it.
			return fmt.Errorf("invoice %s is open but application %s is %s at step %d", inv.Number, app, status, cursor)
		}
		tag, err := tx.Exec(ctx, `UPDATE invoice SET status = 'paid', paid_at = $2, reference = $3, confirmed_by = $4
			WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM invoice WHERE reference = $3)`, inv.ID, c.PaidAt, c.Reference, who.Actor())
		if err != nil {
			return fmt.Errorf("record payment: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return apierr.New(apierr.PaymentReferenceUsed)
		}
		inv.Status, inv.PaidAt, inv.Reference = "paid", &c.PaidAt, &c.Reference
		b := &pgx.Batch{}
		b.Queue(`UPDATE application SET status = 'submitted', cursor = $2, updated_at = $3 WHERE id = $1`, app, plan.Steps[i].Next, now)
		b.Queue(`DELETE FROM process_timer WHERE application_id = $1 AND kind = 'applicant_deadline' AND step = $2`, app, inv.Step)
		queueStep(b, app, step{Name: "fee.paid", Actor: who.Actor(), Start: inv.CreatedAt, End: now, Outcome: "ok",
			Detail: map[string]any{"step": inv.Step, "invoice": inv.Number, "amount_tiyn": inv.AmountTiyn, "reference": c.Reference, "request_id": c.RequestID}})
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("record payment: %w", err)
		}
		if err := outbox.Emit(ctx, tx, now, "process.payment.confirmed", inv.Number, map[string]any{
			"invoice": inv.Number, "application_id": app, "amount_tiyn": inv.AmountTiyn, "reference": c.Reference, "confirmed_by": who.Actor(),
		}); err != nil {
			return err
		}
		return e.queue(ctx, tx, app)
	})
	if pg.IsUniqueViolation(err, "invoice_reference_key") {
		return Invoice{}, apierr.New(apierr.PaymentReferenceUsed)
	}
	return inv, err
}

// InvoiceOf returns the latest invoice of an application.
func (e *Engine) InvoiceOf(ctx context.Context, app uuid.UUID) (Invoice, error) {
	inv, err := scanInvoice(e.pool.QueryRow(ctx, selectInvoice+` WHERE application_id = $1 ORDER BY created_at DESC LIMIT 1`, app))
	if errors.Is(err, pgx.ErrNoRows) {
		return Invoice{}, apierr.New(apierr.InvoiceNotFound)
	}
	return inv, err
}

// applicantMissed handles an applicant's deadline that passed: the fee was
// not paid or the application not signed in time, so it is refused with
// the step's refusal. An application that went on meanwhile is left alone.
func (e *Engine) applicantMissed(ctx context.Context, tx pgx.Tx, app uuid.UUID, stepID, refusal string, due, now time.Time) error {
	var status, serviceID string
	if err := tx.QueryRow(ctx, `SELECT status, service_id FROM application WHERE id = $1 FOR NO KEY UPDATE`, app).Scan(&status, &serviceID); err != nil {
		return err
	}
	name := "fee.expired"
	switch status {
	case StatusAwaitingPayment:
	case StatusAwaitingSignature:
		name = "sign.expired"
	default:
		return nil
	}
	b := &pgx.Batch{}
	b.Queue(`UPDATE invoice SET status = 'expired' WHERE application_id = $1 AND step = $2 AND status = 'open'`, app, stepID)
	queueSteps(b, app, []step{
		{Name: name, Actor: "system", Start: due, End: now, Outcome: "overdue", Detail: map[string]any{"step": stepID}},
		{Name: StatusRefused, Actor: "system", Start: now, End: now, Outcome: "ok", Detail: map[string]any{"refusal": refusal}},
	})
	b.Queue(`UPDATE application SET status = 'refused', refusal_code = $2, cursor = -1, decided_at = $3, updated_at = $3 WHERE id = $1`, app, refusal, now)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("refuse after the applicant's deadline: %w", err)
	}
	e.metrics.decided.WithLabelValues(serviceID, StatusRefused).Inc()
	return emitDecided(ctx, tx, now, app, serviceID, StatusRefused, &refusal, nil)
}

func (e *Engine) handleInvoice(w http.ResponseWriter, r *http.Request) error {
	return answerOf(w, r, apierr.InvoiceNotFound, e.InvoiceOf)
}

// answerOf answers a read of what an application waits for: get's result,
// or notFound for an id that is not one.
func answerOf[T any](w http.ResponseWriter, r *http.Request, notFound apierr.Code, get func(context.Context, uuid.UUID) (T, error)) error {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return apierr.New(notFound)
	}
	v, err := get(r.Context(), id)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, v)
	return nil
}

func (e *Engine) handlePayment(w http.ResponseWriter, r *http.Request) error {
	var c PaymentConfirmation
	if _, err := identity.Require(r); err != nil {
		return err // before reading a body an anonymous caller may not send
	}
	if err := web.DecodeJSON(w, r, &c); err != nil {
		return err
	}
	c.RequestID = web.RequestID(r.Context())
	who, err := identity.Require(r)
	if err != nil {
		return err
	}
	inv, err := e.ConfirmPayment(r.Context(), who, c)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, inv)
	return nil
}
