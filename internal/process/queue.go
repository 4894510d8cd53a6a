package process

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/ortaq/ortaq/internal/pg"
)

const enqueueVersion = `INSERT INTO process_run (application_id, run_at, service_id, service_version) VALUES ($1, $2, $3, $4)
	ON CONFLICT (application_id) DO UPDATE SET run_at = excluded.run_at, attempt = 0`

// enqueue queues a run of the application in tx; the service version,
// when the caller knows it, spares the run a read.
func (e *Engine) enqueue(ctx context.Context, tx pgx.Tx, id uuid.UUID, serviceID string, version int) error {
	var err error
	if serviceID == "" {
		_, err = tx.Exec(ctx, `INSERT INTO process_run (application_id, run_at, service_id, service_version)
			SELECT id, $2, service_id, service_version FROM application WHERE id = $1
			ON CONFLICT (application_id) DO UPDATE SET run_at = excluded.run_at, attempt = 0`, id, e.cfg.Clock.Now())
	} else {
		_, err = tx.Exec(ctx, enqueueVersion, id, e.cfg.Clock.Now(), serviceID, version)
	}
	if err != nil {
		return fmt.Errorf("queue application: %w", err)
	}
	return nil
}

// queueRun adds the queueing of a run of the application to a batch.
func (e *Engine) queueRun(b *pgx.Batch, id uuid.UUID, serviceID string, version int) {
	b.Queue(enqueueVersion, id, e.cfg.Clock.Now(), serviceID, version)
}

