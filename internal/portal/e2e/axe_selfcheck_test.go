package e2e_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestAxeFindsViolations guards the guard: a page with a known violation
// (an image without alternative text, an input without a label) fails the
// check, so a silent axe (not loaded, wrong rules) cannot pass every page.
func TestAxeFindsViolations(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><html lang="en"><head><title>bad</title></head><body><main><h1>Bad</h1><img src="/x.png"><input id="q"></main></body></html>`))
	}))
	defer srv.Close()
	rec := &recorder{TB: t}
	b := newBrowserOn(rec, srv.URL)
	b.visit("/")
	joined := strings.Join(rec.errors, "\n")
	for _, rule := range []string{"image-alt", "label"} {
		if !strings.Contains(joined, rule) {
			t.Errorf("axe did not report %s; it reported:\n%s", rule, joined)
		}
	}
}

// recorder is a testing.TB that keeps errors instead of failing.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
