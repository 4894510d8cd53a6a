package bench

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/pgtest"
)

// TestProcessRuns checks that the benchmark works end to end through the
// HTTP API and ends with its summary line; it measures nothing (timing belongs
// to `ortaq bench process`).
func TestProcessRuns(t *testing.T) {
	db := pgtest.New(t)
	var out strings.Builder
	cfg := ProcessConfig{N: 50, Concurrency: 4, Workers: 2, Rate: 20, Duration: time.Second, DatabaseURL: db.URL}
	if err := Process(context.Background(), cfg, &out); err != nil {
		t.Fatalf("Process: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	if !regexp.MustCompile(`^bench=process( [a-z0-9_]+=[0-9.]+)+$`).MatchString(last) {
		t.Fatalf("last line is not a key=value summary: %q", last)
	}
	for _, key := range []string{"n", "concurrency", "workers", "apps_per_s", "p50_ms", "p95_ms", "p99_ms", "tx_per_app",
		"commit_per_s", "baseline_commit_per_s", "commit_ratio", "rate", "rate_p50_ms", "rate_p95_ms", "rate_p99_ms", "documents"} {
		if !strings.Contains(last, " "+key+"=") {
			t.Errorf("summary lacks %s: %q", key, last)
		}
	}
	// 50 in the throughput phase, 20 in the second at 20/s.
	if !strings.Contains(last, " documents=70") || !strings.Contains(last, " n=50 ") || !strings.Contains(last, " rate=20 ") {
		t.Errorf("summary does not count 50 + 20 applications: %q", last)
	}
	if n := strings.Count(out.String(), "bench=process"); n != 1 {
		t.Errorf("%d summary lines; want exactly one", n)
	}
}
