package process_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/identity"
)

// TestListByApplicantPagesNewestFirst: a citizen's list holds only their
// own applications, newest first, in pages that follow one another.
func TestListByApplicantPagesNewestFirst(t *testing.T) {
	t.Parallel()
	b, _ := setup(t, 1)
	ctx := context.Background()
	var ids []string
	for _, key := range []string{"l1", "l2", "l3"} {
		ids = append(ids, submit(t, b.engine, b.withAddress, key).ID.String())
	}
	submit(t, b.engine, b.withoutAddress, "other")

	first, err := b.engine.ListByApplicant(ctx, b.withAddress.String(), i18n.EN, time.Time{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 2 || first[0].ID.String() != ids[2] || first[1].ID.String() != ids[1] {
		t.Fatalf("first page = %+v; want the two newest", first)
	}
	if first[0].Service.Title != "Certificate of registered address" || first[0].StatusText == "" {
		t.Errorf("summary = %+v; want the English title and status text", first[0])
	}
	next, err := b.engine.ListByApplicant(ctx, b.withAddress.String(), i18n.EN, first[1].SubmittedAt, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(next) != 1 || next[0].ID.String() != ids[0] {
		t.Errorf("second page = %+v; want the oldest", next)
	}
	all, err := b.engine.ListByApplicant(ctx, b.withAddress.String(), i18n.KK, time.Time{}, 10_000)
	if err != nil || len(all) != 3 {
		t.Errorf("a limit over the cap = %d, %v; want all three", len(all), err)
	}
	none, err := b.engine.ListByApplicant(ctx, b.unknown.String(), i18n.KK, time.Time{}, 10)
	if err != nil || len(none) != 0 {
		t.Errorf("someone without applications = %+v, %v", none, err)
	}
}

// TestInputsOnlyForTheApplicant: the applicant reads what they entered (an
// audited read); anyone else is told the application does not exist.
func TestInputsOnlyForTheApplicant(t *testing.T) {
	t.Parallel()
	b, _ := setup(t, 1)
	ctx := context.Background()
	a := submit(t, b.engine, b.withAddress, "in1")
	got, err := b.engine.Inputs(ctx, citizen(b.withAddress), a.ID, "req-1")
	if err != nil || got["iin"] != b.withAddress.String() {
		t.Fatalf("Inputs = %v, %v", got, err)
	}
	var audited int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_event WHERE action = 'process.application.read_inputs' AND subject_iin = $1 AND request_id = 'req-1'`,
		b.withAddress.String()).Scan(&audited); err != nil || audited != 1 {
		t.Errorf("audit events = %d, %v; want 1", audited, err)
	}
	var e *apierr.Error
	if _, err := b.engine.Inputs(ctx, citizen(b.withoutAddress), a.ID, ""); !errors.As(err, &e) || e.Code != apierr.ApplicationNotFound {
		t.Errorf("another citizen's Inputs: %v; want not found", err)
	}
	officer := identity.Principal{Kind: identity.Officer, Subject: "x", Agency: "mia"}
	if _, err := b.engine.Inputs(ctx, officer, a.ID, ""); !errors.As(err, &e) || e.Code != apierr.Forbidden {
		t.Errorf("an officer's Inputs: %v; want forbidden", err)
	}
}
