package process_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/document"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/process"
)

// reviewed is the address certificate with an officer's review, escalated
// to a supervisor after two working days, and an hour's wait before the
// certificate is issued.
func reviewed(t testing.TB) []byte {
	src := string(variant(t, "reviewed-certificate", 1))
	src = strings.Replace(src, `  - id: certificate
    type: issue`, `  - id: review
    type: review
    role: migration-officer
    deadline: P2D
    escalateTo: migration-supervisor
    decisions: [approve, refuse, return]
    refusals: [applicant_not_found]
  - id: cooling
    type: wait
    after: PT1H
  - id: certificate
    type: issue`, 1)
	return []byte(src)
}

var (
	officerA   = identity.Principal{Kind: identity.Officer, Subject: "mia-0001", Agency: "mia", Roles: []string{"migration-officer"}}
	officerB   = identity.Principal{Kind: identity.Officer, Subject: "mia-0002", Agency: "mia", Roles: []string{"migration-officer"}}
	supervisor = identity.Principal{Kind: identity.Officer, Subject: "mia-0100", Agency: "mia", Roles: []string{"migration-supervisor"}}
	otherAgent = identity.Principal{Kind: identity.Officer, Subject: "mf-0001", Agency: "mf", Roles: []string{"migration-officer"}}
)

func citizen(n iin.IIN) identity.Principal {
	return identity.Principal{Kind: identity.Citizen, Subject: n.String()}
}

// Monday 2026-11-23, 10:00 in Almaty.
var monday = time.Date(2026, 11, 23, 5, 0, 0, 0, time.UTC)

func reviewSetup(t *testing.T) (*bundle, *clock.Fake) {
	clk := clock.NewFake(monday)
	b, _ := setupWith(t, 1, options{clock: clk, services: [][]byte{reviewed(t)}, config: func(c *process.Config) {
		c.TimerInterval = time.Hour // the tests fire timers themselves
	}})
	return b, clk
}

