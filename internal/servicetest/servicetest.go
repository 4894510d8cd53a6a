// Package servicetest runs the test cases a service definition declares
// through the real platform: a private PostgreSQL cluster, a fresh database
// per case with the case's registry fixtures, the definition published, the
// application submitted to the engine and worked by it, and the outcome,
// refusal and document compared with the expectation. Review steps are
// decided through the engine's officer actions with the case's decisions;
// wait steps jump the case's clock to their timer.
//
// May import: internal/app, internal/demo, internal/pg, internal/registry,
// internal/process, internal/servicedef, internal/clock, internal/identity.
package servicetest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/demo"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/pg"
	"github.com/ortaq/ortaq/internal/process"
	"github.com/ortaq/ortaq/internal/registry"
	"github.com/ortaq/ortaq/internal/servicedef"
)

const templateDB = "servicetest_template"

// Runner owns a private cluster for test runs.
type Runner struct {
	cluster *pg.Cluster
	dir     string
	n       int
	log     *slog.Logger
}

// Start starts a throw-away cluster and migrates a template database.
func Start(ctx context.Context, pgBin string) (*Runner, error) {
	bin, err := pg.FindBinaries(pgBin)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(pg.ScratchDir(""), "ortaq-servicetest-")
	if err != nil {
		return nil, err
	}
	quiet := slog.New(slog.DiscardHandler)
	r := &Runner{dir: dir, log: quiet}
	if r.cluster, err = pg.StartCluster(ctx, pg.ClusterConfig{Dir: dir, BinDir: bin, Logger: quiet}); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := r.cluster.EnsureDatabase(ctx, templateDB); err != nil {
		r.Close()
		return nil, err
	}
	pool, err := pg.Open(ctx, r.cluster.ConnString(templateDB), 4)
	if err != nil {
		r.Close()
		return nil, err
	}
	defer pool.Close()
	if err := pg.Migrate(ctx, pool, app.Schemas(), quiet); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Close stops the cluster and removes its files.
func (r *Runner) Close() {
	r.cluster.Stop(context.Background())
	os.RemoveAll(r.dir)
}

// Run runs every test case of a compiled definition.
func (r *Runner) Run(ctx context.Context, src []byte, plan *servicedef.Plan) []servicedef.TestResult {
	var results []servicedef.TestResult
	for _, tc := range plan.File.Tests {
		res := servicedef.TestResult{Name: tc.Name}
		outcome, refusal, doc, err := r.runCase(ctx, src, plan, tc)
		if err != nil {
			res.Problems = []string{err.Error()}
		} else {
			res.Outcome, res.Refusal = outcome, refusal
			res.Problems = servicedef.Check(tc, outcome, refusal, doc)
		}
		res.Passed = len(res.Problems) == 0
		results = append(results, res)
	}
	return results
}

func (r *Runner) runCase(ctx context.Context, src []byte, plan *servicedef.Plan, tc servicedef.TestCase) (outcome, refusal string, doc map[string]any, err error) {
	serviceID := plan.File.ID
	r.n++
	name := fmt.Sprintf("case_%d", r.n)
	admin, err := pgx.Connect(ctx, r.cluster.ConnString("postgres"))
	if err != nil {
		return "", "", nil, err
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s STRATEGY FILE_COPY", name, templateDB)); err != nil {
		return "", "", nil, err
	}
	defer admin.Exec(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)")
	pool, err := pg.Open(ctx, r.cluster.ConnString(name), 8)
	if err != nil {
		return "", "", nil, err
	}
	defer pool.Close()
	clk := clock.NewFake(tc.Clock(time.Now()))
	p, err := app.Build(app.Config{Workers: 2, JobTimeout: 5 * time.Second, RescueAfter: 10 * time.Second, Clock: clk}, pool, r.log)
	if err != nil {
		return "", "", nil, err
	}
	for _, a := range demo.Agencies() {
		a.Roles = demo.Roles()[a.ID]
		if err := p.Agencies.Save(ctx, a); err != nil {
			return "", "", nil, err
		}
		if _, err := p.Documents.EnsureKey(ctx, a.ID); err != nil {
			return "", "", nil, err
		}
	}
	persons, err := fixtures(tc)
	if err != nil {
		return "", "", nil, err
	}
	if len(persons) > 0 {
		if _, err := p.Population.Import(ctx, persons); err != nil {
			return "", "", nil, fmt.Errorf("load registry fixtures: %w", err)
		}
	}
	if _, problems, err := p.Services.PublishSource(ctx, src); err != nil || len(problems) > 0 {
		return "", "", nil, fmt.Errorf("publish: %v %v", err, problems)
	}
	if err := p.Engine.Start(ctx); err != nil {
		return "", "", nil, err
	}
	defer p.Engine.Stop(context.Background())
	inputs, _ := tc.Inputs.Value.(map[string]any)
	app, _, err := p.Engine.Submit(ctx, process.SubmitRequest{ServiceID: serviceID, Inputs: inputs, IdempotencyKey: "servicetest"})
	if err != nil {
		return "", "", nil, fmt.Errorf("submit: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	decided := map[string]bool{}
	for !process.Final(app.Status) && app.Status != process.StatusReturned {
		if time.Now().After(deadline) {
			return "", "", nil, fmt.Errorf("not decided within 30 s (status %s)", app.Status)
		}
		switch app.Status {
		case process.StatusInReview:
			if err := r.decide(ctx, p, app.ID, plan, tc, decided); err != nil {
				return "", "", nil, err
			}
		case process.StatusWaiting:
			// The case's clock jumps to the timer instead of sleeping.
			in, err := p.Engine.Inspect(ctx, app.ID)
			if err != nil {
				return "", "", nil, err
			}
			for _, t := range in.Timers {
				if d := t.DueAt.Sub(clk.Now()); d > 0 {
					clk.Advance(d)
				}
			}
			if _, err := p.Engine.FireTimers(ctx); err != nil {
				return "", "", nil, err
			}
		}
		select {
		case <-ctx.Done():
			return "", "", nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if app, err = p.Engine.Get(ctx, app.ID); err != nil {
			return "", "", nil, err
		}
	}
	doc = map[string]any{}
	if app.DocumentID != nil {
		d, err := p.Documents.Get(ctx, *app.DocumentID)
		if err != nil {
			return "", "", nil, err
		}
		var content process.DocumentContent
		if err := json.Unmarshal(d.Fields, &content); err != nil {
			return "", "", nil, err
		}
		for _, f := range content.Fields {
			doc[f.Name] = f.Value
		}
	}
	return app.Status, app.RefusalCode, doc, nil
}

// decide works the application's open task as an officer of the task's
// agency and role would, with the decision the case declares.
func (r *Runner) decide(ctx context.Context, p *app.Platform, id uuid.UUID, plan *servicedef.Plan, tc servicedef.TestCase, decided map[string]bool) error {
	in, err := p.Engine.Inspect(ctx, id)
	if err != nil {
		return err
	}
	for _, t := range in.Tasks {
		if t.Status != process.TaskOpen {
			continue
		}
		given, ok := tc.Decisions[t.StepID]
		if !ok {
			return fmt.Errorf("step %q needs an officer's decision: add decisions: {%s: ...}", t.StepID, t.StepID)
		}
		if decided[t.StepID] {
			return fmt.Errorf("step %q came up for review twice", t.StepID)
		}
		decided[t.StepID] = true
		officer := identity.Principal{Kind: identity.Officer, Subject: "servicetest", Agency: t.Agency, Roles: []string{t.Role}}
		if _, err := p.Engine.Claim(ctx, officer, t.ID, ""); err != nil {
			return fmt.Errorf("claim the task of step %q: %w", t.StepID, err)
		}
		decision, refusal, _ := strings.Cut(given, ":")
		if _, err := p.Engine.Decide(ctx, officer, t.ID, process.DecideRequest{Decision: decision, Refusal: refusal,
			Comment: "servicetest: " + tc.Name}); err != nil {
			return fmt.Errorf("decide step %q: %w", t.StepID, err)
		}
	}
	return nil
}

// fixtures turns a case's population records into registry persons.
func fixtures(tc servicedef.TestCase) ([]registry.Person, error) {
	var out []registry.Person
	for reg, records := range tc.Registry {
		if reg != "population" {
			return nil, fmt.Errorf("registry %q cannot hold fixtures yet", reg)
		}
		for _, rec := range records {
			p, err := registry.PersonFromRecord(rec.Value)
			if err != nil {
				return nil, fmt.Errorf("population fixture at line %d: %w", rec.At.Line, err)
			}
			out = append(out, p)
		}
	}
	return out, nil
}
