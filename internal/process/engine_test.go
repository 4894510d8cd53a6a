package process_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/agency"
	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/document"
	"github.com/ortaq/ortaq/internal/esign"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/outbox"
	"github.com/ortaq/ortaq/internal/pgtest"
	"github.com/ortaq/ortaq/internal/process"
	"github.com/ortaq/ortaq/internal/registry"
	"github.com/ortaq/ortaq/internal/service"
	"github.com/ortaq/ortaq/internal/servicedef"
	"github.com/ortaq/ortaq/registries"
	"github.com/ortaq/ortaq/services"
)

func TestMain(m *testing.M) { pgtest.Main(m, app.Schemas()...) }

type bundle struct {
	pool     *pgxpool.Pool
	engine   *process.Engine
	services *service.Catalogue
	docs     *document.Store
	people   *registry.Store // the population and addresses registries
	// Citizens of the test registry.
	withAddress, withoutAddress, unknown iin.IIN
}

func mustIIN(t testing.TB, birth time.Time, sex iin.Sex, serial int) iin.IIN {
	t.Helper()
	for s := serial; s < serial+20; s++ {
		if n, err := iin.New(birth, sex, s); err == nil {
			return n
		}
	}
	t.Fatalf("no valid IIN near serial %d", serial)
	return ""
}

// personRegistries is a registry store serving the platform's registry
// definitions (the population and addresses) and classifiers (KATO).
func personRegistries(t testing.TB, pool *pgxpool.Pool, clk clock.Clock) *registry.Store {
	t.Helper()
	set, bad, err := registry.LoadSet(registries.Files, nil)
	if err != nil || len(bad) > 0 {
		t.Fatalf("registry definitions: %v %v", err, bad)
	}
	s := registry.NewStore(pool, clk)
	s.Use(set)
	return s
}

