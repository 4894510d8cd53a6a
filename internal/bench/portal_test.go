package bench_test

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ortaq/ortaq/internal/bench"
)

// TestPortalRuns checks that the portal benchmark renders the pages as
// their people (no page skipped for a wrong status) and ends with its
// summary line; it measures nothing.
func TestPortalRuns(t *testing.T) {
	var out bytes.Buffer
	if err := bench.Portal(t.Context(), bench.PortalConfig{People: 200, Requests: 2}, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "(skipped)") {
		t.Errorf("a page did not render for its person:\n%s", out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	m := regexp.MustCompile(`^bench=portal pages=(\d+) `).FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("no summary line: %q\n%s", last, out.String())
	}
	if n, _ := strconv.Atoi(m[1]); n < 5 {
		t.Errorf("only %d pages rendered:\n%s", n, out.String())
	}
}
