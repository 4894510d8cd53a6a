// Package servicetest runs the test cases a service definition declares
// through the real platform: a private PostgreSQL cluster, a fresh database
// per case with the case's registry fixtures, the definition published, the
// application submitted to the engine and worked by it, and the outcome,
// refusal and document compared with the expectation. Review steps are
// decided through the engine's officer actions with the case's decisions;
// fees are confirmed as a payment gateway would and sign steps signed with a
// demo CA's certificate for the applicant (unpaid and unsigned run the
// case's clock past the deadline); wait steps jump the clock to their timer.
//
// May import: internal/app, internal/demo, internal/pg, internal/registry,
// internal/process, internal/servicedef, internal/clock, internal/identity,
// internal/esign.
package servicetest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/demo"
	"github.com/ortaq/ortaq/internal/esign"
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
	ca      *esign.DemoCA // signs as the applicants of cases with a sign step
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
	p, err := app.Build(app.Config{Workers: 2, JobTimeout: 5 * time.Second, Clock: clk,
		Exchange: caseExchange(plan, tc)}, pool, r.log)
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
	if slices.ContainsFunc(plan.Steps, func(s servicedef.PlanStep) bool { return s.Step.Type == servicedef.StepSign }) {
		if r.ca == nil {
			// Valid around any case's fixed clock.
			if r.ca, err = esign.NewDemoCAValid(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
				return "", "", nil, err
			}
		}
		if _, err := p.Signatures.AddRoot(ctx, r.ca.Chain[0], "servicetest"); err != nil {
			return "", "", nil, err
		}
	}
	persons, err := fixtures(tc)
	if err != nil {
		return "", "", nil, err
	}
	if len(persons) > 0 {
		if err := p.Registries.ImportPersons(ctx, persons, registry.ImportOptions{Actor: "system:servicetest", Basis: "test case " + tc.Name,
			ValidFrom: clk.Now()}); err != nil {
			return "", "", nil, fmt.Errorf("load registry fixtures: %w", err)
		}
	}
	if err := loadRecords(ctx, p, tc); err != nil {
		return "", "", nil, err
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
	decided, acted := map[string]bool{}, map[string]bool{}
	for !process.Final(app.Status) && app.Status != process.StatusReturned {
		if time.Now().After(deadline) {
			return "", "", nil, fmt.Errorf("not decided within 30 s (status %s)", app.Status)
		}
		switch app.Status {
		case process.StatusInReview:
			if err := r.decide(ctx, p, app.ID, plan, tc, decided); err != nil {
				return "", "", nil, err
			}
		case process.StatusAwaitingPayment, process.StatusAwaitingSignature:
			if err := r.actAsApplicant(ctx, p, app, tc, clk, acted); err != nil {
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
		outputs, _ := tc.Outputs[t.StepID].Value.(map[string]any)
		if decision != "approve" {
			outputs = nil
		}
		if _, err := p.Engine.Decide(ctx, officer, t.ID, process.DecideRequest{Decision: decision, Refusal: refusal,
			Comment: "servicetest: " + tc.Name, Outputs: outputs}); err != nil {
			return fmt.Errorf("decide step %q: %w", t.StepID, err)
		}
	}
	return nil
}

// fixtureExchange answers exchange reads from a test case's fixtures, as
// the other agencies' systems would: by service and person.
type fixtureExchange map[string]any // service + "\x00" + person -> answer

func caseExchange(plan *servicedef.Plan, tc servicedef.TestCase) fixtureExchange {
	answers := fixtureExchange{}
	for _, d := range plan.Data {
		if d.Source.Exchange == "" {
			continue
		}
		for key, body := range tc.Exchange[d.Source.Name] {
			answers[d.Source.Exchange+"\x00"+key] = body.Value
		}
	}
	return answers
}

// Call accepts every call: what a case checks is the outcome.
func (f fixtureExchange) Call(context.Context, process.ExchangeCall) (map[string]any, error) {
	return nil, nil
}

func (f fixtureExchange) Read(_ context.Context, r process.ExchangeRead) (map[string]any, bool, error) {
	v, ok := f[r.Service+"\x00"+r.UserID]
	if !ok {
		return nil, false, nil
	}
	body, isObject := v.(map[string]any)
	if !isObject {
		return nil, false, fmt.Errorf("the case's answer of %s for %s is not a JSON object", r.Service, r.UserID)
	}
	return body, true, nil
}

// paymentGateway confirms the fees of test cases.
var paymentGateway = identity.Principal{Kind: identity.System, Subject: "servicetest", Roles: []string{identity.ScopePayments}}

// actAsApplicant pays or signs as the case declares (paid and signed
// unless it says unpaid or unsigned), through the same calls a payment
// gateway and a citizen's signing tool make; unpaid and unsigned let the
// case's clock run past the deadline instead.
func (r *Runner) actAsApplicant(ctx context.Context, p *app.Platform, a process.Application, tc servicedef.TestCase, clk *clock.Fake, acted map[string]bool) error {
	var stepID string
	var due time.Time
	var data []byte
	var invoice process.Invoice
	if a.Status == process.StatusAwaitingPayment {
		inv, err := p.Engine.InvoiceOf(ctx, a.ID)
		if err != nil {
			return err
		}
		stepID, due, invoice = inv.Step, inv.DueAt, inv
	} else {
		req, err := p.Engine.SigningRequestOf(ctx, a.ID)
		if err != nil {
			return err
		}
		stepID, due, data = req.Step, req.DueAt, req.Data
	}
	if acted[stepID] {
		return nil // done; the engine has not moved on yet
	}
	acted[stepID] = true
	given, ok := tc.Decisions[stepID]
	switch {
	case ok && (given == servicedef.Unpaid || given == servicedef.Unsigned):
		clk.Advance(due.Sub(clk.Now()) + time.Second)
		_, err := p.Engine.FireTimers(ctx)
		return err
	case a.Status == process.StatusAwaitingPayment:
		_, err := p.Engine.ConfirmPayment(ctx, paymentGateway, process.PaymentConfirmation{Invoice: invoice.Number,
			AmountTiyn: invoice.AmountTiyn, Reference: "servicetest-" + a.ID.String(), PaidAt: clk.Now()})
		if err != nil {
			return fmt.Errorf("pay the fee of step %q: %w", stepID, err)
		}
		return nil
	default:
		sig, err := r.signAs(clk.Now(), data)
		if err != nil {
			return fmt.Errorf("sign at step %q: %w", stepID, err)
		}
		if _, err := p.Engine.Sign(ctx, a.ID, sig, "servicetest"); err != nil {
			return fmt.Errorf("sign at step %q: %w", stepID, err)
		}
		return nil
	}
}

// signAs signs data as the applicant with a certificate of the runner's
// demo CA, which the case's platform trusts.
func (r *Runner) signAs(now time.Time, data []byte) (esign.Signature, error) {
	var st process.Statement
	if err := json.Unmarshal(data, &st); err != nil {
		return esign.Signature{}, err
	}
	key, err := r.ca.Issue(st.Applicant, esign.IssueOptions{NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0)})
	if err != nil {
		return esign.Signature{}, err
	}
	return key.Sign(data, "cms")
}

// loadRecords writes a case's records of the declarative registries
// through the registry store, validated as any record is.
func loadRecords(ctx context.Context, p *app.Platform, tc servicedef.TestCase) error {
	for _, reg := range slices.Sorted(maps.Keys(tc.Registry)) {
		if reg == registry.PopulationRegistry {
			continue
		}
		d, ok := p.Registries.Definition(reg)
		if !ok {
			return fmt.Errorf("registry %q does not exist", reg)
		}
		for _, rec := range tc.Registry[reg] {
			data, _ := rec.Value.(map[string]any)
			key, _ := data[d.Key.Attribute].(string)
			if _, err := p.Registries.ApplyNow(ctx, registry.Change{Registry: reg, Key: key, Op: "create", Data: data,
				Actor: "system:servicetest", Basis: "test case " + tc.Name}); err != nil {
				return fmt.Errorf("%s fixture at line %d: %w", reg, rec.At.Line, err)
			}
		}
	}
	return nil
}

// fixtures turns a case's population records (the shape the services
// read: a person with their address) into persons for the population and
// addresses registries. The region and locality names of an address come
// from the KATO classifier when the person is read, whatever the fixture
// says (the simulation, servicedef's RunTests, uses the fixture's: a case
// whose expectation shows them gives the classifier's names).
func fixtures(tc servicedef.TestCase) ([]registry.Person, error) {
	var out []registry.Person
	for reg, records := range tc.Registry {
		if reg != registry.PopulationRegistry {
			continue // a declarative registry: loadRecords
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