// addressCertificate is the demo definition, read from services/.
func addressCertificate(t testing.TB) []byte {
	t.Helper()
	src, err := fs.ReadFile(services.Files, "address-certificate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// variant rewrites the definition's id and version.
func variant(t testing.TB, id string, version int) []byte {
	src := string(addressCertificate(t))
	src = strings.Replace(src, "id: address-certificate", "id: "+id, 1)
	src = strings.Replace(src, "version: 1", fmt.Sprintf("version: %d", version), 1)
	return []byte(src)
}

func environment(ctx context.Context) (servicedef.Environment, error) {
	return servicedef.Environment{
		Agencies:   map[string][]string{"mia": {"migration-officer", "migration-supervisor"}},
		Registries: map[string]servicedef.Registry{"population": servicedef.PopulationRegistry()},
	}, nil
}

func newCatalogue(pool *pgxpool.Pool) *service.Catalogue {
	c := service.NewCatalogue(pool, clock.Real{})
	c.SetEnvironment(environment)
	return c
}

func publish(t testing.TB, c *service.Catalogue, src []byte) {
	t.Helper()
	if _, problems, err := c.PublishSource(context.Background(), src); err != nil || problems != nil {
		t.Fatalf("publish: %v %v", err, problems)
	}
}

// setup gives a test its own database with one agency, one service and three
// citizens, and an engine with workers (nodes > 1 starts more engines).
func setup(t *testing.T, nodes int) (*bundle, []*process.Engine) {
	return setupWith(t, nodes, options{})
}

// options vary the setup for a test.
type options struct {
	clock  clock.Clock
	config func(*process.Config)
	// docs wraps the document store the engines issue with.
	docs func(process.DocumentIssuer) process.DocumentIssuer
	// services are published besides the address certificate.
	services [][]byte
	// signatures is given the engines' signature verifier.
	signatures func(*esign.Verifier)
}

func setupWith(t *testing.T, nodes int, o options) (*bundle, []*process.Engine) {
	t.Helper()
	ctx := context.Background()
	db := pgtest.New(t)
	var clk clock.Clock = clock.Real{}
	if o.clock != nil {
		clk = o.clock
	}
	b := &bundle{
		pool:     db.Pool,
		services: newCatalogue(db.Pool),
		docs:     document.NewStore(db.Pool, clk),
		people:   personRegistries(t, db.Pool, clk),
	}
	bin, _ := iin.NewBIN(time.Date(2023, 9, 1, 0, 0, 0, 0, time.UTC), '4', '0', 90001)
	if err := agency.NewStore(db.Pool).Save(ctx, agency.Agency{ID: "mia", BIN: bin, Name: i18n.Text{KK: "ІІМ", RU: "МВД", EN: "MIA"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.docs.EnsureKey(ctx, "mia"); err != nil {
		t.Fatal(err)
	}
	publish(t, b.services, addressCertificate(t))
	for _, src := range o.services {
		publish(t, b.services, src)
	}
	birth := time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)
	b.withAddress = mustIIN(t, birth, iin.SexMale, 9001)
	b.withoutAddress = mustIIN(t, birth, iin.SexFemale, 9101)
	b.unknown = mustIIN(t, birth, iin.SexMale, 9201)
	addr := &registry.Address{KATO: "711110000", Street: "Абай даңғылы", House: "10", Flat: "5"}
	if err := b.people.ImportPersons(ctx, []registry.Person{
		{IIN: b.withAddress, LastName: "Сейітов", FirstName: "Асан", BirthDate: birth, Sex: "male", Address: addr},
		{IIN: b.withoutAddress, LastName: "Сейітова", FirstName: "Әсел", BirthDate: birth, Sex: "female"},
	}, registry.ImportOptions{Actor: "system:test", Basis: "test fixture"}); err != nil {
		t.Fatal(err)
	}
	verifier := esign.NewVerifier(db.Pool, clk)
	if o.signatures != nil {
		o.signatures(verifier)
	}
	var engines []*process.Engine
	for i := 0; i < nodes; i++ {
		cfg := process.Config{Workers: 4, JobTimeout: 5 * time.Second,
			Clock: clk, Logger: slog.New(slog.DiscardHandler), Signatures: verifier}
		if o.config != nil {
			o.config(&cfg)
		}
		var docs process.DocumentIssuer = b.docs
		if o.docs != nil {
			docs = o.docs(docs)
		}
		e, err := process.New(cfg, db.Pool, b.services, b.people, docs)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			e.Stop(ctx)
		})
		engines = append(engines, e)
	}
	if nodes > 0 {
		b.engine = engines[0]
	}
	return b, engines
}

// waitDecided polls until the application leaves "submitted".
func waitDecided(t *testing.T, e *process.Engine, id uuid.UUID) process.Application {
	t.Helper()
	return waitUntil(t, e, id, "leaves submitted", func(status string) bool { return status != process.StatusSubmitted })
}

// waitUntil polls the application until its status satisfies done: the
// engine's workers run on their own, and the database is the one place
// their progress shows.
func waitUntil(t *testing.T, e *process.Engine, id uuid.UUID, what string, done func(status string) bool) process.Application {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		a, err := e.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if done(a.Status) {
			return a
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("application %s is still %s after 30s; waited until it %s", id, a.Status, what)
		}
	}
}

func submit(t *testing.T, e *process.Engine, who iin.IIN, key string) process.Application {
	t.Helper()
	a, _, err := e.Submit(context.Background(), process.SubmitRequest{ServiceID: "address-certificate", Inputs: map[string]any{"iin": who.String()}, IdempotencyKey: key})
	if err != nil {
		t.Fatalf("Submit(%s): %v", who, err)
	}
	return a
}

func TestCertificateIssuedAndVerifiable(t *testing.T) {
	t.Parallel()
	b, _ := setup(t, 1)
	ctx := context.Background()
	a := waitDecided(t, b.engine, submit(t, b.engine, b.withAddress, "k1").ID)
	if a.Status != process.StatusCompleted || a.DocumentID == nil {
		t.Fatalf("status = %s, document %v; want completed with a document", a.Status, a.DocumentID)
	}
	var steps []string
	for _, s := range a.Timeline {
		steps = append(steps, s.Name)
	}
	if got, want := fmt.Sprint(steps), "[submitted registry.read decide document.issue completed]"; got != want {
		t.Errorf("timeline = %s; want %s", got, want)
	}
	doc, err := b.docs.Get(ctx, *a.DocumentID)
	if err != nil {
		t.Fatal(err)
	}
	v, err := b.docs.Verify(ctx, doc.JWS)
	if err != nil || !v.Valid || !v.Registered {
		t.Fatalf("Verify(issued document) = %+v, %v; want valid and registered", v, err)
	}
	if v.Document.Subject != b.withAddress.String() || v.Document.Issuer != "mia" {
		t.Errorf("signed payload names %s/%s; want %s/mia", v.Document.Subject, v.Document.Issuer, b.withAddress)
	}

	// The reads of the person's two records were audited, each with the
	// application as its reason.
	rows, err := b.pool.Query(ctx, `SELECT action, object FROM audit_event WHERE subject_iin = $1 ORDER BY id`, b.withAddress.String())
	if err != nil {
		t.Fatal(err)
	}
	var audited []string
	for rows.Next() {
		var action, object string
		if err := rows.Scan(&action, &object); err != nil {
			t.Fatal(err)
		}
		audited = append(audited, action+" "+object)
	}
	reason := " for application:" + a.ID.String()
	if got, want := fmt.Sprint(audited), fmt.Sprint([]string{
		"registry.population.read registry:population/" + b.withAddress.String() + reason,
		"registry.addresses.read registry:addresses/" + b.withAddress.String() + reason,
	}); got != want {
		t.Errorf("audit events of the read = %s; want %s", got, want)
	}
	events, err := outbox.After(ctx, b.pool, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var topics []string
	for _, e := range events {
		if !strings.HasPrefix(e.Topic, "registry.") { // the fixtures' import
			topics = append(topics, e.Topic)
		}
	}
	if got, want := fmt.Sprint(topics), "[process.application.submitted process.application.decided]"; got != want {
		t.Errorf("outbox = %s; want %s", got, want)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	b, _ := setup(t, 1)
	for _, tt := range []struct {
		who  iin.IIN
		code string
	}{{b.withoutAddress, "no_registered_address"}, {b.unknown, "applicant_not_found"}} {
		a := waitDecided(t, b.engine, submit(t, b.engine, tt.who, "k").ID)
		if a.Status != process.StatusRefused || a.RefusalCode != tt.code || a.DocumentID != nil {
			t.Errorf("%s: status %s, refusal %q, document %v; want refused %q without document", tt.who, a.Status, a.RefusalCode, a.DocumentID, tt.code)
		}
	}
}

func TestInvalidInputNamesTheField(t *testing.T) {
	t.Parallel()
	b, _ := setup(t, 0)
	e, err := process.New(process.Config{}, b.pool, b.services, b.people, b.docs)
	if err != nil {
		t.Fatal(err)
	}
	for in, code := range map[string]apierr.Code{
		"":              apierr.FieldIINEmpty,
		"123":           apierr.FieldIINLength,
		"90010130001a":  apierr.FieldIINDigits,
		"900101300018":  apierr.FieldIINChecksum,
		"９００１０１３０００１７":  apierr.FieldIINDigits,
		"90010130001 7": apierr.FieldIINLength,
	} {
		_, _, err := e.Submit(context.Background(), process.SubmitRequest{ServiceID: "address-certificate", Inputs: map[string]any{"iin": in}, IdempotencyKey: "k"})
		var pub *apierr.Error
		if !errors.As(err, &pub) || pub.Code != apierr.Validation || len(pub.Fields) != 1 ||
			pub.Fields[0].Path != "/inputs/iin" || pub.Fields[0].Code != code {
			t.Errorf("Submit(iin %q) = %v; want validation error /inputs/iin %s", in, err, code)
		}
	}
	_, _, err = e.Submit(context.Background(), process.SubmitRequest{ServiceID: "no-such", Inputs: map[string]any{"iin": b.withAddress.String()}, IdempotencyKey: "k"})
	if pub := apierr.From(err); pub.Code != apierr.ServiceNotFound {
		t.Errorf("Submit(unknown service) = %v; want service.not_found", err)
	}
	var n int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM application`).Scan(&n); err != nil || n != 0 {
		t.Errorf("invalid submissions stored %d applications (%v); want 0", n, err)
	}
}

func TestIdempotentSubmit(t *testing.T) {
	t.Parallel()
	b, _ := setup(t, 1)
	ctx := context.Background()
	first := submit(t, b.engine, b.withAddress, "same-key")
	again, replayed, err := b.engine.Submit(ctx, process.SubmitRequest{ServiceID: "address-certificate", Inputs: map[string]any{"iin": b.withAddress.String()}, IdempotencyKey: "same-key"})
	if err != nil || !replayed || again.ID != first.ID {
		t.Fatalf("resubmit with the same key = %s replayed=%v err=%v; want %s replayed", again.ID, replayed, err, first.ID)
	}
	// The first answer is built from what was written, the replay is read
	// back: they must agree.
	firstJSON, _ := json.Marshal(first)
	againJSON, _ := json.Marshal(process.Application{ID: again.ID, Number: again.Number, ServiceID: again.ServiceID,
		ServiceVersion: again.ServiceVersion, Status: process.StatusSubmitted, SubmittedAt: again.SubmittedAt, Timeline: again.Timeline[:1]})
	if string(firstJSON) != string(againJSON) {
		t.Errorf("the submit answer differs from the stored application:\n%+v\n%+v", first, again)
	}
	// Same key, another request: refused.
	publish(t, b.services, variant(t, "other-certificate", 1))
	_, _, err = b.engine.Submit(ctx, process.SubmitRequest{ServiceID: "other-certificate", Inputs: map[string]any{"iin": b.withAddress.String()}, IdempotencyKey: "same-key"})
	if pub := apierr.From(err); pub.Code != apierr.IdempotencyKeyReused {
		t.Errorf("reusing a key for another request = %v; want idempotency.key_reused", err)
	}
	// Another citizen may use the same key string: keys are per applicant.
	if a := submit(t, b.engine, b.withoutAddress, "same-key"); a.ID == first.ID {
		t.Errorf("another applicant's key collided with the first application")
	}
}

// TestConcurrentSubmissionsOneApplication races many submissions of the same
// key: exactly one application must result.
func TestConcurrentSubmissionsOneApplication(t *testing.T) {
	t.Parallel()
	b, _ := setup(t, 1)
	var wg sync.WaitGroup
	ids := make(chan uuid.UUID, 20)
	for range 20 {
		wg.Go(func() {
			a, _, err := b.engine.Submit(context.Background(), process.SubmitRequest{ServiceID: "address-certificate",
				Inputs: map[string]any{"iin": b.withAddress.String()}, IdempotencyKey: "race"})
			if err != nil {
				t.Errorf("Submit: %v", err)
				return
			}
			ids <- a.ID
		})
	}
	wg.Wait()
	close(ids)
	seen := map[uuid.UUID]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != 1 {
		t.Errorf("20 racing submissions with one key made %d applications; want 1", len(seen))
	}
}

// TestTwoNodesExactlyOnce runs two engines on one database: all work gets
// done and no application gets two documents or two decisions.
func TestTwoNodesExactlyOnce(t *testing.T) {
	t.Parallel()
	b, engines := setup(t, 2)
	ctx := context.Background()
	const n = 60
	var ids []uuid.UUID
	for i := range n {
		e := engines[i%2]
		who := b.withAddress
		if i%3 == 0 {
			who = b.withoutAddress
		}
		ids = append(ids, submit(t, e, who, fmt.Sprintf("k%d", i)).ID)
	}
	for _, id := range ids {
		waitDecided(t, engines[0], id)
	}
	var apps, docs, decidedSteps int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM application WHERE status = 'completed'`).Scan(&apps); err != nil {
		t.Fatal(err)
	}
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM document`).Scan(&docs); err != nil {
		t.Fatal(err)
	}
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM application, jsonb_array_elements(timeline) s WHERE s->>'step' IN ('completed', 'refused')`).Scan(&decidedSteps); err != nil {
		t.Fatal(err)
	}
	if apps != n-n/3 || docs != apps || decidedSteps != n {
		t.Errorf("completed %d, documents %d, decisions %d; want %d, %d, %d", apps, docs, decidedSteps, n-n/3, n-n/3, n)
	}
}

// TestRedeliveredJobChangesNothing simulates a job delivered again after its
// application was decided (a lost completion): no second document.
func TestRedeliveredJobChangesNothing(t *testing.T) {
	t.Parallel()
	b, _ := setup(t, 1)
	ctx := context.Background()
	a := waitDecided(t, b.engine, submit(t, b.engine, b.withAddress, "k").ID)
	// A run queued again for an application already decided (as after a
	// crash between the decision's commit and anything else).
	if _, err := b.pool.Exec(ctx, `INSERT INTO process_run (application_id, run_at, service_id, service_version)
		VALUES ($1, now(), 'address-certificate', 1)`, a.ID); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		var open int
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM process_run`).Scan(&open); err != nil {
			t.Fatal(err)
		}
		if open == 0 {
			break
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("redelivered job not worked within 30s")
		}
	}
	var docs, steps int
	b.pool.QueryRow(ctx, `SELECT count(*) FROM document`).Scan(&docs)
	b.pool.QueryRow(ctx, `SELECT jsonb_array_length(timeline) FROM application WHERE id = $1`, a.ID).Scan(&steps)
	if docs != 1 || steps != len(a.Timeline) {
		t.Errorf("after redelivery: %d documents, %d steps; want 1 and %d", docs, steps, len(a.Timeline))
	}
}

// TestApplicationKeepsItsVersion: publishing v2 does not move running
// applications, and new ones take v2.
func TestApplicationKeepsItsVersion(t *testing.T) {
	t.Parallel()
	b, _ := setup(t, 0)
	ctx := context.Background()
	e, err := process.New(process.Config{}, b.pool, b.services, b.people, b.docs)
	if err != nil {
		t.Fatal(err)
	}
	first := submit(t, e, b.withAddress, "k1")
	v2 := variant(t, "address-certificate", 2)
	publish(t, b.services, v2)
	second := submit(t, e, b.withAddress, "k2")
	if first.ServiceVersion != 1 || second.ServiceVersion != 2 {
		t.Errorf("versions = %d, %d; want 1, 2", first.ServiceVersion, second.ServiceVersion)
	}
	// A version cannot be republished with other content.
	changed := []byte(strings.Replace(string(v2), "Certificate of registered address", "Changed", 1))
	if _, _, err := b.services.PublishSource(ctx, changed); err == nil {
		t.Errorf("republishing v2 with other content succeeded; want an error")
	}
}

// TestMoreWorkersThanConnections: a run must finish on the one connection it
// holds, or workers that outnumber the pool deadlock waiting for each other.
func TestMoreWorkersThanConnections(t *testing.T) {
	t.Parallel()
	b, _ := setup(t, 0)
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(b.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 3
	small, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	services := newCatalogue(small)
	e, err := process.New(process.Config{Workers: 8, JobTimeout: 5 * time.Second,
		Logger: slog.New(slog.DiscardHandler)}, small, services, personRegistries(t, small, clock.Real{}), document.NewStore(small, clock.Real{}))
	if err != nil {
		t.Fatal(err)
	}
	var ids []uuid.UUID
	for i := range 24 {
		ids = append(ids, submit(t, e, b.withAddress, fmt.Sprint("w", i)).ID)
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.Stop(ctx)
	}()
	for _, id := range ids {
		if a := waitDecided(t, e, id); a.Status != process.StatusCompleted {
			t.Errorf("%s: %s", id, a.Status)
		}
	}
}
