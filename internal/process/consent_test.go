package process_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/consent"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/process"
)

// anyItem accepts every item a consent may name.
type anyItem struct{}

func (anyItem) KnownItem(context.Context, string) (bool, error) { return true, nil }

// guardianCertificate reads a second person, named in the form, with that
// person's consent rather than a legal basis.
func guardianCertificate(t testing.TB) []byte {
	src := string(variant(t, "guardian-certificate", 1))
	src = strings.Replace(src, `    properties:
`, `    properties:
      guardian_iin: {type: string, pattern: "^[0-9]{12}$"}
`, 1)
	src = strings.Replace(src, `  fields:
`, `  fields:
    - name: guardian_iin
      label: {kk: Қамқоршының ЖСН, ru: ИИН опекуна, en: Guardian's IIN}
`, 1)
	src = strings.Replace(src, `rules:
`, `  - name: guardian
    registry: population
    key: inputs.guardian_iin
    when: has(inputs.guardian_iin)
    consent: true
rules:
`, 1)
	return []byte(src)
}

// TestAnotherPersonsDataNeedsTheirConsent: the applicant's own data needs
// no consent; another person's does, and without it the application stops
// for an operator at once (no retries that would repeat the refusal).
func TestAnotherPersonsDataNeedsTheirConsent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var ledger *consent.Ledger
	b, engines := setupWith(t, 1, options{services: [][]byte{guardianCertificate(t)}, config: func(c *process.Config) {
		c.Consents = consentsOf(&ledger)
	}})
	ledger = consent.New(b.pool, clock.Real{}, anyItem{}, nil)
	e := engines[0]
	submitWith := func(key string, inputs map[string]any) process.Application {
		a, _, err := e.Submit(ctx, process.SubmitRequest{ServiceID: "guardian-certificate", Inputs: inputs, IdempotencyKey: key})
		if err != nil {
			t.Fatal(err)
		}
		return waitDecided(t, e, a.ID)
	}
	own := submitWith("own", map[string]any{"iin": b.withAddress.String()})
	if own.Status != process.StatusCompleted {
		t.Fatalf("own data only: %s", own.Status)
	}
	denied := submitWith("denied", map[string]any{"iin": b.withAddress.String(), "guardian_iin": b.withoutAddress.String()})
	if denied.Status != process.StatusFailed {
		t.Fatalf("without the guardian's consent: %s", denied.Status)
	}
	attempts := 0
	for _, s := range denied.Timeline {
		if s.Outcome == "error" {
			attempts++
		}
	}
	if attempts != 1 {
		t.Errorf("a refused consent was tried %d times, want once", attempts)
	}

	// The guardian consents to the agency, for the service.
	c, err := ledger.Ask(ctx, consent.Request{SubjectIIN: b.withoutAddress.String(), Items: []string{
		"population.address", "population.birth_date", "population.first_name", "population.iin", "population.last_name", "population.patronymic", "population.sex",
	}, Purpose: "service:guardian-certificate", ValidUntil: time.Now().AddDate(0, 1, 0)}, "agency:mia", "officer:mia-0001", "")
	if err != nil {
		t.Fatal(err)
	}
	guardian := identity.Principal{Kind: identity.Citizen, Subject: b.withoutAddress.String()}
	if _, err := ledger.Approve(ctx, c.ID, "", guardian, ""); err != nil {
		t.Fatal(err)
	}
	allowed := submitWith("allowed", map[string]any{"iin": b.withAddress.String(), "guardian_iin": b.withoutAddress.String()})
	if allowed.Status != process.StatusCompleted {
		t.Fatalf("with the guardian's consent: %s", allowed.Status)
	}
	var used int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_event WHERE action = 'consent.used' AND subject_iin = $1`, b.withoutAddress.String()).Scan(&used); err != nil || used != 1 {
		t.Errorf("consent uses recorded: %d %v", used, err)
	}
}

// consentsOf checks with the ledger *l points to once it exists: the
// ledger needs the test's database, the engine is built with it.
func consentsOf(l **consent.Ledger) process.ConsentChecker { return lateLedger{l} }

type lateLedger struct{ l **consent.Ledger }

func (c lateLedger) Check(ctx context.Context, tx pgx.Tx, n consent.Need) (consent.Basis, error) {
	return (*c.l).Check(ctx, tx, n)
}
