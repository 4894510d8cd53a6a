package demo

import (
	"io/fs"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/servicedef"
	"github.com/ortaq/ortaq/services"
)

// TestDemoServices: every definition in services/ lints clean against the
// demo's agencies and registries, and its declared cases pass in simulation
// (the engine runs them in `ortaq service test services`, part of ./dev test).
func TestDemoServices(t *testing.T) {
	files, err := fs.Glob(services.Files, "*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no demo services: %v", err)
	}
	for _, name := range files {
		src, err := fs.ReadFile(services.Files, name)
		if err != nil {
			t.Fatal(err)
		}
		plan, problems := servicedef.Compile(src, Environment())
		for _, p := range problems {
			t.Error(p.Format("services/" + name))
		}
		if plan == nil {
			continue
		}
		for _, r := range plan.RunTests(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)) {
			if !r.Passed {
				t.Errorf("services/%s: test %q: %v", name, r.Name, r.Problems)
			}
		}
	}
}
