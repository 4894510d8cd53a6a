package process

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/consent"
	"github.com/ortaq/ortaq/internal/document"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/outbox"
	"github.com/ortaq/ortaq/internal/pg"
	"github.com/ortaq/ortaq/internal/registry"
	"github.com/ortaq/ortaq/internal/service"
	"github.com/ortaq/ortaq/internal/servicedef"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the engine's part of the database.
func Schema() pg.Schema { return pg.NewSchema("process", migrations) }

// Services is what the engine needs of the service catalogue.
type Services interface {
	Current(ctx context.Context, id string) (service.Definition, error)
	Version(ctx context.Context, id string, version int) (service.Definition, error)
	Plan(ctx context.Context, id string, version int) (*servicedef.Plan, error)
}

// PersonReader reads a person (registry.Store.Person: the population
// record with the address of the addresses registry), auditing each record
// read in tx. It must use only tx: a run holds one pooled connection and
// never waits for another.
type PersonReader interface {
	Person(ctx context.Context, tx pgx.Tx, id iin.IIN, a registry.Access) (registry.Person, bool, error)
}

// RecordReader reads the platform's declarative registries
// (internal/registry), auditing each record read in tx and using only tx.
type RecordReader interface {
	Get(ctx context.Context, tx pgx.Tx, registry, key string, asOf *time.Time, a registry.Access) (registry.Record, bool, error)
	Search(ctx context.Context, tx pgx.Tx, registry string, q registry.Query, a registry.Access) ([]registry.Record, string, error)
}

// ConsentChecker checks, in tx, that a person consented to a use of their
// data, recording the use (internal/consent).
type ConsentChecker interface {
	Check(ctx context.Context, tx pgx.Tx, n consent.Need) (consent.Basis, error)
}

// DocumentIssuer issues a signed document within tx, at most once per
// source, using only tx.
type DocumentIssuer interface {
	Issue(ctx context.Context, tx pgx.Tx, spec document.Spec) (document.Document, error)
}

// Config tunes the engine. Zero values take the documented defaults.
type Config struct {
	// Workers is how many jobs this node runs at once. 0 makes the node submit
	// only, leaving the work to other nodes. Default 0; serve sets it.
	Workers int
	// JobTimeout bounds one run of a step. Default 20s.
	JobTimeout time.Duration
	// PollInterval is how often an idle worker looks for runs that other
	// nodes queued (runs queued on its own node wake it at once). Default
	// 50ms.
	PollInterval time.Duration
	// MaxAttempts is how often a failing step is tried before the application
	// is marked failed for an operator, unless the step sets its own.
	// Default 10.
	MaxAttempts int
	// Calendar counts deadlines in working days; default: Monday to Friday
	// with no holidays.
	Calendar WorkingDays
	// RetryBase is the first retry's delay; each further one doubles, up to
	// an hour. Default 1s.
	RetryBase time.Duration
	// TimerInterval is how often a working node fires due timers. Default 1s.
	TimerInterval time.Duration
	// Signatures verifies applicants' signatures for sign steps; without
	// one, a signature sent is refused with an internal error.
	Signatures SignatureVerifier
	// Registries reads data sources of declarative registries (every
	// registry but the population, whose data sources read a person through
	// PersonReader).
	Registries RecordReader
	// Consents checks another person's consent for data sources that rest
	// on consent (internal/consent's ledger).
	Consents ConsentChecker
	// Exchange reads exchange services for data sources that name one;
	// without it such a read fails (and is retried).
	Exchange ExchangeReader
	Clock    clock.Clock // default clock.Real
	Logger   *slog.Logger
	Metrics  prometheus.Registerer // optional
}

// WorkingDays counts working days on the platform's calendar.
type WorkingDays interface {
	AddWorkingDays(ctx context.Context, t time.Time, n int) (time.Time, error)
}

// Engine runs applications.
type Engine struct {
	cfg      Config
	pool     *pgxpool.Pool
	services Services
	people   PersonReader
	docs     DocumentIssuer
	log      *slog.Logger
	metrics  metrics

	stopTimers context.CancelFunc
	timersDone chan struct{}

	// the run queue: due hands this node's workers the runs it queued, by
	// application id; wake rouses an idle worker to scan the queue;
	// lastScan (Unix ns) spaces the scans of busy workers; stopping ends
	// the loops
	due      chan uuid.UUID
	wake     chan struct{}
	lastScan atomic.Int64
	stopping chan struct{}
	workers  sync.WaitGroup
}

