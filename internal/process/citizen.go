package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/outbox"
	"github.com/ortaq/ortaq/internal/pg"
)

// lockOwn locks the application for its applicant; anyone else is told it
// does not exist.
func lockOwn(ctx context.Context, tx pgx.Tx, who identity.Principal, id uuid.UUID) (status, serviceID string, version int, err error) {
	var applicant string
	err = tx.QueryRow(ctx, `SELECT applicant_iin, status, service_id, service_version FROM application WHERE id = $1 FOR NO KEY UPDATE`, id).
		Scan(&applicant, &status, &serviceID, &version)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !who.IsCitizen(applicant)) {
		return "", "", 0, apierr.New(apierr.ApplicationNotFound)
	}
	return status, serviceID, version, err
}

// Withdraw ends the citizen's own application that is not yet decided:
// open tasks are cancelled and timers dropped.
func (e *Engine) Withdraw(ctx context.Context, who identity.Principal, id uuid.UUID, requestID string) error {
	if who.Kind != identity.Citizen {
		return apierr.New(apierr.Forbidden)
	}
	return pg.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		status, serviceID, _, err := lockOwn(ctx, tx, who, id)
		if err != nil {
			return err
		}
		if Final(status) {
			return apierr.New(apierr.ApplicationState)
		}
		return e.end(ctx, tx, id, serviceID, StatusWithdrawn, who.Actor(), "", requestID)
	})
}

// end closes an undecided application as withdrawn or cancelled.
func (e *Engine) end(ctx context.Context, tx pgx.Tx, id uuid.UUID, serviceID, status, actor, reason, requestID string) error {
	now := e.cfg.Clock.Now()
	b := &pgx.Batch{}
	b.Queue(`UPDATE application SET status = $2, decided_at = $3, updated_at = $3 WHERE id = $1`, id, status, now)
	b.Queue(`UPDATE task SET status = 'cancelled', claimed_by = NULL WHERE application_id = $1 AND status IN ('open', 'claimed')`, id)
	b.Queue(`DELETE FROM process_timer WHERE application_id = $1`, id)
	b.Queue(`UPDATE invoice SET status = 'cancelled' WHERE application_id = $1 AND status = 'open'`, id)
	detail := map[string]any{"request_id": requestID}
	if reason != "" {
		detail["reason"] = reason
	}
	queueStep(b, id, step{Name: status, Actor: actor, Start: now, End: now, Outcome: "ok", Detail: detail})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("end application: %w", err)
	}
	e.metrics.decided.WithLabelValues(serviceID, status).Inc()
	return emitDecided(ctx, tx, now, id, serviceID, status, nil, nil)
}

// Correct replaces the inputs of the citizen's own application that an
// officer returned, and runs its flow again from the start on the same
// service version: data is read again, and the review happens again.
func (e *Engine) Correct(ctx context.Context, who identity.Principal, id uuid.UUID, inputs map[string]any, requestID string) error {
	if who.Kind != identity.Citizen {
		return apierr.New(apierr.Forbidden)
	}
	var serviceID string
	var version int
	err := e.pool.QueryRow(ctx, `SELECT service_id, service_version FROM application WHERE id = $1`, id).Scan(&serviceID, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return apierr.New(apierr.ApplicationNotFound)
	}
	if err != nil {
		return err
	}
	plan, err := e.services.Plan(ctx, serviceID, version)
	if err != nil {
		return err
	}
	return e.inTxWaking(ctx, func(tx pgx.Tx) error {
		status, _, _, err := lockOwn(ctx, tx, who, id)
		if err != nil {
			return err
		}
		if status != StatusReturned {
			return apierr.New(apierr.ApplicationState)
		}
		applicant, fields := checkInputs(plan, inputs)
		if len(fields) == 0 && applicant.String() != who.Subject {
			// The applicant cannot change: the correction is of the form.
			fields = append(fields, apierr.FieldError{Path: "/inputs/iin", Code: apierr.FieldOneOf})
		}
		if len(fields) > 0 {
			return apierr.New(apierr.Validation, fields...)
		}
		body, err := json.Marshal(inputs)
		if err != nil {
			return err
		}
		now := e.cfg.Clock.Now()
		b := &pgx.Batch{}
		b.Queue(`UPDATE application SET inputs = $2, status = 'submitted', cursor = 0, data = NULL, review = NULL, updated_at = $3 WHERE id = $1`, id, body, now)
		// What was signed is no longer what is applied for: it is signed again.
		b.Queue(`UPDATE application_signature SET superseded_at = $2 WHERE application_id = $1 AND superseded_at IS NULL`, id, now)
		queueStep(b, id, step{Name: "corrected", Actor: who.Actor(), Start: now, End: now, Outcome: "ok",
			Detail: map[string]any{"request_id": requestID}})
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("record correction: %w", err)
		}
		if err := audit.Record(ctx, tx, audit.Event{At: now, Actor: who.Actor(), Action: "process.application.correct",
			SubjectIIN: who.Subject, Object: "application:" + id.String(), Purpose: "service:" + serviceID, RequestID: requestID}); err != nil {
			return err
		}
		if err := outbox.Emit(ctx, tx, now, "process.application.corrected", id.String(), map[string]any{"application_id": id}); err != nil {
			return err
		}
		return e.queue(ctx, tx, id)
	})
}

