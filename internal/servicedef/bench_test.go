package servicedef

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// largeService is a definition with 100 inputs and 50 rules, the size the
// service-constructor issue sets its targets on.
func largeService() []byte {
	var b strings.Builder
	b.WriteString(`apiVersion: ortaq.kz/v1
kind: Service
id: large
version: 1
owner: mia
audience: business
category: test
texts:
  title: {kk: a, ru: b, en: c}
  description: {kk: a, ru: b, en: c}
  result: {kk: a, ru: b, en: c}
  refusals:
    no: {kk: a, ru: b, en: c}
form:
  schema:
    type: object
    properties:
`)
	for i := range 100 {
		fmt.Fprintf(&b, "      f%d: {type: integer}\n", i)
	}
	b.WriteString("  fields:\n")
	for i := range 100 {
		fmt.Fprintf(&b, "    - {name: f%d, label: {kk: a, ru: b, en: c}}\n", i)
	}
	b.WriteString("data:\n  - {name: person, registry: population, key: \"string(inputs.f0)\", basis: law}\nrules:\n  derive:\n")
	for i := range 25 {
		fmt.Fprintf(&b, "    - {name: d%d, expr: \"inputs.f%d * 2 + inputs.f%d\"}\n", i, i, i+1)
	}
	b.WriteString("  eligibility:\n")
	for i := range 25 {
		fmt.Fprintf(&b, "    - {name: e%d, expr: \"derived.d%d >= 0 && inputs.f%d < 1000000\", refusal: no}\n", i, i, i+50)
	}
	b.WriteString(`steps:
  - {id: check, type: decide}
  - id: issue
    type: issue
    document: {kind: large, fields: {total: "derived.d0 + derived.d1"}}
sla: {target: PT5M, legalDays: 1}
tests:
  - name: t
    inputs: {f0: 1, f1: 2}
    expect: {outcome: completed, document: {total: 8}}
`)
	return []byte(b.String())
}

// TestLargeServiceRuns keeps the benchmark's service honest: integer inputs
// from JSON reach CEL as int.
func TestLargeServiceRuns(t *testing.T) {
	plan, problems := Compile(largeService(), demoEnv())
	if problems != nil {
		t.Fatalf("%v", problems)
	}
	for _, r := range plan.RunTests(time.Now()) {
		if !r.Passed {
			t.Errorf("%s: %v", r.Name, r.Problems)
		}
	}
}

func BenchmarkCompileLarge(b *testing.B) {
	src := largeService()
	env := demoEnv()
	if _, problems := Compile(src, env); problems != nil {
		b.Fatalf("%v", problems)
	}
	b.ReportAllocs()
	for b.Loop() {
		Compile(src, env)
	}
}

func BenchmarkEvaluateLarge(b *testing.B) {
	plan, problems := Compile(largeService(), demoEnv())
	if problems != nil {
		b.Fatalf("%v", problems)
	}
	inputs := map[string]any{}
	for i := range 100 {
		inputs[fmt.Sprintf("f%d", i)] = int64(i)
	}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		a := &Activation{Inputs: inputs, Now: now}
		if err := plan.Derive(a); err != nil {
			b.Fatal(err)
		}
		if refusal, err := plan.Decide(a); err != nil || refusal != "" {
			b.Fatalf("%q %v", refusal, err)
		}
	}
}
