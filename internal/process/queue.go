package process

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// enqueue queues a run of the application in tx; the service version,
// when the caller knows it, spares the run a read.
func (e *Engine) enqueue(ctx context.Context, tx pgx.Tx, id uuid.UUID, serviceID string, version int) error {
	var err error
	if serviceID == "" {
		_, err = tx.Exec(ctx, `INSERT INTO process_run (application_id, run_at, service_id, service_version)
			SELECT id, $2, service_id, service_version FROM application WHERE id = $1
			ON CONFLICT (application_id) DO UPDATE SET run_at = excluded.run_at, attempt = 0`, id, e.cfg.Clock.Now())
	} else {
		_, err = tx.Exec(ctx, `INSERT INTO process_run (application_id, run_at, service_id, service_version) VALUES ($1, $2, $3, $4)
			ON CONFLICT (application_id) DO UPDATE SET run_at = excluded.run_at, attempt = 0`, id, e.cfg.Clock.Now(), serviceID, version)
	}
	if err != nil {
		return fmt.Errorf("queue application: %w", err)
	}
	return nil
}

// wakeWorkers tells an idle worker of this node that a run is due (after
// the transaction that queued it committed).
func (e *Engine) wakeWorkers() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// work takes due runs until Stop: a run under way finishes (or reaches
// its timeout) before the worker ends.
func (e *Engine) work(ctx context.Context) {
	defer e.workers.Done()
	idle := time.NewTimer(e.cfg.PollInterval)
	defer idle.Stop()
	for {
		select {
		case <-e.stopping:
			return
		default:
		}
		ran, err := e.runNext(ctx)
		if err != nil {
			e.log.Error("run queue", "error", err)
		}
		if ran {
			continue
		}
		idle.Reset(e.cfg.PollInterval)
		select {
		case <-e.stopping:
			return
		case <-e.wake:
		case <-idle.C:
		}
	}
}

// runNext takes one due run and works it in one transaction. The row lock
// is the lease: a node that dies loses its transaction, and the run is due
// again for every other node at once.
func (e *Engine) runNext(ctx context.Context) (bool, error) {
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var id uuid.UUID
	var attempt, version int
	var serviceID string
	err = tx.QueryRow(ctx, `SELECT application_id, attempt, service_id, service_version FROM process_run
		WHERE run_at <= $1 ORDER BY run_at LIMIT 1 FOR UPDATE SKIP LOCKED`, e.cfg.Clock.Now()).Scan(&id, &attempt, &serviceID, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	attempt++
	runCtx, cancel := context.WithTimeout(ctx, e.cfg.JobTimeout)
	defer cancel()
	var f flowRun
	err = e.runQueued(runCtx, tx, id, attempt, serviceID, version, &f)
	if err == nil {
		return true, nil
	}
	tx.Rollback(context.WithoutCancel(ctx))
	var stop *stopError
	limit := e.cfg.MaxAttempts
	if f.plan != nil && f.failedAt >= 0 && f.failedAt < len(f.plan.Steps) && f.plan.Steps[f.failedAt].Step.Attempts > 0 {
		limit = f.plan.Steps[f.failedAt].Step.Attempts
	}
	if !errors.As(err, &stop) {
		e.recordAttempt(ctx, id, f.failedStep(), attempt, limit, err)
	}
	if errors.As(err, &stop) || attempt >= limit {
		e.markFailed(ctx, id, f.failedStep(), attempt, err)
		_, derr := e.pool.Exec(context.WithoutCancel(ctx), `DELETE FROM process_run WHERE application_id = $1`, id)
		return true, derr
	}
	delay := min(e.cfg.RetryBase<<min(attempt-1, 20), time.Hour)
	_, uerr := e.pool.Exec(context.WithoutCancel(ctx), `UPDATE process_run SET run_at = $2, attempt = $3 WHERE application_id = $1`,
		id, e.cfg.Clock.Now().Add(delay), attempt)
	return true, uerr
}

func (e *Engine) runQueued(ctx context.Context, tx pgx.Tx, id uuid.UUID, attempt int, serviceID string, version int, f *flowRun) error {
	def, err := e.services.Version(ctx, serviceID, version)
	if err != nil {
		return fmt.Errorf("load service %s v%d: %w", serviceID, version, err)
	}
	plan, err := e.services.Plan(ctx, serviceID, version)
	if err != nil {
		return fmt.Errorf("load plan of %s v%d: %w", serviceID, version, err)
	}
	return e.runInTx(ctx, tx, id, attempt, def, plan, f, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM process_run WHERE application_id = $1`, id)
		return err
	})
}

// stopError ends an application's run for good, for an operator: no other
// attempt would do better (a missing consent, a corrupt row).
type stopError struct{ err error }

func (s *stopError) Error() string { return s.err.Error() }
func (s *stopError) Unwrap() error { return s.err }

// stop marks err as final.
func stop(err error) error { return &stopError{err} }
