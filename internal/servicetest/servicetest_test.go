package servicetest

import (
	"context"
	"io/fs"
	"strings"
	"testing"

	"github.com/ortaq/ortaq/internal/demo"
	"github.com/ortaq/ortaq/internal/servicedef"
	"github.com/ortaq/ortaq/services"
)

func TestRunThroughTheEngine(t *testing.T) {
	ctx := context.Background()
	r, err := Start(ctx, "")
	if err != nil {
		t.Fatalf("a private PostgreSQL is required: %v", err)
	}
	defer r.Close()
	src, err := fs.ReadFile(services.Files, "address-certificate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	plan, problems := servicedef.Compile(src, demo.Environment())
	if problems != nil {
		t.Fatal(problems)
	}
	results := r.Run(ctx, src, plan)
	if len(results) != len(plan.File.Tests) {
		t.Fatalf("%d results for %d cases", len(results), len(plan.File.Tests))
	}
	for _, res := range results {
		if !res.Passed || res.Simulated {
			t.Errorf("%q: passed=%v simulated=%v %v", res.Name, res.Passed, res.Simulated, res.Problems)
		}
	}

	// A changed rule makes a case fail, and the failure says why.
	wrong := strings.Replace(string(src), "refusal: no_registered_address", "refusal: applicant_not_found", 1)
	plan, problems = servicedef.Compile([]byte(wrong), demo.Environment())
	if problems != nil {
		t.Fatal(problems)
	}
	failed := 0
	for _, res := range r.Run(ctx, []byte(wrong), plan) {
		if !res.Passed {
			failed++
			if !strings.Contains(strings.Join(res.Problems, ";"), `refusal "applicant_not_found", expected "no_registered_address"`) {
				t.Errorf("failure does not say why: %v", res.Problems)
			}
		}
	}
	if failed != 1 {
		t.Errorf("%d cases failed; want 1", failed)
	}
}
