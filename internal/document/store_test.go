package document_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/agency"
	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/document"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m, app.Schemas()...) }

// TestIssueOncePerSource: issuing again for the same source returns the
// first document and stores nothing new, even with other fields.
func TestIssueOncePerSource(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	bin, _ := iin.NewBIN(time.Date(2023, 9, 1, 0, 0, 0, 0, time.UTC), '4', '0', 90001)
	if err := agency.NewStore(db.Pool).Save(ctx, agency.Agency{ID: "mia", BIN: bin, Name: i18n.Text{KK: "a", RU: "b", EN: "c"}}); err != nil {
		t.Fatal(err)
	}
	store := document.NewStore(db.Pool, clock.Real{})
	if _, err := store.EnsureKey(ctx, "mia"); err != nil {
		t.Fatal(err)
	}
	subject, _ := iin.Parse("900101300017")
	var ids []string
	for i, fields := range []string{`{"n":1}`, `{"n":2}`} {
		err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			d, err := store.Issue(ctx, tx, document.Spec{Kind: "k", Issuer: "mia", SubjectIIN: subject, Source: "application:x:step", Fields: json.RawMessage(fields)})
			ids = append(ids, d.ID.String())
			return err
		})
		if err != nil {
			t.Fatalf("issue %d: %v", i, err)
		}
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM document`).Scan(&n); err != nil || n != 1 || ids[0] != ids[1] {
		t.Errorf("documents %d (%v), ids %v; want one document returned twice", n, err, ids)
	}
}
