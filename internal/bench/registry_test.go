package bench

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/pgtest"
)

// TestRegistryRuns checks that the registry benchmark works, audits every
// API read and ends with its summary line; it measures nothing.
func TestRegistryRuns(t *testing.T) {
	db := pgtest.New(t)
	var out strings.Builder
	cfg := RegistryConfig{People: 3000, Reads: 60, Concurrency: 4, Rate: 100, Duration: 300 * time.Millisecond, DatabaseURL: db.URL}
	if err := Registry(context.Background(), cfg, &out); err != nil {
		t.Fatalf("Registry: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	if !regexp.MustCompile(`^bench=registry( [a-z0-9_]+=[0-9.]+)+$`).MatchString(last) || !strings.Contains(last, " audited=90") {
		t.Errorf("last line is not a key=value summary with 90 audited reads: %q", last)
	}
}