// Failed lists applications that stopped after a step's last attempt,
// newest first.
func (e *Engine) Failed(ctx context.Context, limit int) ([]Application, error) {
	rows, err := e.pool.Query(ctx, `SELECT id FROM application WHERE status = 'failed' ORDER BY decided_at DESC LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, err
	}
	out := make([]Application, 0, len(ids))
	for _, id := range ids {
		a, err := e.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// Retry sends a failed application back to work from the step that failed,
// with a fresh count of attempts. actor names the operator.
func (e *Engine) Retry(ctx context.Context, id uuid.UUID, actor string) error {
	return e.inTxWaking(ctx, func(tx pgx.Tx) error {
		var status string
		err := tx.QueryRow(ctx, `SELECT status FROM application WHERE id = $1 FOR NO KEY UPDATE`, id).Scan(&status)
		if errors.Is(err, pgx.ErrNoRows) {
			return apierr.New(apierr.ApplicationNotFound)
		}
		if err != nil {
			return err
		}
		if status != StatusFailed {
			return apierr.New(apierr.ApplicationState)
		}
		now := e.cfg.Clock.Now()
		b := &pgx.Batch{}
		b.Queue(`UPDATE application SET status = 'submitted', decided_at = NULL, updated_at = $2 WHERE id = $1`, id, now)
		queueStep(b, id, step{Name: "retried", Actor: actor, Start: now, End: now, Outcome: "ok"})
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		return e.queue(ctx, tx, id)
	})
}

// Cancel ends an undecided or failed application for an operator, with the
// reason on its timeline.
func (e *Engine) Cancel(ctx context.Context, id uuid.UUID, actor, reason string) error {
	return pg.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		var status, serviceID string
		err := tx.QueryRow(ctx, `SELECT status, service_id FROM application WHERE id = $1 FOR NO KEY UPDATE`, id).Scan(&status, &serviceID)
		if errors.Is(err, pgx.ErrNoRows) {
			return apierr.New(apierr.ApplicationNotFound)
		}
		if err != nil {
			return err
		}
		if Final(status) && status != StatusFailed {
			return apierr.New(apierr.ApplicationState)
		}
		return e.end(ctx, tx, id, serviceID, StatusCancelled, actor, reason, "")
	})
}

// Inspection is everything an operator needs to see about one application.
type Inspection struct {
	Application Application
	Applicant   string
	Cursor      int
	Tasks       []Task
	Timers      []Timer
	Jobs        []Job
}

// Timer is a pending timer.
type Timer struct {
	Kind  string
	DueAt time.Time
}

// Job is a queued or finished run of the application's flow.
type Job struct {
	State    string // due, or retry scheduled
	Attempt  int    // attempts so far
	Schedule time.Time
}

// Inspect gathers an application's state, timeline (with errors), tasks,
// timers and jobs.
func (e *Engine) Inspect(ctx context.Context, id uuid.UUID) (Inspection, error) {
	var in Inspection
	a, err := e.Get(ctx, id)
	if err != nil {
		return in, err
	}
	in.Application = a
	if err := e.pool.QueryRow(ctx, `SELECT applicant_iin, cursor FROM application WHERE id = $1`, id).Scan(&in.Applicant, &in.Cursor); err != nil {
		return in, err
	}
	rows, err := e.pool.Query(ctx, `SELECT `+taskColumns+` FROM task t JOIN application a ON a.id = t.application_id WHERE t.application_id = $1 ORDER BY t.created_at`, id)
	if err != nil {
		return in, err
	}
	if in.Tasks, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Task, error) { return scanTask(r) }); err != nil {
		return in, err
	}
	rows, err = e.pool.Query(ctx, `SELECT kind, due_at FROM process_timer WHERE application_id = $1 ORDER BY due_at`, id)
	if err != nil {
		return in, err
	}
	if in.Timers, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Timer]); err != nil {
		return in, err
	}
	// A queued run (its errors are on the timeline).
	rows, err = e.pool.Query(ctx, `SELECT CASE WHEN run_at <= $2 THEN 'due' ELSE 'retry scheduled' END, attempt, run_at
		FROM process_run WHERE application_id = $1`, id, e.cfg.Clock.Now())
	if err != nil {
		return in, err
	}
	in.Jobs, err = pgx.CollectRows(rows, pgx.RowToStructByPos[Job])
	return in, err
}