func submitTo(t *testing.T, e *process.Engine, serviceID string, who iin.IIN, key string) uuid.UUID {
	t.Helper()
	a, _, err := e.Submit(context.Background(), process.SubmitRequest{ServiceID: serviceID, Inputs: map[string]any{"iin": who.String()}, IdempotencyKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}

func wantCode(t *testing.T, err error, code apierr.Code) {
	t.Helper()
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.Code != code {
		t.Fatalf("error %v, want %s", err, code)
	}
}

func wantField(t *testing.T, err error, path string, code apierr.Code) {
	t.Helper()
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.Code != apierr.Validation {
		t.Fatalf("error %v, want a validation error", err)
	}
	for _, f := range ae.Fields {
		if f.Path == path && f.Code == code {
			return
		}
	}
	t.Fatalf("fields %v, want %s %s", ae.Fields, path, code)
}

func openTask(t *testing.T, b *bundle, who identity.Principal) process.Task {
	t.Helper()
	tasks, err := b.engine.Inbox(context.Background(), who, process.InboxFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 {
		t.Fatalf("inbox of %s has %d tasks, want 1", who.Subject, len(tasks))
	}
	return tasks[0]
}

func timelineNames(a process.Application) string {
	var names []string
	for _, s := range a.Timeline {
		names = append(names, s.Name)
	}
	return strings.Join(names, " ")
}

func TestReviewApprovedThenWaitsThenIssues(t *testing.T) {
	ctx := context.Background()
	b, clk := reviewSetup(t)
	id := submitTo(t, b.engine, "reviewed-certificate", b.withAddress, "k")
	if a := waitDecided(t, b.engine, id); a.Status != process.StatusInReview {
		t.Fatalf("status %s, want in_review", a.Status)
	}

	// Only officers of the agency with the role see and work the task.
	if _, err := b.engine.Inbox(ctx, citizen(b.withAddress), process.InboxFilter{}); err == nil {
		t.Fatal("a citizen listed an officers' inbox")
	}
	if tasks, _ := b.engine.Inbox(ctx, otherAgent, process.InboxFilter{}); len(tasks) != 0 {
		t.Fatalf("an officer of another agency sees %d tasks", len(tasks))
	}
	if tasks, _ := b.engine.Inbox(ctx, supervisor, process.InboxFilter{}); len(tasks) != 0 {
		t.Fatalf("an officer with another role sees %d tasks", len(tasks))
	}
	task := openTask(t, b, officerA)
	if task.ApplicationID != id || task.Role != "migration-officer" {
		t.Fatalf("task %+v", task)
	}
	// Two working days from Monday: the end of Wednesday in Almaty.
	if want := time.Date(2026, 11, 25, 18, 59, 59, 999999000, time.UTC); !task.DueAt.Equal(want) {
		t.Fatalf("due %s, want %s", task.DueAt, want)
	}
	_, err := b.engine.Claim(ctx, otherAgent, task.ID, "")
	wantCode(t, err, apierr.TaskNotFound)
	_, err = b.engine.Decide(ctx, officerA, task.ID, process.DecideRequest{Decision: "approve"})
	wantCode(t, err, apierr.TaskNotClaimed)

	if _, err := b.engine.Claim(ctx, officerA, task.ID, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.engine.Claim(ctx, officerA, task.ID, ""); err != nil {
		t.Fatalf("claiming one's own task again: %v", err)
	}
	_, err = b.engine.Claim(ctx, officerB, task.ID, "")
	wantCode(t, err, apierr.TaskClaimed)
	_, err = b.engine.Decide(ctx, officerB, task.ID, process.DecideRequest{Decision: "approve"})
	wantCode(t, err, apierr.TaskClaimed)
	if mine, _ := b.engine.Inbox(ctx, officerB, process.InboxFilter{Status: "mine"}); len(mine) != 0 {
		t.Fatal("officer B has officer A's task as theirs")
	}

	// Bad decisions name the field.
	_, err = b.engine.Decide(ctx, officerA, task.ID, process.DecideRequest{Decision: "maybe"})
	wantField(t, err, "/decision", apierr.FieldOneOf)
	_, err = b.engine.Decide(ctx, officerA, task.ID, process.DecideRequest{Decision: "refuse", Refusal: "no_such"})
	wantField(t, err, "/refusal", apierr.FieldOneOf)
	_, err = b.engine.Decide(ctx, officerA, task.ID, process.DecideRequest{Decision: "return"})
	wantField(t, err, "/comment", apierr.FieldRequired)
	_, err = b.engine.Decide(ctx, officerA, task.ID, process.DecideRequest{Decision: "approve",
		Attachments: []process.Attachment{{Name: "../x", MediaType: "text/html", Content: []byte("<b>")}}})
	wantField(t, err, "/attachments/0/media_type", apierr.FieldOneOf)

	decided, err := b.engine.Decide(ctx, officerA, task.ID, process.DecideRequest{Decision: "approve", Comment: "checked",
		Attachments: []process.Attachment{{Name: "check.pdf", MediaType: "application/pdf", Content: []byte("%PDF-1.7")}}})
	if err != nil {
		t.Fatal(err)
	}
	if decided.Status != process.TaskDone || decided.Decision != "approve" {
		t.Fatalf("task after the decision: %+v", decided)
	}
	_, err = b.engine.Decide(ctx, officerA, task.ID, process.DecideRequest{Decision: "approve"})
	wantCode(t, err, apierr.TaskClosed)

	// The flow goes on to the wait step, and on when the clock reaches it.
	if a := waitDecided(t, b.engine, id); a.Status != process.StatusWaiting {
		t.Fatalf("status %s, want waiting", a.Status)
	}
	if n, err := b.engine.FireTimers(ctx); err != nil || n != 0 {
		t.Fatalf("fired %d timers before their time (%v)", n, err)
	}
	clk.Advance(time.Hour)
	if n, err := b.engine.FireTimers(ctx); err != nil || n != 1 {
		t.Fatalf("fired %d timers, want 1 (%v)", n, err)
	}
	a := waitDecided(t, b.engine, id)
	if a.Status != process.StatusCompleted || a.DocumentID == nil {
		t.Fatalf("application %+v", a)
	}
	if got, want := timelineNames(a), "submitted registry.read decide review.assigned review.claimed review wait resumed document.issue completed"; got != want {
		t.Fatalf("timeline %q, want %q", got, want)
	}
	// Every officer action is in the applicant's audit trail.
	var actions []string
	rows, _ := b.pool.Query(ctx, `SELECT action FROM audit_event WHERE actor = 'officer:mia-0001' AND subject_iin = $1 ORDER BY id`, b.withAddress.String())
	actions, _ = pgx.CollectRows(rows, pgx.RowTo[string])
	if strings.Join(actions, " ") != "process.task.claim process.task.decide" {
		t.Fatalf("audited officer actions %v", actions)
	}
}

func TestReviewRefuses(t *testing.T) {
	b, _ := reviewSetup(t)
	id := submitTo(t, b.engine, "reviewed-certificate", b.withAddress, "k")
	waitDecided(t, b.engine, id)
	task := openTask(t, b, officerA)
	ctx := context.Background()
	if _, err := b.engine.Claim(ctx, officerA, task.ID, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.engine.Decide(ctx, officerA, task.ID, process.DecideRequest{Decision: "refuse", Comment: "not found in the archive"}); err != nil {
		t.Fatal(err)
	}
	a, err := b.engine.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != process.StatusRefused || a.RefusalCode != "applicant_not_found" || a.DecidedAt == nil {
		t.Fatalf("application %+v", a)
	}
	v, err := b.engine.View(ctx, id, "en")
	if err != nil || v.Refusal == nil || v.Refusal.Comment != "not found in the archive" {
		t.Fatalf("view %+v %v", v.Refusal, err)
	}
}

func TestReturnForCorrection(t *testing.T) {
	ctx := context.Background()
	b, _ := reviewSetup(t)
	id := submitTo(t, b.engine, "reviewed-certificate", b.withAddress, "k")
	waitDecided(t, b.engine, id)
	task := openTask(t, b, officerA)
	b.engine.Claim(ctx, officerA, task.ID, "")
	if _, err := b.engine.Decide(ctx, officerA, task.ID, process.DecideRequest{Decision: "return", Comment: "Check your IIN"}); err != nil {
		t.Fatal(err)
	}
	v, err := b.engine.View(ctx, id, "en")
	if err != nil || v.Status != process.StatusReturned || v.Correction == nil || v.Correction.Reason != "Check your IIN" {
		t.Fatalf("view %+v %v", v, err)
	}
	inputs := map[string]any{"iin": b.withAddress.String()}
	// Only the applicant corrects, and cannot change who applies.
	wantCode(t, b.engine.Correct(ctx, citizen(b.withoutAddress), id, inputs, ""), apierr.ApplicationNotFound)
	wantCode(t, b.engine.Correct(ctx, officerA, id, inputs, ""), apierr.Forbidden)
	wantField(t, b.engine.Correct(ctx, citizen(b.withAddress), id, map[string]any{"iin": b.withoutAddress.String()}, ""), "/inputs/iin", apierr.FieldOneOf)
	wantField(t, b.engine.Correct(ctx, citizen(b.withAddress), id, map[string]any{"iin": "123"}, ""), "/inputs/iin", apierr.FieldIINLength)
	if err := b.engine.Correct(ctx, citizen(b.withAddress), id, inputs, ""); err != nil {
		t.Fatal(err)
	}
	wantCode(t, b.engine.Correct(ctx, citizen(b.withAddress), id, inputs, ""), apierr.ApplicationState)
	// The corrected application is read and reviewed again.
	if a := waitDecided(t, b.engine, id); a.Status != process.StatusInReview {
		t.Fatalf("status %s after the correction", a.Status)
	}
	again := openTask(t, b, officerA)
	if again.ID == task.ID {
		t.Fatal("the correction reopened the old task instead of a new one")
	}
	var outbox int
	b.pool.QueryRow(ctx, `SELECT count(*) FROM outbox_event WHERE topic = 'notify.message.requested' AND key = $1`, id.String()).Scan(&outbox)
	if outbox != 1 {
		t.Fatalf("%d notifications of the return, want 1", outbox)
	}
}

func TestWithdraw(t *testing.T) {
	ctx := context.Background()
	b, _ := reviewSetup(t)
	id := submitTo(t, b.engine, "reviewed-certificate", b.withAddress, "k")
	waitDecided(t, b.engine, id)
	task := openTask(t, b, officerA)
	b.engine.Claim(ctx, officerA, task.ID, "")

	wantCode(t, b.engine.Withdraw(ctx, citizen(b.withoutAddress), id, ""), apierr.ApplicationNotFound)
	wantCode(t, b.engine.Withdraw(ctx, officerA, id, ""), apierr.Forbidden)
	if err := b.engine.Withdraw(ctx, citizen(b.withAddress), id, ""); err != nil {
		t.Fatal(err)
	}
	wantCode(t, b.engine.Withdraw(ctx, citizen(b.withAddress), id, ""), apierr.ApplicationState)
	a, _ := b.engine.Get(ctx, id)
	if a.Status != process.StatusWithdrawn || a.DecidedAt == nil {
		t.Fatalf("application %+v", a)
	}
	_, err := b.engine.Decide(ctx, officerA, task.ID, process.DecideRequest{Decision: "approve"})
	wantCode(t, err, apierr.TaskClosed)
	if tasks, _ := b.engine.Inbox(ctx, officerA, process.InboxFilter{}); len(tasks) != 0 {
		t.Fatal("a withdrawn application's task is still in the inbox")
	}
	var timers int
	b.pool.QueryRow(ctx, `SELECT count(*) FROM process_timer WHERE application_id = $1`, id).Scan(&timers)
	if timers != 0 {
		t.Fatalf("%d timers left after the withdrawal", timers)
	}
}

func TestDeadlineEscalates(t *testing.T) {
	ctx := context.Background()
	b, clk := reviewSetup(t)
	id := submitTo(t, b.engine, "reviewed-certificate", b.withAddress, "k")
	waitDecided(t, b.engine, id)
	task := openTask(t, b, officerA)
	b.engine.Claim(ctx, officerA, task.ID, "")

	clk.Advance(50 * time.Hour) // Wednesday noon: not yet due
	if n, _ := b.engine.FireTimers(ctx); n != 0 {
		t.Fatalf("fired %d timers before the deadline", n)
	}
	clk.Advance(24 * time.Hour) // Thursday: overdue
	if overdue, _ := b.engine.Inbox(ctx, officerA, process.InboxFilter{Overdue: true}); len(overdue) != 1 {
		t.Fatalf("%d overdue tasks, want 1", len(overdue))
	}
	if n, err := b.engine.FireTimers(ctx); err != nil || n != 1 {
		t.Fatalf("fired %d (%v), want 1", n, err)
	}
	if tasks, _ := b.engine.Inbox(ctx, officerA, process.InboxFilter{}); len(tasks) != 0 {
		t.Fatal("the escalated task stayed with the officer")
	}
	escalated := openTask(t, b, supervisor)
	if escalated.ID != task.ID || escalated.Status != process.TaskOpen || escalated.EscalatedAt == nil {
		t.Fatalf("escalated task %+v", escalated)
	}
	var notices int
	b.pool.QueryRow(ctx, `SELECT count(*) FROM outbox_event WHERE topic = 'notify.officer.escalation' AND key = $1`, task.ID.String()).Scan(&notices)
	if notices != 1 {
		t.Fatalf("%d escalation notices, want 1", notices)
	}
	// The supervisor decides.
	b.engine.Claim(ctx, supervisor, task.ID, "")
	if _, err := b.engine.Decide(ctx, supervisor, task.ID, process.DecideRequest{Decision: "approve"}); err != nil {
		t.Fatal(err)
	}
	if a := waitDecided(t, b.engine, id); a.Status != process.StatusWaiting {
		t.Fatalf("status %s", a.Status)
	}
}

// flakyIssuer fails the first n documents.
type flakyIssuer struct {
	process.DocumentIssuer
	failures atomic.Int32
}

func (f *flakyIssuer) Issue(ctx context.Context, tx pgx.Tx, spec document.Spec) (document.Document, error) {
	if f.failures.Add(-1) >= 0 {
		return document.Document{}, errors.New("signing device unavailable")
	}
	return f.DocumentIssuer.Issue(ctx, tx, spec)
}

func TestFailedStepRetriedByOperator(t *testing.T) {
	ctx := context.Background()
	flaky := &flakyIssuer{}
	flaky.failures.Store(3)
	b, _ := setupWith(t, 1, options{
		config: func(c *process.Config) { c.MaxAttempts = 3; c.RetryBase = 10 * time.Millisecond },
		docs:   func(d process.DocumentIssuer) process.DocumentIssuer { flaky.DocumentIssuer = d; return flaky },
	})
	id := submit(t, b.engine, b.withAddress, "k").ID
	waitUntil(t, b.engine, id, "fails after 3 attempts", func(status string) bool { return status == process.StatusFailed })
	in, err := b.engine.Inspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var errorsSeen int
	for _, s := range in.Application.Timeline {
		if s.Outcome == "error" && s.Name == "document.issue" {
			errorsSeen++
			if !strings.Contains(s.Detail["error"].(string), "signing device unavailable") {
				t.Fatalf("failure detail %v", s.Detail)
			}
		}
	}
	if errorsSeen != 3 {
		t.Fatalf("%d failed attempts on the timeline, want 3", errorsSeen)
	}
	if failed, _ := b.engine.Failed(ctx, 10); len(failed) != 1 || failed[0].ID != id {
		t.Fatalf("failed list %v", failed)
	}
	wantCode(t, b.engine.Cancel(ctx, uuid.New(), "operator:test", "x"), apierr.ApplicationNotFound)
	if err := b.engine.Retry(ctx, id, "operator:test"); err != nil {
		t.Fatal(err)
	}
	a := waitDecided(t, b.engine, id)
	if a.Status != process.StatusCompleted {
		t.Fatalf("status %s after the retry", a.Status)
	}
	wantCode(t, b.engine.Retry(ctx, id, "operator:test"), apierr.ApplicationState)
	wantCode(t, b.engine.Cancel(ctx, id, "operator:test", "x"), apierr.ApplicationState)
}

func TestOperatorCancels(t *testing.T) {
	ctx := context.Background()
	b, _ := reviewSetup(t)
	id := submitTo(t, b.engine, "reviewed-certificate", b.withAddress, "k")
	waitDecided(t, b.engine, id)
	if err := b.engine.Cancel(ctx, id, "operator:test", "duplicate of another application"); err != nil {
		t.Fatal(err)
	}
	in, _ := b.engine.Inspect(ctx, id)
	if in.Application.Status != process.StatusCancelled || in.Tasks[0].Status != process.TaskCancelled || len(in.Timers) != 0 {
		t.Fatalf("after cancel: %+v", in)
	}
}

// TestReviewOutputs: what the officer records when approving is checked
// against the step's outputs schema and reaches the document.
func TestReviewOutputs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := strings.Replace(string(reviewed(t)), "id: reviewed-certificate", "id: numbered-certificate", 1)
	src = strings.Replace(src, `    refusals: [applicant_not_found]
`, `    refusals: [applicant_not_found]
    outputs:
      type: object
      required: [copies]
      additionalProperties: false
      properties:
        copies: {type: integer, minimum: 1, maximum: 5}
`, 1)
	src = strings.Replace(src, `  - id: cooling
    type: wait
    after: PT1H
`, "", 1)
	src = strings.Replace(src, `      fields:
`, `      fields:
        copies: review.review.copies
`, 1)
	b, _ := setupWith(t, 1, options{services: [][]byte{[]byte(src)}})
	id := submitTo(t, b.engine, "numbered-certificate", b.withAddress, "k")
	waitUntil(t, b.engine, id, "is in review", func(s string) bool { return s == process.StatusInReview })
	task := openTask(t, b, officerA)
	if _, err := b.engine.Claim(ctx, officerA, task.ID, ""); err != nil {
		t.Fatal(err)
	}
	_, err := b.engine.Decide(ctx, officerA, task.ID, process.DecideRequest{Decision: "approve"})
	wantField(t, err, "/outputs/copies", apierr.FieldRequired)
	_, err = b.engine.Decide(ctx, officerA, task.ID, process.DecideRequest{Decision: "approve", Outputs: map[string]any{"copies": 9}})
	wantField(t, err, "/outputs/copies", apierr.FieldFormat)
	_, err = b.engine.Decide(ctx, officerA, task.ID, process.DecideRequest{Decision: "approve", Outputs: map[string]any{"copies": 2, "x": 1}})
	wantField(t, err, "/outputs/x", apierr.FieldUnknown)
	_, err = b.engine.Decide(ctx, officerA, task.ID, process.DecideRequest{Decision: "refuse", Outputs: map[string]any{"copies": 2}})
	wantField(t, err, "/outputs", apierr.FieldUnknown)
	if _, err := b.engine.Decide(ctx, officerA, task.ID, process.DecideRequest{Decision: "approve", Outputs: map[string]any{"copies": 2}}); err != nil {
		t.Fatal(err)
	}
	a := waitDecided(t, b.engine, id)
	if a.Status != process.StatusCompleted || a.DocumentID == nil {
		t.Fatalf("after approval: %s", a.Status)
	}
	var copies float64
	if err := b.pool.QueryRow(ctx, `WITH d AS (SELECT split_part(jws, '.', 2) AS p FROM document WHERE id = $1)
		SELECT (f->>'value')::float FROM d,
			jsonb_array_elements((convert_from(decode(translate(p, '-_', '+/') || repeat('=', (4 - length(p) % 4) % 4), 'base64'), 'UTF8')::jsonb)->'fields'->'fields') f
		WHERE f->>'name' = 'copies'`, *a.DocumentID).Scan(&copies); err != nil || copies != 2 {
		t.Fatalf("the document's copies: %v %v", copies, err)
	}
}