// New builds an engine; call Start to begin working.
func New(cfg Config, pool *pgxpool.Pool, services Services, people PersonReader, docs DocumentIssuer) (*Engine, error) {
	if cfg.JobTimeout == 0 {
		cfg.JobTimeout = 20 * time.Second
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.MaxAttempts > servicedef.MaxAttempts {
		return nil, fmt.Errorf("process: MaxAttempts (%d) must not exceed %d", cfg.MaxAttempts, servicedef.MaxAttempts)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Calendar == nil {
		cfg.Calendar = weekdays{}
	}
	if cfg.RetryBase == 0 {
		cfg.RetryBase = time.Second
	}
	if cfg.TimerInterval == 0 {
		cfg.TimerInterval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	e := &Engine{cfg: cfg, pool: pool, services: services, people: people, docs: docs, log: cfg.Logger, wake: make(chan struct{}, 1),
		due: make(chan uuid.UUID, 8192)}
	e.metrics = newMetrics(cfg.Metrics)

	return e, nil
}

// Start begins working jobs (when Workers > 0).
func (e *Engine) Start(ctx context.Context) error {
	if e.cfg.Workers == 0 {
		return nil
	}
	e.stopping = make(chan struct{})
	for range e.cfg.Workers {
		e.workers.Add(1)
		go e.work(context.WithoutCancel(ctx))
	}
	timers, stop := context.WithCancel(context.WithoutCancel(ctx))
	e.stopTimers = stop
	e.timersDone = make(chan struct{})
	go e.fireTimersEvery(timers, e.cfg.TimerInterval)
	return nil
}

// Stop lets running steps finish, then stops. Unfinished steps stay queued
// for the next start or another node.
func (e *Engine) Stop(ctx context.Context) error {
	if e.cfg.Workers == 0 {
		return nil
	}
	if e.stopTimers != nil {
		e.stopTimers()
		<-e.timersDone
	}
	close(e.stopping)
	done := make(chan struct{})
	go func() { e.workers.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Status of an application.
const (
	StatusSubmitted = "submitted" // queued or being worked automatically
	StatusInReview  = "in_review" // an officer's task is open
	StatusReturned  = "returned"  // waiting for the citizen's correction
	StatusWaiting   = "waiting"   // paused until a timer fires
	// paused for the applicant to pay a fee or to sign
	StatusAwaitingPayment   = "awaiting_payment"
	StatusAwaitingSignature = "awaiting_signature"
	StatusCompleted         = "completed"
	StatusRefused           = "refused"
	StatusFailed            = "failed" // a step gave up after its last attempt
	StatusWithdrawn         = "withdrawn"
	StatusCancelled         = "cancelled"
)

// Final reports whether status ends an application.
func Final(status string) bool {
	switch status {
	case StatusCompleted, StatusRefused, StatusFailed, StatusWithdrawn, StatusCancelled:
		return true
	}
	return false
}

// queuedApplication is what a run reads of its application, with the row
// locked (FOR NO KEY UPDATE) in the run's transaction.
type queuedApplication struct {
	applicant string
	status    string
	submitted time.Time
	inputs    map[string]any
	cursor    int
	data      map[string]any
	review    map[string]any
	document  *uuid.UUID
}

// applicationColumns are queuedApplication's columns of table application.
const applicationColumns = `a.applicant_iin, a.status, a.submitted_at, a.inputs, a.cursor, a.data, a.review, a.document_id`

func (a *queuedApplication) dest() []any {
	return []any{&a.applicant, &a.status, &a.submitted, &a.inputs, &a.cursor, &a.data, &a.review, &a.document}
}

// runInTx works the locked application app in tx, and commits; complete
// adds what marks its run done to the batch of the run's last writes.
// Those writes (state, timeline, events, the run's end) go in one round
// trip: a statement of its own costs the database more than its row.
func (e *Engine) runInTx(ctx context.Context, tx pgx.Tx, id uuid.UUID, app *queuedApplication, attempt int, def service.Definition, plan *servicedef.Plan, f *flowRun, complete func(*pgx.Batch)) error {
	b := &pgx.Batch{}
	if app.status != StatusSubmitted {
		// Paused, decided or withdrawn since this run was queued: nothing to
		// do.
		complete(b)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("complete run: %w", err)
		}
		return tx.Commit(ctx)
	}
	applicant, err := iin.Parse(app.applicant)
	if err != nil {
		return stop(fmt.Errorf("stored applicant IIN is invalid: %w", err))
	}
	*f = flowRun{e: e, tx: tx, id: id, def: def, plan: plan, applicant: applicant, attempt: attempt,
		result: app.document, failedAt: stepPrepare, writes: b}
	out, err := f.run(ctx, app.inputs, app.cursor, app.data, app.review)
	if err != nil {
		return err
	}
	now := e.cfg.Clock.Now()
	steps := f.steps
	if Final(out.status) {
		steps = append(steps, step{Name: out.status, Actor: "system", Start: now, End: now, Outcome: "ok", Attempt: attempt})
		b.Queue(`UPDATE application SET status = $2, refusal_code = $3, document_id = $4, decided_at = $5, updated_at = $5, cursor = -1,
				timeline = timeline || $6::jsonb WHERE id = $1`,
			id, out.status, out.refusal, f.result, now, timelineOf(steps...))
	} else {
		b.Queue(`UPDATE application SET status = $2, cursor = $3, data = $4, document_id = $5, updated_at = $6,
				timeline = timeline || $7::jsonb WHERE id = $1`,
			id, out.status, out.cursor, f.data, f.result, now, timelineOf(steps...))
	}
	if Final(out.status) {
		err = outbox.Queue(b, now, "process.application.decided", id.String(), decided(id, def.ID, out.status, out.refusal, f.result))
	} else {
		err = outbox.Queue(b, now, "process.application.paused", id.String(), map[string]any{
			"application_id": id, "service_id": def.ID, "status": out.status,
		})
	}
	if err != nil {
		return err
	}
	complete(b)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("record state, timeline and events: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if Final(out.status) {
		e.metrics.decided.WithLabelValues(def.ID, out.status).Inc()
		e.metrics.duration.WithLabelValues(def.ID).Observe(now.Sub(app.submitted).Seconds())
	}
	return nil
}

// decided is the payload of process.application.decided.
func decided(id uuid.UUID, serviceID, status string, refusal *string, documentID *uuid.UUID) map[string]any {
	return map[string]any{
		"application_id": id, "service_id": serviceID, "status": status,
		"refusal_code": refusal, "document_id": documentID,
	}
}

func emitDecided(ctx context.Context, tx pgx.Tx, now time.Time, id uuid.UUID, serviceID, status string, refusal *string, documentID *uuid.UUID) error {
	return outbox.Emit(ctx, tx, now, "process.application.decided", id.String(), decided(id, serviceID, status, refusal, documentID))
}

// recordAttempt writes a failed attempt into the timeline, in its own
// transaction since the run's was rolled back: operators see every failure
// with its error and attempt; citizens see only that a step is retried.
func (e *Engine) recordAttempt(ctx context.Context, id uuid.UUID, stepName string, attempt, limit int, cause error) {
	ctx = context.WithoutCancel(ctx)
	err := pg.InTx(ctx, e.pool, func(tx pgx.Tx) error { return e.recordAttemptIn(ctx, tx, id, stepName, attempt, limit, cause) })
	if err != nil {
		e.log.Error("could not record a failed attempt", "application_id", id, "error", err)
	}
}

// recordAttemptIn writes a failed attempt into the timeline in tx.
func (e *Engine) recordAttemptIn(ctx context.Context, tx pgx.Tx, id uuid.UUID, stepName string, attempt, limit int, cause error) error {
	now := e.cfg.Clock.Now()
	e.log.Warn("step failed", "application_id", id, "step", stepName, "attempt", attempt, "of", limit, "error", cause)
	return addStep(ctx, tx, id, step{Name: stepName, Actor: "system", Start: now, End: now, Outcome: "error",
		Attempt: attempt, Detail: map[string]any{"error": cause.Error(), "attempts_allowed": limit}})
}

// markFailed records that an application's flow gave up after its last
// attempt, so that it shows as failed for operators instead of waiting
// forever.
func (e *Engine) markFailed(ctx context.Context, id uuid.UUID, stepName string, attempt int, cause error) {
	ctx = context.WithoutCancel(ctx)
	var marked bool
	err := pg.InTx(ctx, e.pool, func(tx pgx.Tx) (err error) {
		marked, err = e.markFailedIn(ctx, tx, id, stepName, attempt, cause)
		return err
	})
	if err != nil {
		e.log.Error("could not mark application failed", "application_id", id, "error", err)
		return
	}
	if marked {
		e.failedMarked(id, stepName, attempt, cause)
	}
}

// markFailedIn marks the application failed in tx, if it is still being
// worked on; marked says whether it was (call failedMarked after commit).
func (e *Engine) markFailedIn(ctx context.Context, tx pgx.Tx, id uuid.UUID, stepName string, attempt int, cause error) (marked bool, err error) {
	now := e.cfg.Clock.Now()
	tag, err := tx.Exec(ctx, `UPDATE application SET status = 'failed', decided_at = $2, updated_at = $2 WHERE id = $1 AND status = 'submitted'`, id, now)
	if err != nil || tag.RowsAffected() == 0 {
		return false, err
	}
	// The cause is for operators; the citizen sees only "failed".
	if err := addStep(ctx, tx, id, step{Name: StatusFailed, Actor: "system", Start: now, End: now, Outcome: "error",
		Attempt: attempt, Detail: map[string]any{"error": cause.Error(), "step": stepName}}); err != nil {
		return false, err
	}
	return true, outbox.Emit(ctx, tx, now, "process.application.decided", id.String(), map[string]any{"application_id": id, "status": StatusFailed})
}

func (e *Engine) failedMarked(id uuid.UUID, stepName string, attempt int, cause error) {
	e.metrics.decided.WithLabelValues("", StatusFailed).Inc()
	e.log.Error("application failed after its last attempt", "application_id", id, "step", stepName, "attempt", attempt, "error", cause)
}

type step struct {
	Name    string
	Actor   string
	Start   time.Time
	End     time.Time
	Outcome string
	Attempt int
	Detail  map[string]any
}

// storedStep is a step as the application's timeline (a JSON array in its
// row) keeps it.
type storedStep struct {
	Step       string         `json:"step"`
	Actor      string         `json:"actor"`
	StartedAt  time.Time      `json:"started_at"`
	FinishedAt time.Time      `json:"finished_at"`
	Outcome    string         `json:"outcome"`
	Attempt    int            `json:"attempt"`
	Detail     map[string]any `json:"detail"`
}

// timelineOf is steps as JSON to append to a timeline: a first attempt
// unless a step says otherwise, an empty detail rather than none, times in
// UTC to the microsecond (as PostgreSQL keeps times).
func timelineOf(steps ...step) []byte {
	out := make([]storedStep, len(steps))
	for i, s := range steps {
		if s.Attempt == 0 {
			s.Attempt = 1
		}
		if s.Detail == nil {
			s.Detail = map[string]any{}
		}
		out[i] = storedStep{Step: s.Name, Actor: s.Actor, StartedAt: s.Start.UTC().Truncate(time.Microsecond),
			FinishedAt: s.End.UTC().Truncate(time.Microsecond), Outcome: s.Outcome, Attempt: s.Attempt, Detail: s.Detail}
	}
	b, err := json.Marshal(out)
	if err != nil {
		// Details are built from JSON-safe values; a step that cannot be
		// encoded is recorded without its detail rather than lost.
		for i := range out {
			out[i].Detail = map[string]any{"detail_error": err.Error()}
		}
		b, _ = json.Marshal(out)
	}
	return b
}

const appendSteps = `UPDATE application SET timeline = timeline || $2::jsonb WHERE id = $1`

func addStep(ctx context.Context, tx pgx.Tx, id uuid.UUID, s step) error {
	if _, err := tx.Exec(ctx, appendSteps, id, timelineOf(s)); err != nil {
		return fmt.Errorf("record step %s: %w", s.Name, err)
	}
	return nil
}

func queueStep(b *pgx.Batch, id uuid.UUID, s step) {
	queueSteps(b, id, []step{s})
}

// queueSteps appends steps, in order, to the application's timeline.
func queueSteps(b *pgx.Batch, id uuid.UUID, steps []step) {
	b.Queue(appendSteps, id, timelineOf(steps...))
}

type metrics struct {
	submitted *prometheus.CounterVec
	decided   *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	escalated *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		submitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ortaq_applications_submitted_total", Help: "Applications submitted, by service.",
		}, []string{"service"}),
		decided: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ortaq_applications_decided_total", Help: "Applications decided, by service and outcome.",
		}, []string{"service", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ortaq_application_delivery_seconds",
			Help:    "Time from submission to decision, by service (the 5-minute target is 300).",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 3600},
		}, []string{"service"}),
		escalated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ortaq_tasks_escalated_total", Help: "Officers' tasks escalated after their deadline, by agency.",
		}, []string{"agency"}),
	}
	if reg != nil {
		reg.MustRegister(m.submitted, m.decided, m.duration, m.escalated)
	}
	return m
}
