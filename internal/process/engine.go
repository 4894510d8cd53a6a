package process

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/document"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/outbox"
	"github.com/ortaq/ortaq/internal/pg"
	"github.com/ortaq/ortaq/internal/refnum"
	"github.com/ortaq/ortaq/internal/registry"
	"github.com/ortaq/ortaq/internal/service"
	"github.com/ortaq/ortaq/internal/servicedef"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the engine's part of the database.
func Schema() pg.Schema { return pg.NewSchema("process", migrations) }

// JobsSchema is River's job tables, which the engine depends on.
func JobsSchema() pg.Schema {
	return pg.Schema{Name: "river", Apply: func(ctx context.Context, pool *pgxpool.Pool) error {
		m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
		if err != nil {
			return err
		}
		_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
		return err
	}}
}

// Services is what the engine needs of the service catalogue.
type Services interface {
	Current(ctx context.Context, id string) (service.Definition, error)
	Version(ctx context.Context, id string, version int) (service.Definition, error)
	Plan(ctx context.Context, id string, version int) (*servicedef.Plan, error)
}

// PersonReader reads the population registry, auditing each read in tx. It
// must use only tx: a run holds one pooled connection and never waits for
// another.
type PersonReader interface {
	Person(ctx context.Context, tx pgx.Tx, id iin.IIN, a registry.Access) (registry.Person, bool, error)
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
	// RescueAfter is how long a job may stay "running" before it is considered
	// lost with a crashed node and run again. Every run is one transaction, so
	// a rescue never repeats an effect. Must exceed JobTimeout. Default 30s.
	RescueAfter time.Duration
	// MaxAttempts is how often a failing step is tried before the application
	// is marked failed for an operator. Default 10.
	MaxAttempts int
	Clock       clock.Clock // default clock.Real
	Logger      *slog.Logger
	Metrics     prometheus.Registerer // optional
}

// Engine runs applications.
type Engine struct {
	cfg      Config
	pool     *pgxpool.Pool
	river    *river.Client[pgx.Tx]
	services Services
	people   PersonReader
	docs     DocumentIssuer
	log      *slog.Logger
	metrics  metrics
}

// New builds an engine; call Start to begin working.
func New(cfg Config, pool *pgxpool.Pool, services Services, people PersonReader, docs DocumentIssuer) (*Engine, error) {
	if cfg.JobTimeout == 0 {
		cfg.JobTimeout = 20 * time.Second
	}
	if cfg.RescueAfter == 0 {
		cfg.RescueAfter = 30 * time.Second
	}
	if cfg.RescueAfter <= cfg.JobTimeout {
		return nil, fmt.Errorf("process: RescueAfter (%s) must exceed JobTimeout (%s)", cfg.RescueAfter, cfg.JobTimeout)
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	e := &Engine{cfg: cfg, pool: pool, services: services, people: people, docs: docs, log: cfg.Logger}
	e.metrics = newMetrics(cfg.Metrics)

	workers := river.NewWorkers()
	river.AddWorker(workers, &runWorker{engine: e})
	rc := &river.Config{
		Workers:              workers,
		JobTimeout:           cfg.JobTimeout,
		RescueStuckJobsAfter: cfg.RescueAfter,
		MaxAttempts:          cfg.MaxAttempts,
		Logger:               cfg.Logger.With("component", "river"),
		FetchCooldown:        20 * time.Millisecond,
		FetchPollInterval:    500 * time.Millisecond,
	}
	if cfg.Workers > 0 {
		rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Workers}}
	}
	client, err := river.NewClient(riverpgxv5.New(pool), rc)
	if err != nil {
		return nil, fmt.Errorf("process: create job client: %w", err)
	}
	e.river = client
	return e, nil
}

// Start begins working jobs (when Workers > 0).
func (e *Engine) Start(ctx context.Context) error {
	if e.cfg.Workers == 0 {
		return nil
	}
	return e.river.Start(ctx)
}

// Stop lets running steps finish, then stops. Unfinished steps stay queued
// for the next start or another node.
func (e *Engine) Stop(ctx context.Context) error {
	if e.cfg.Workers == 0 {
		return nil
	}
	return e.river.Stop(ctx)
}

// RunArgs is the job that runs an application's flow.
type RunArgs struct {
	ApplicationID uuid.UUID `json:"application_id"`
}

