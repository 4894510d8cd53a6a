package servicedef

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

var update = flag.Bool("update", false, "rewrite the .golden files")

// TestGolden compiles every testdata/*.yaml and compares the plan, or the
// exact problems, with testdata/*.golden.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var got strings.Builder
			plan, problems := Compile(src, demoEnv())
			for _, p := range problems {
				got.WriteString(p.Format(filepath.Base(file)) + "\n")
			}
			if plan != nil {
				got.WriteString(plan.Describe())
				for _, r := range plan.RunTests(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)) {
					fmt.Fprintf(&got, "test %q: passed=%v outcome=%s refusal=%s %v\n", r.Name, r.Passed, r.Outcome, r.Refusal, r.Problems)
				}
			}
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if got.String() != string(want) {
				t.Errorf("%s changed; if intended, run go test ./internal/servicedef -update\n--- got\n%s--- want\n%s", golden, got.String(), want)
			}
		})
	}
}

// TestFormatSchemaPublished: docs/service-format.schema.json is the schema
// of the model, and every demo service validates against it.
func TestFormatSchemaPublished(t *testing.T) {
	got, err := json.MarshalIndent(FormatSchema(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	const path = "../../docs/service-format.schema.json"
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s is out of date: run go test ./internal/servicedef -update", path)
	}
	c := jsonschema.NewCompiler()
	var doc any
	if err := json.Unmarshal(want, &doc); err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource("format.json", doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("format.json")
	if err != nil {
		t.Fatalf("the format schema is not a valid JSON Schema: %v", err)
	}
	files, _ := filepath.Glob("../../services/*.yaml")
	for _, f := range append(files, "testdata/valid-review.yaml") {
		src, _ := os.ReadFile(f)
		root, _ := parseYAML(src)
		d := &decoder{budget: maxNodes}
		v, _ := d.toJSONValue(root)
		if err := schema.Validate(v); err != nil {
			t.Errorf("%s does not validate against the format schema: %s", f, SchemaErrors(err))
		}
	}
}
