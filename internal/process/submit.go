package process

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/outbox"
	"github.com/ortaq/ortaq/internal/refnum"
	"github.com/ortaq/ortaq/internal/service"
	"github.com/ortaq/ortaq/internal/servicedef"
)

// SubmitRequest is a citizen's application.
type SubmitRequest struct {
	ServiceID string
	// Inputs are the form's values as decoded JSON. Until sign-in exists the
	// applicant is the person named by inputs.iin.
	Inputs         map[string]any
	IdempotencyKey string
	RequestID      string
}

// Submit validates and stores an application and queues its work. replayed is
// true when the idempotency key matched an earlier identical submission,
// which is returned instead.
// idempotencyConstraint is the unique constraint on (applicant_iin,
// idempotency_key) of table application.
const idempotencyConstraint = "application_applicant_iin_idempotency_key_key"

func (e *Engine) Submit(ctx context.Context, req SubmitRequest) (app Application, replayed bool, err error) {
	if req.ServiceID == "" {
		return Application{}, false, apierr.New(apierr.Validation, apierr.FieldError{Path: "/service", Code: apierr.FieldRequired})
	}
	def, err := e.services.Current(ctx, req.ServiceID)
	if errors.Is(err, service.ErrNotFound) {
		return Application{}, false, apierr.New(apierr.ServiceNotFound)
	}
	if err != nil {
		return Application{}, false, err
	}
	plan, err := e.services.Plan(ctx, def.ID, def.Version)
	if err != nil {
		return Application{}, false, err
	}
	applicant, fields := checkInputs(plan, req.Inputs)
	if len(fields) > 0 {
		return Application{}, false, apierr.New(apierr.Validation, fields...)
	}
	inputs, err := json.Marshal(req.Inputs)
	if err != nil {
		return Application{}, false, err
	}
	hash := sha256.Sum256(append([]byte(def.ID+"\x00"), inputs...))
	id, err := uuid.NewV7()
	if err != nil {
		return Application{}, false, err
	}
	// Stored to the microsecond in UTC: the answer built from these values
	// must read the same as the application read back later.
	now := e.cfg.Clock.Now().UTC().Truncate(time.Microsecond)
	number := refnum.New('A')
	submitted := step{Name: "submitted", Actor: "citizen", Start: now, End: now, Outcome: "ok", Attempt: 1,
		Detail: map[string]any{"request_id": req.RequestID}}
	// One round trip: the statements of a batch run in one implicit
	// transaction, all or none.
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO application (id, number, service_id, service_version, applicant_iin, inputs, status,
			idempotency_key, request_hash, submitted_at, timeline)
		VALUES ($1, $2, $3, $4, $5, $6, 'submitted', $7, $8, $9, $10)`,
		id, number, def.ID, def.Version, applicant.String(), inputs, req.IdempotencyKey, hash[:], now, timelineOf(submitted))
	if err := outbox.Queue(b, now, "process.application.submitted", id.String(),
		map[string]any{"application_id": id, "service_id": def.ID, "service_version": def.Version}); err != nil {
		return Application{}, false, err
	}
	e.queueRun(b, id, def.ID, def.Version)
	err = e.pool.SendBatch(ctx, b).Close()
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == idempotencyConstraint {
		// The same applicant sent this key before: the same request gets
		// the first answer, another one an error.
		var existingHash []byte
		err = e.pool.QueryRow(ctx, `SELECT id, request_hash FROM application WHERE applicant_iin = $1 AND idempotency_key = $2`,
			applicant.String(), req.IdempotencyKey).Scan(&id, &existingHash)
		if err != nil {
			return Application{}, false, fmt.Errorf("find earlier submission: %w", err)
		}
		if string(existingHash) != string(hash[:]) {
			return Application{}, false, apierr.New(apierr.IdempotencyKeyReused)
		}
		replayed = true
	}
	if err != nil {
		return Application{}, false, fmt.Errorf("insert application: %w", err)
	}
	if replayed {
		app, err = e.Get(ctx, id)
		return app, true, err
	}
	e.metrics.submitted.WithLabelValues(def.ID).Inc()
	e.dispatch(id)
	// Answered from what was just written: a read back would cost two more
	// round trips per application and could only see the same row.
	return Application{
		ID: id, Number: number, ServiceID: def.ID, ServiceVersion: def.Version, Status: StatusSubmitted, SubmittedAt: now,
		Timeline: []Step{{Name: submitted.Name, Actor: submitted.Actor, StartedAt: now, FinishedAt: now,
			Outcome: submitted.Outcome, Attempt: submitted.Attempt, Detail: submitted.Detail}},
	}, false, nil
}

// checkInputs names every wrong field: the applicant's IIN first (its
// structure and check digit), then the form's schema.
func checkInputs(plan *servicedef.Plan, inputs map[string]any) (iin.IIN, []apierr.FieldError) {
	var fields []apierr.FieldError
	var applicant iin.IIN
	switch v := inputs["iin"].(type) {
	case nil:
		fields = append(fields, apierr.FieldError{Path: "/inputs/iin", Code: apierr.FieldIINEmpty})
	case string:
		n, err := iin.Parse(v)
		if err != nil {
			fields = append(fields, apierr.FieldError{Path: "/inputs/iin", Code: iinFieldCode(err)})
		}
		applicant = n
	default:
		fields = append(fields, apierr.FieldError{Path: "/inputs/iin", Code: apierr.FieldType})
	}
	var value any = inputs
	if inputs == nil {
		value = map[string]any{}
	}
	for _, ie := range plan.CheckInputs(value) {
		if ie.Path == "/iin" {
			continue // already named, more precisely
		}
		fields = append(fields, apierr.FieldError{Path: "/inputs" + ie.Path, Code: apierr.Code(ie.Code)})
	}
	return applicant, fields
}

func iinFieldCode(err error) apierr.Code {
	var ie *iin.Error
	if errors.As(err, &ie) {
		switch code := apierr.Code(ie.Code); code {
		case apierr.FieldIINEmpty, apierr.FieldIINLength, apierr.FieldIINDigits, apierr.FieldIINChecksum:
			return code
		}
	}
	return apierr.FieldFormat
}