// Kind names the job in River's tables.
func (RunArgs) Kind() string { return "process.run_application" }

type runWorker struct {
	river.WorkerDefaults[RunArgs]
	engine *Engine
}

func (w *runWorker) Work(ctx context.Context, job *river.Job[RunArgs]) error {
	err := w.engine.run(ctx, job)
	if err != nil && job.Attempt >= job.MaxAttempts {
		w.engine.markFailed(ctx, job.Args.ApplicationID, job.Attempt, err)
	}
	return err
}

// Status of an application.
const (
	StatusSubmitted = "submitted"
	StatusCompleted = "completed"
	StatusRefused   = "refused"
	StatusFailed    = "failed"
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
	if plan.HasReview() {
		// Human review arrives with officers' task lists.
		return Application{}, false, apierr.New(apierr.ServiceNotAccepting)
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
	now := e.cfg.Clock.Now()
	err = pg.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			INSERT INTO application (id, number, service_id, service_version, applicant_iin, inputs, status,
				idempotency_key, request_hash, submitted_at)
			VALUES ($1, $2, $3, $4, $5, $6, 'submitted', $7, $8, $9)
			ON CONFLICT (applicant_iin, idempotency_key) DO NOTHING`,
			id, refnum.New('A'), def.ID, def.Version, applicant.String(), inputs, req.IdempotencyKey, hash[:], now)
		if err != nil {
			return fmt.Errorf("insert application: %w", err)
		}
		if tag.RowsAffected() == 0 {
			var existing uuid.UUID
			var existingHash []byte
			err := tx.QueryRow(ctx, `SELECT id, request_hash FROM application WHERE applicant_iin = $1 AND idempotency_key = $2`,
				applicant.String(), req.IdempotencyKey).Scan(&existing, &existingHash)
			if err != nil {
				return fmt.Errorf("find earlier submission: %w", err)
			}
			if string(existingHash) != string(hash[:]) {
				return apierr.New(apierr.IdempotencyKeyReused)
			}
			id, replayed = existing, true
			return nil
		}
		if err := addStep(ctx, tx, id, step{Name: "submitted", Actor: "citizen", Start: now, End: now, Outcome: "ok",
			Detail: map[string]any{"request_id": req.RequestID}}); err != nil {
			return err
		}
		if err := outbox.Emit(ctx, tx, now, "process.application.submitted", id.String(),
			map[string]any{"application_id": id, "service_id": def.ID, "service_version": def.Version}); err != nil {
			return err
		}
		if _, err := e.river.InsertTx(ctx, tx, RunArgs{ApplicationID: id}, nil); err != nil {
			return fmt.Errorf("queue application: %w", err)
		}
		return nil
	})
	if err != nil {
		return Application{}, false, err
	}
	if !replayed {
		e.metrics.submitted.WithLabelValues(def.ID).Inc()
	}
	app, err = e.Get(ctx, id)
	return app, replayed, err
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

// run executes an application's flow in one transaction.
func (e *Engine) run(ctx context.Context, job *river.Job[RunArgs]) error {
	// The service version is read before the transaction: a run must never
	// wait for a second pooled connection while it holds one.
	var serviceID string
	var version int
	err := e.pool.QueryRow(ctx, `SELECT service_id, service_version FROM application WHERE id = $1`, job.Args.ApplicationID).
		Scan(&serviceID, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		// Cannot happen: the job is inserted in the application's transaction.
		return river.JobCancel(fmt.Errorf("application %s does not exist", job.Args.ApplicationID))
	}
	if err != nil {
		return fmt.Errorf("read application: %w", err)
	}
	def, err := e.services.Version(ctx, serviceID, version)
	if err != nil {
		return fmt.Errorf("load service %s v%d: %w", serviceID, version, err)
	}
	plan, err := e.services.Plan(ctx, serviceID, version)
	if err != nil {
		return fmt.Errorf("load plan of %s v%d: %w", serviceID, version, err)
	}

	tx, err := e.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))

	var app struct {
		applicant string
		status    string
		submitted time.Time
		inputs    map[string]any
	}
	err = tx.QueryRow(ctx, `SELECT applicant_iin, status, submitted_at, inputs FROM application WHERE id = $1 FOR UPDATE`, job.Args.ApplicationID).
		Scan(&app.applicant, &app.status, &app.submitted, &app.inputs)
	if err != nil {
		return fmt.Errorf("lock application: %w", err)
	}
	if app.status != StatusSubmitted {
		// Decided by an earlier run whose job completion was lost: nothing to redo.
		if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
			return err
		}
		return tx.Commit(ctx)
	}
	applicant, err := iin.Parse(app.applicant)
	if err != nil {
		return river.JobCancel(fmt.Errorf("stored applicant IIN is invalid: %w", err))
	}
	f := &flowRun{e: e, tx: tx, id: job.Args.ApplicationID, def: def, plan: plan, applicant: applicant, attempt: job.Attempt}
	outcome, err := f.run(ctx, app.inputs)
	if err != nil {
		return err
	}
	now := e.cfg.Clock.Now()
	// The timeline and the decision go in one round trip.
	b := &pgx.Batch{}
	for _, s := range append(f.steps, step{Name: outcome.status, Actor: "system", Start: now, End: now, Outcome: "ok", Attempt: job.Attempt}) {
		queueStep(b, job.Args.ApplicationID, s)
	}
	b.Queue(`UPDATE application SET status = $2, refusal_code = $3, document_id = $4, decided_at = $5 WHERE id = $1`,
		job.Args.ApplicationID, outcome.status, outcome.refusal, outcome.documentID, now)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("record timeline and decision: %w", err)
	}
	if err := outbox.Emit(ctx, tx, now, "process.application.decided", job.Args.ApplicationID.String(), map[string]any{
		"application_id": job.Args.ApplicationID, "service_id": def.ID, "status": outcome.status,
		"refusal_code": outcome.refusal, "document_id": outcome.documentID,
	}); err != nil {
		return err
	}
	if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
		return fmt.Errorf("complete job: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit decision: %w", err)
	}
	e.metrics.decided.WithLabelValues(def.ID, outcome.status).Inc()
	e.metrics.duration.WithLabelValues(def.ID).Observe(now.Sub(app.submitted).Seconds())
	return nil
}

// markFailed records that an application's flow gave up after its last
// attempt, so that it shows as failed instead of waiting forever.
func (e *Engine) markFailed(ctx context.Context, id uuid.UUID, attempt int, cause error) {
	ctx = context.WithoutCancel(ctx)
	now := e.cfg.Clock.Now()
	err := pg.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE application SET status = 'failed', decided_at = $2 WHERE id = $1 AND status = 'submitted'`, id, now)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		// The cause is for operators; the citizen sees only "failed".
		if err := addStep(ctx, tx, id, step{Name: StatusFailed, Actor: "system", Start: now, End: now, Outcome: "error",
			Attempt: attempt, Detail: map[string]any{"error": cause.Error()}}); err != nil {
			return err
		}
		return outbox.Emit(ctx, tx, now, "process.application.decided", id.String(), map[string]any{"application_id": id, "status": StatusFailed})
	})
	if err != nil {
		e.log.Error("could not mark application failed", "application_id", id, "error", err)
		return
	}
	e.metrics.decided.WithLabelValues("", StatusFailed).Inc()
	e.log.Error("application failed after its last attempt", "application_id", id, "attempt", attempt, "error", cause)
}

type decision struct {
	status     string
	refusal    *string
	documentID *uuid.UUID
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

const insertStep = `INSERT INTO application_step (application_id, step, actor, started_at, finished_at, outcome, attempt, detail)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

func stepArgs(id uuid.UUID, s step) []any {
	if s.Attempt == 0 {
		s.Attempt = 1
	}
	if s.Detail == nil {
		s.Detail = map[string]any{}
	}
	return []any{id, s.Name, s.Actor, s.Start, s.End, s.Outcome, s.Attempt, s.Detail}
}

func addStep(ctx context.Context, tx pgx.Tx, id uuid.UUID, s step) error {
	if _, err := tx.Exec(ctx, insertStep, stepArgs(id, s)...); err != nil {
		return fmt.Errorf("record step %s: %w", s.Name, err)
	}
	return nil
}

func queueStep(b *pgx.Batch, id uuid.UUID, s step) {
	b.Queue(insertStep, stepArgs(id, s)...)
}

type metrics struct {
	submitted *prometheus.CounterVec
	decided   *prometheus.CounterVec
	duration  *prometheus.HistogramVec
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
	}
	if reg != nil {
		reg.MustRegister(m.submitted, m.decided, m.duration)
	}
	return m
}
