package app_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ortaq/ortaq/internal/apptest"
	"github.com/ortaq/ortaq/internal/cli"
	"github.com/ortaq/ortaq/internal/process"
)

// ortaq runs the command line against r's database.
func ortaq(t *testing.T, r *apptest.Running, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut strings.Builder
	args = append(args[:2:2], append([]string{"--database-url", r.DB.URL, "--log-level", "warn"}, args[2:]...)...)
	code = cli.Main(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// waitFor polls an application until it has the status.
func waitFor(t *testing.T, e *process.Engine, id uuid.UUID, status string) process.Application {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		a, err := e.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if a.Status == status {
			return a
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("application %s is %s after 30s, want %s", a.Number, a.Status, status)
		}
	}
}

// TestProcessCommands: `ortaq process inspect` reports a completed
// application with its applicant masked; retry and cancel refuse it; an
// application made failed shows in `ortaq process failed` with its error,
// and `ortaq process retry` sends it back to work until it completes.
func TestProcessCommands(t *testing.T) {
	t.Parallel()
	r := apptest.Start(t, 1, 10)
	ctx := context.Background()
	applicant := r.Sample.WithAddress.String()
	a, _, err := r.Engine.Submit(ctx, process.SubmitRequest{ServiceID: "address-certificate",
		Inputs: map[string]any{"iin": applicant}, IdempotencyKey: "process-cli"})
	if err != nil {
		t.Fatal(err)
	}
	a = waitFor(t, r.Engine, a.ID, process.StatusCompleted)
	id := a.ID.String()

	code, out, errOut := ortaq(t, r, "process", "inspect", id)
	if code != 0 {
		t.Fatalf("inspect exited %d: %s", code, errOut)
	}
	t.Logf("ortaq process inspect:\n%s", out)
	for _, want := range []string{a.Number, "address-certificate@1", "completed", "document.issue", "registry.read",
		"********" + applicant[8:], "end of the flow", "TIME", "DURATION", "Queued run: none"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect lacks %q", want)
		}
	}
	if strings.Contains(out, applicant) {
		t.Error("inspect shows the applicant's IIN without --show-personal-data")
	}
	if _, out, _ := ortaq(t, r, "process", "inspect", id, "--show-personal-data"); !strings.Contains(out, applicant) {
		t.Error("inspect --show-personal-data hides the applicant's IIN")
	}
	code, out, _ = ortaq(t, r, "process", "inspect", "--json", id)
	var in process.Inspection
	if err := json.Unmarshal([]byte(out), &in); code != 0 || err != nil || in.Application.Number != a.Number ||
		in.Applicant != "********"+applicant[8:] || len(in.Application.Timeline) == 0 {
		t.Errorf("inspect --json: exit %d, %v\n%s", code, err, out)
	}

	code, _, errOut = ortaq(t, r, "process", "retry", id)
	if code != 1 || !strings.Contains(errOut, "is completed") || !strings.Contains(errOut, "only a failed application can be retried") {
		t.Errorf("retry of a completed application: exit %d, %s", code, errOut)
	}
	code, _, errOut = ortaq(t, r, "process", "cancel", id, "--reason", "test")
	if code != 1 || !strings.Contains(errOut, "is completed") || !strings.Contains(errOut, "only an undecided or failed application") {
		t.Errorf("cancel of a completed application: exit %d, %s", code, errOut)
	}
	unknown := uuid.NewString()
	for _, sub := range []string{"inspect", "retry"} {
		code, _, errOut = ortaq(t, r, "process", sub, unknown)
		if code != 1 || !strings.Contains(errOut, "there is no application with id "+unknown) {
			t.Errorf("%s of an unknown id: exit %d, %s", sub, code, errOut)
		}
	}

	if code, out, _ := ortaq(t, r, "process", "failed"); code != 0 || !strings.Contains(out, "No failed applications") {
		t.Errorf("failed with none: exit %d\n%s", code, out)
	}
	// Made failed by hand, as the engine does after a step's last attempt.
	if _, err := r.DB.Pool.Exec(ctx, `UPDATE application SET status = 'failed', decided_at = now() WHERE id = $1`, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.DB.Pool.Exec(ctx, `UPDATE application SET timeline = timeline || jsonb_build_array(jsonb_build_object('step', 'failed', 'actor', 'system',
		'started_at', now(), 'finished_at', now(), 'outcome', 'error', 'attempt', 3, 'detail', '{"error": "boom", "step": "document.issue"}'::jsonb))
		WHERE id = $1`, a.ID); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = ortaq(t, r, "process", "failed", "--limit", "5")
	t.Logf("ortaq process failed:\n%s", out)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, a.Number) || !strings.Contains(out, "boom") ||
		!strings.Contains(out, "document.issue") || !strings.Contains(out, "retry with: ortaq process retry ID") {
		t.Errorf("failed: exit %d\n%s%s", code, out, errOut)
	}
	if _, out, _ := ortaq(t, r, "process", "inspect", id); !strings.Contains(out, "error: boom") || !strings.Contains(out, "ortaq process retry "+id) {
		t.Errorf("inspect of a failed application lacks its error or the next step:\n%s", out)
	}

	code, out, errOut = ortaq(t, r, "process", "retry", id, "--actor", "operator:test")
	if code != 0 || !strings.Contains(out, a.Number) || !strings.Contains(out, "ortaq process inspect "+id) {
		t.Fatalf("retry: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("ortaq process retry:\n%s", out)
	a = waitFor(t, r.Engine, a.ID, process.StatusCompleted)
	var retried bool
	for _, s := range a.Timeline {
		retried = retried || (s.Name == "retried" && s.Actor == "operator:test")
	}
	if !retried {
		t.Errorf("the timeline does not show the retry: %+v", a.Timeline)
	}
}

// TestProcessCancelCommand: an application waiting for an officer is
// cancelled with the operator's reason; its task is cancelled.
func TestProcessCancelCommand(t *testing.T) {
	t.Parallel()
	r := apptest.Start(t, 1, 10)
	ctx := context.Background()
	a, _, err := r.Engine.Submit(ctx, process.SubmitRequest{ServiceID: "criminal-record-certificate",
		Inputs: map[string]any{"iin": r.Sample.WithAddress.String(), "purpose": "employment", "name_changed": false}, IdempotencyKey: "cancel-cli"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, r.Engine, a.ID, process.StatusInReview)
	id := a.ID.String()
	code, out, errOut := ortaq(t, r, "process", "inspect", id)
	if code != 0 || !strings.Contains(out, "Tasks (1)") || !strings.Contains(out, "special-records-officer") {
		t.Errorf("inspect of an application in review: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = ortaq(t, r, "process", "cancel", id, "--reason", "duplicate of another application", "--actor", "operator:test")
	if code != 0 || !strings.Contains(out, "is cancelled") {
		t.Fatalf("cancel: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("ortaq process cancel:\n%s", out)
	in, err := r.Engine.Inspect(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	last := in.Application.Timeline[len(in.Application.Timeline)-1]
	if in.Application.Status != process.StatusCancelled || len(in.Tasks) != 1 || in.Tasks[0].Status != "cancelled" ||
		last.Actor != "operator:test" || last.Detail["reason"] != "duplicate of another application" {
		t.Errorf("after cancel: %s, tasks %+v, last step %+v", in.Application.Status, in.Tasks, last)
	}
	if code, _, errOut := ortaq(t, r, "process", "cancel", id, "--reason", "again"); code != 1 || !strings.Contains(errOut, "is cancelled") {
		t.Errorf("second cancel: exit %d, %s", code, errOut)
	}
}