// inTxWaking runs fn in a transaction and, once it committed, wakes an idle
// worker of this node for the run fn may have queued (other nodes find it
// at their next poll).
func (e *Engine) inTxWaking(ctx context.Context, fn func(pgx.Tx) error) error {
	if err := pg.InTx(ctx, e.pool, fn); err != nil {
		return err
	}
	e.wakeWorkers()
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

// dispatch hands a run this node has just queued to its own workers, who
// take it by its application id. A queue scan walks the run index from its
// oldest entry, past every run done since the last vacuum, which under
// load cost more than the run itself; a lookup by id does not. When the
// hand-off is full the run waits for a scan, as other nodes' runs do.
func (e *Engine) dispatch(id uuid.UUID) {
	select {
	case e.due <- id:
	default:
		e.wakeWorkers()
	}
}

// scanDue says whether it is this worker's turn to scan the queue: once
// every PollInterval on this node. Busy, it keeps runs queued elsewhere
// (other nodes, decisions, timers, retries, hand-offs that did not fit)
// from being starved by a stream of submissions; idle, one worker scans
// instead of all of them.
func (e *Engine) scanDue() bool {
	last, now := e.lastScan.Load(), time.Now().UnixNano()
	return now-last >= int64(e.cfg.PollInterval) && e.lastScan.CompareAndSwap(last, now)
}

// work takes due runs until Stop: a run under way finishes (or reaches
// its timeout) before the worker ends.
func (e *Engine) work(ctx context.Context) {
	defer e.workers.Done()
	idle := time.NewTimer(e.cfg.PollInterval)
	defer idle.Stop()
	var next uuid.UUID // a run handed off by this node
	scan := true       // runs may be waiting from before the start
	for {
		select {
		case <-e.stopping:
			return
		default:
		}
		if next == uuid.Nil {
			select {
			case next = <-e.due:
			default:
			}
		}
		if !scan {
			scan = e.scanDue()
		}
		if scan {
			found, err := e.runNext(ctx, uuid.Nil)
			if err != nil {
				e.log.Error("run queue", "error", err)
			}
			if found {
				// There may be more: another idle worker looks too.
				e.wakeWorkers()
			}
			// A scan walks the queue's index; hand-offs come first.
			scan = found && next == uuid.Nil && len(e.due) == 0
			if found || next != uuid.Nil {
				continue
			}
		} else if next != uuid.Nil {
			// Taken by id, or already taken elsewhere.
			if _, err := e.runNext(ctx, next); err != nil {
				e.log.Error("run queue", "error", err)
			}
			next = uuid.Nil
			continue
		}
		idle.Reset(e.cfg.PollInterval)
		select {
		case <-e.stopping:
			return
		case next = <-e.due:
		case <-e.wake:
			scan = true
		case <-idle.C:
			scan = e.scanDue()
		}
	}
}

// runNext takes one due run (the application's, or with uuid.Nil the
// oldest) and works it in one transaction. The row lock is the lease: a
// node that dies loses its transaction, and the run is due again for every
// other node at once.
func (e *Engine) runNext(ctx context.Context, application uuid.UUID) (bool, error) {
	// One round trip begins the transaction, takes the due run, locks its
	// application and opens the savepoint the run works in, so that a
	// failure is undone while the run's row stays locked: its attempt and
	// next time are written before any other worker can take it (without
	// that, another worker could run it again at once, past its backoff and
	// its last attempt).
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	const claim = `SELECT r.application_id, r.attempt, r.service_id, r.service_version, ` + applicationColumns + `
		FROM process_run r JOIN application a ON a.id = r.application_id WHERE r.run_at <= $1 `
	const locks = ` FOR UPDATE OF r SKIP LOCKED FOR NO KEY UPDATE OF a`
	if application == uuid.Nil {
		b.Queue(claim+`ORDER BY r.run_at LIMIT 1`+locks, e.cfg.Clock.Now())
	} else {
		b.Queue(claim+`AND r.application_id = $2`+locks, e.cfg.Clock.Now(), application)
	}
	b.Queue(`SAVEPOINT run`)
	br := e.pool.SendBatch(ctx, b)
	tx := br.Tx()
	defer tx.Rollback(context.WithoutCancel(ctx))
	var id uuid.UUID
	var attempt, version int
	var serviceID string
	var app queuedApplication
	_, err := br.Exec()
	if err == nil {
		err = br.QueryRow().Scan(append([]any{&id, &attempt, &serviceID, &version}, app.dest()...)...)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
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
	err = e.runQueued(runCtx, tx, id, &app, attempt, serviceID, version, &f)
	if err == nil {
		return true, nil
	}
	var stop *stopError
	limit := e.cfg.MaxAttempts
	if f.plan != nil && f.failedAt >= 0 && f.failedAt < len(f.plan.Steps) && f.plan.Steps[f.failedAt].Step.Attempts > 0 {
		limit = f.plan.Steps[f.failedAt].Step.Attempts
	}
	final := errors.As(err, &stop) || attempt >= limit
	bookCtx := context.WithoutCancel(ctx)
	marked, berr := e.bookFailure(bookCtx, tx, id, f.failedStep(), attempt, limit, final, err)
	if berr == nil {
		if marked {
			e.failedMarked(id, f.failedStep(), attempt, err)
		}
		return true, nil
	}
	// The run's transaction is gone (a timeout can close its connection):
	// book the failure in transactions of its own. The row is unlocked
	// now, so the update names the attempt it follows.
	e.log.Warn("booking a failed run in its own transaction", "application_id", id, "error", berr)
	tx.Rollback(bookCtx)
	if !errors.As(err, &stop) {
		e.recordAttempt(ctx, id, f.failedStep(), attempt, limit, err)
	}
	if final {
		e.markFailed(ctx, id, f.failedStep(), attempt, err)
		_, derr := e.pool.Exec(bookCtx, `DELETE FROM process_run WHERE application_id = $1 AND attempt = $2`, id, attempt-1)
		return true, derr
	}
	_, uerr := e.pool.Exec(bookCtx, `UPDATE process_run SET run_at = $2, attempt = $3 WHERE application_id = $1 AND attempt = $4`,
		id, e.cfg.Clock.Now().Add(e.backoff(attempt)), attempt, attempt-1)
	return true, uerr
}

// backoff is the wait before the attempt after attempt.
func (e *Engine) backoff(attempt int) time.Duration {
	return min(e.cfg.RetryBase<<min(attempt-1, 20), time.Hour)
}

// bookFailure undoes a failed run (back to its savepoint) and, still
// holding the run's row, records the attempt and either schedules the next
// one or marks the application failed; then commits.
func (e *Engine) bookFailure(ctx context.Context, tx pgx.Tx, id uuid.UUID, stepName string, attempt, limit int, final bool, cause error) (marked bool, err error) {
	if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT run`); err != nil {
		return false, err
	}
	var stop *stopError
	if !errors.As(cause, &stop) {
		if err := e.recordAttemptIn(ctx, tx, id, stepName, attempt, limit, cause); err != nil {
			return false, err
		}
	}
	if final {
		if marked, err = e.markFailedIn(ctx, tx, id, stepName, attempt, cause); err != nil {
			return false, err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM process_run WHERE application_id = $1`, id); err != nil {
			return false, err
		}
	} else if _, err := tx.Exec(ctx, `UPDATE process_run SET run_at = $2, attempt = $3 WHERE application_id = $1`,
		id, e.cfg.Clock.Now().Add(e.backoff(attempt)), attempt); err != nil {
		return false, err
	}
	return marked, tx.Commit(ctx)
}

func (e *Engine) runQueued(ctx context.Context, tx pgx.Tx, id uuid.UUID, app *queuedApplication, attempt int, serviceID string, version int, f *flowRun) error {
	def, err := e.services.Version(ctx, serviceID, version)
	if err != nil {
		return fmt.Errorf("load service %s v%d: %w", serviceID, version, err)
	}
	plan, err := e.services.Plan(ctx, serviceID, version)
	if err != nil {
		return fmt.Errorf("load plan of %s v%d: %w", serviceID, version, err)
	}
	return e.runInTx(ctx, tx, id, app, attempt, def, plan, f, func(b *pgx.Batch) {
		b.Queue(`DELETE FROM process_run WHERE application_id = $1`, id)
	})
}

// stopError ends an application's run for good, for an operator: no other
// attempt would do better (a missing consent, a corrupt row).
type stopError struct{ err error }

func (s *stopError) Error() string { return s.err.Error() }
func (s *stopError) Unwrap() error { return s.err }

// stop marks err as final.
func stop(err error) error { return &stopError{err} }
