package bench_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/bench"
)

// TestExchangeRuns checks that the exchange benchmark works end to end and
// ends with its summary line; it measures nothing (timing belongs to the
// command, on a quiet machine).
func TestExchangeRuns(t *testing.T) {
	var out bytes.Buffer
	err := bench.Exchange(t.Context(), bench.ExchangeConfig{Concurrency: 4, Duration: 300 * time.Millisecond, Rate: 50, LatencyFor: 400 * time.Millisecond}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	for _, key := range []string{"bench=exchange", "gateway_rps=", "added_p50_ms=", "added_p99_ms=", "errors=0"} {
		if !strings.Contains(last, key) {
			t.Errorf("summary lacks %s: %q\n%s", key, last, out.String())
		}
	}
}

// TestExchangeWithConsentRuns: the same with a consent on every call; the
// access log gets every call the provider's gateway passed.
func TestExchangeWithConsentRuns(t *testing.T) {
	var out bytes.Buffer
	err := bench.Exchange(t.Context(), bench.ExchangeConfig{Concurrency: 4, Duration: 300 * time.Millisecond, Rate: 50,
		LatencyFor: 400 * time.Millisecond, Consent: true}, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	for _, key := range []string{"errors=0", "consent_check_p99_us=", "access_log_uses="} {
		if !strings.Contains(last, key) {
			t.Errorf("summary lacks %s: %q\n%s", key, last, out.String())
		}
	}
	if strings.Contains(last, "access_log_uses=0 ") {
		t.Errorf("nothing reached the access log: %s", last)
	}
}
