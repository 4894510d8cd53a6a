package bench

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m, app.Schemas()...) }

// TestApplyRuns checks that the benchmark works and ends with its summary
// line; it measures nothing (timing belongs to `ortaq bench apply`).
func TestApplyRuns(t *testing.T) {
	db := pgtest.New(t)
	var out strings.Builder
	if err := Apply(context.Background(), ApplyConfig{N: 40, Concurrency: 4, Workers: 2, DatabaseURL: db.URL}, &out); err != nil {
		t.Fatalf("Apply: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	if !regexp.MustCompile(`^bench=apply( [a-z0-9_]+=[0-9.]+)+$`).MatchString(last) || !strings.Contains(last, " documents=40") {
		t.Errorf("last line is not a key=value summary with 40 documents: %q", last)
	}
}
