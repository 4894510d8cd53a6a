package registry_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/registry"
)

// TestIndexedSearch: an attribute declared indexed has its index, a search
// by it answers from the records' current versions only (a record whose
// value changed since, or that was cancelled, is not found by the old
// value), and the planner can use the index for it.
func TestIndexedSearch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := newStore(t)
	ids := testIINs(3)
	rec := func(n int, person string) map[string]any {
		return map[string]any{"record_id": fmt.Sprintf("CR-%08d", n), "person_iin": person, "article": "188 part 2",
			"convicted_on": "2020-05-01", "expunged": false}
	}
	apply := func(op string, n int, person string) {
		t.Helper()
		c := registry.Change{Registry: "criminal_records", Key: fmt.Sprintf("CR-%08d", n), Op: op, Actor: "court", Basis: "sentence"}
		if op != registry.OpCancel {
			c.Data = rec(n, person)
		}
		if _, err := s.ApplyNow(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for n := 1; n <= 40; n++ {
		apply(registry.OpCreate, n, ids[n%3])
	}
	apply(registry.OpCorrect, 1, ids[2]) // was ids[1]
	apply(registry.OpCancel, 4, "")      // was ids[1]

	var indexes int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE tablename = 'registry_record_version'
		AND indexdef LIKE '%person_iin%' AND indexdef LIKE '%criminal_records%'`).Scan(&indexes); err != nil || indexes != 1 {
		t.Fatalf("indexes on criminal_records.person_iin: %d %v", indexes, err)
	}
	search := func(person string) []string {
		t.Helper()
		var keys []string
		err := pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error {
			recs, _, err := s.Search(ctx, tx, "criminal_records", registry.Query{Equal: map[string]any{"person_iin": person}, Limit: 100},
				registry.Access{Actor: "officer:gpo-1", Purpose: "test"})
			for _, r := range recs {
				keys = append(keys, r.Key)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	var want []string
	for n := 1; n <= 40; n++ {
		if n%3 == 1 && n != 1 && n != 4 {
			want = append(want, fmt.Sprintf("CR-%08d", n))
		}
	}
	if got := search(ids[1]); !slices.Equal(got, want) {
		t.Errorf("by %s:\n got %v\nwant %v", ids[1], got, want)
	}
	if got := search(ids[2]); !slices.Contains(got, "CR-00000001") || len(got) != 14 {
		t.Errorf("by %s: %v", ids[2], got)
	}
	if got := search("000000000000"); len(got) != 0 {
		t.Errorf("by nobody: %v", got)
	}
	// The planner can answer it from the index (with sequential scans
	// priced out, as they would be on a registry of any size).
	var plan strings.Builder
	err := pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `EXPLAIN SELECT key FROM registry_record_version WHERE registry = 'criminal_records' AND data->>'person_iin' = $1`, ids[1])
		if err != nil {
			return err
		}
		for rows.Next() {
			var line string
			rows.Scan(&line)
			plan.WriteString(line + "\n")
		}
		return rows.Err()
	})
	if err != nil || !strings.Contains(plan.String(), "registry_attr_criminal_records_person_iin") {
		t.Errorf("plan does not use the index (%v):\n%s", err, plan.String())
	}
}
