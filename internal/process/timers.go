package process

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/outbox"
)

// weekdays is the calendar without holidays: Monday to Friday work. A day
// ends at midnight in Kazakhstan (UTC+5).
type weekdays struct{}

var almaty = time.FixedZone("Asia/Almaty", 5*60*60)

func (weekdays) AddWorkingDays(_ context.Context, t time.Time, n int) (time.Time, error) {
	d := t.In(almaty)
	for n > 0 {
		d = d.AddDate(0, 0, 1)
		if wd := d.Weekday(); wd != time.Saturday && wd != time.Sunday {
			n--
		}
	}
	y, m, day := d.Date()
	return time.Date(y, m, day+1, 0, 0, 0, 0, almaty).Add(-time.Nanosecond).UTC(), nil
}

// timerBatch bounds the timers fired in one transaction.
const timerBatch = 200

// fireTimersEvery fires due timers until ctx ends.
func (e *Engine) fireTimersEvery(ctx context.Context, every time.Duration) {
	defer close(e.timersDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for {
			n, err := e.FireTimers(ctx)
			if err != nil {
				if ctx.Err() == nil {
					e.log.Error("firing timers", "error", err)
				}
				break
			}
			if n < timerBatch {
				break
			}
		}
	}
}

// FireTimers fires every timer due on the engine's clock: a waiting
// application goes on; an officer's task past its deadline is escalated.
// Several nodes may fire at once: each timer is taken by one of them.
// It returns how many timers it fired.
func (e *Engine) FireTimers(ctx context.Context) (int, error) {
	now := e.cfg.Clock.Now()
	fired := 0
	err := e.inTxWaking(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			DELETE FROM process_timer WHERE id IN (
				SELECT id FROM process_timer WHERE due_at <= $1 ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED)
			RETURNING application_id, kind, task_id, due_at, coalesce(step, ''), coalesce(refusal, '')`, now, timerBatch)
		if err != nil {
			return fmt.Errorf("take due timers: %w", err)
		}
		type timer struct {
			app  uuid.UUID
			kind string
			task *uuid.UUID
			due  time.Time
			// applicant deadlines
			step, refusal string
		}
		timers, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (timer, error) {
			var t timer
			return t, r.Scan(&t.app, &t.kind, &t.task, &t.due, &t.step, &t.refusal)
		})
		if err != nil {
			return err
		}
		for _, t := range timers {
			switch t.kind {
			case "resume":
				err = e.resume(ctx, tx, t.app, t.due, now)
			case "task_deadline":
				err = e.escalate(ctx, tx, *t.task, now)
			case "applicant_deadline":
				err = e.applicantMissed(ctx, tx, t.app, t.step, t.refusal, t.due, now)
			}
			if err != nil {
				return err
			}
		}
		fired = len(timers)
		return nil
	})
	return fired, err
}

// resume sends a waiting application on.
func (e *Engine) resume(ctx context.Context, tx pgx.Tx, id uuid.UUID, due, now time.Time) error {
	tag, err := tx.Exec(ctx, `UPDATE application SET status = 'submitted', updated_at = $2 WHERE id = $1 AND status = 'waiting'`, id, now)
	if err != nil || tag.RowsAffected() == 0 {
		return err // withdrawn or cancelled meanwhile: nothing to resume
	}
	if err := addStep(ctx, tx, id, step{Name: "resumed", Actor: "system", Start: due, End: now, Outcome: "ok"}); err != nil {
		return err
	}
	return e.queue(ctx, tx, id)
}

// escalate handles an officer's task whose deadline passed: it goes back to
// the queue of the escalation role (or its own), unclaimed, and the
// supervisors are told.
func (e *Engine) escalate(ctx context.Context, tx pgx.Tx, taskID uuid.UUID, now time.Time) error {
	var app uuid.UUID
	var agency, role, claimedBy string
	var escalateTo *string
	err := tx.QueryRow(ctx, `
		UPDATE task t SET status = 'open', claimed_by = NULL, claimed_at = NULL, escalated_at = $2,
			role = coalesce(t.escalate_to, t.role)
		FROM task old WHERE t.id = $1 AND old.id = t.id AND t.status IN ('open', 'claimed')
		RETURNING t.application_id, t.agency, t.role, coalesce(old.claimed_by, ''), old.escalate_to`, taskID, now).
		Scan(&app, &agency, &role, &claimedBy, &escalateTo)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // decided or cancelled meanwhile
	}
	if err != nil {
		return fmt.Errorf("escalate task %s: %w", taskID, err)
	}
	detail := map[string]any{"task_id": taskID, "role": role}
	if claimedBy != "" {
		detail["released_from"] = claimedBy
	}
	if err := addStep(ctx, tx, app, step{Name: "review.escalated", Actor: "system", Start: now, End: now, Outcome: "overdue", Detail: detail}); err != nil {
		return err
	}
	e.metrics.escalated.WithLabelValues(agency).Inc()
	return outbox.Emit(ctx, tx, now, "notify.officer.escalation", taskID.String(), map[string]any{
		"task_id": taskID, "application_id": app, "agency": agency, "role": role, "previously_claimed_by": claimedBy,
	})
}

// queue enqueues a run of the application's flow within tx.
func (e *Engine) queue(ctx context.Context, tx pgx.Tx, id uuid.UUID) error {
	if err := e.enqueue(ctx, tx, id, "", 0); err != nil {
		return fmt.Errorf("queue application: %w", err)
	}
	return nil
}
