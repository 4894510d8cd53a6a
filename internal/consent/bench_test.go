package consent_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/consent"
)

// BenchmarkCheck times Ledger.Check inside the caller's transaction (the
// consent lookup and the consent.used audit row), on a person with 20
// consents to the requester; it reports the p99 of the check alone.
func BenchmarkCheck(b *testing.B) {
	f := setup(b)
	ctx := context.Background()
	subject := "900517400055"
	for i := range 20 {
		c, err := f.ledger.Ask(ctx, consent.Request{SubjectIIN: subject, Items: []string{"population.last_name", "population.first_name"},
			Purpose: "loan application", ValidUntil: start.AddDate(0, 1, 0)}, "system:halyk-loans", "system:halyk-loans", "")
		if err != nil {
			b.Fatal(err)
		}
		if i%2 == 0 {
			if _, err := f.ledger.Approve(ctx, c.ID, "", citizen(subject), ""); err != nil {
				b.Fatal(err)
			}
		}
	}
	need := consent.Need{Subject: subject, Requester: "system:halyk-loans", Items: []string{"population.last_name"}, Purpose: "loan application"}
	var took []time.Duration
	for b.Loop() {
		tx, err := f.pool.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if _, err := f.ledger.Check(ctx, tx, need); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(t0))
		_ = tx.Rollback(ctx)
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
}
