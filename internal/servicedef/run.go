package servicedef

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"
)

// TestResult is the outcome of one declared test case.
type TestResult struct {
	Name     string
	Passed   bool
	Outcome  string // what happened: completed, refused or returned
	Refusal  string
	Problems []string
	// Simulated is true when the case ran through the plan in memory rather
	// than through the engine.
	Simulated bool
}

// MaxStepsPerRun stops a plan that loops through review steps forever.
const MaxStepsPerRun = 1000

// RunTests runs the declared test cases by evaluating the plan: data comes
// from each case's registry fixtures, review steps take the case's decisions.
func (p *Plan) RunTests(now time.Time) []TestResult {
	var results []TestResult
	for _, tc := range p.File.Tests {
		r := TestResult{Name: tc.Name}
		outcome, refusal, doc, err := p.simulate(tc, tc.Clock(now))
		if err != nil {
			r.Problems = append(r.Problems, err.Error())
		}
		r.Outcome, r.Refusal = outcome, refusal
		if err == nil {
			r.Problems = append(r.Problems, Check(tc, outcome, refusal, doc)...)
		}
		r.Passed = len(r.Problems) == 0
		results = append(results, r)
	}
	return results
}

// Check compares what happened with what a test case expects.
func Check(tc TestCase, outcome, refusal string, doc map[string]any) []string {
	var problems []string
	if outcome != tc.Expect.Outcome {
		problems = append(problems, fmt.Sprintf("outcome %s, expected %s", outcome, tc.Expect.Outcome))
	}
	if tc.Expect.Refusal != "" && refusal != tc.Expect.Refusal {
		problems = append(problems, fmt.Sprintf("refusal %q, expected %q", refusal, tc.Expect.Refusal))
	}
	for _, name := range sortedKeys(tc.Expect.Document) {
		want := tc.Expect.Document[name].Value
		got, ok := doc[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("document has no field %q", name))
		} else if !sameJSON(got, want) {
			problems = append(problems, fmt.Sprintf("document field %q is %v, expected %v", name, jsonString(got), jsonString(want)))
		}
	}
	return problems
}

// simulate runs one case through the plan's steps.
func (p *Plan) simulate(tc TestCase, now time.Time) (outcome, refusal string, doc map[string]any, err error) {
	if p.Inputs != nil {
		if err := p.Inputs.Validate(tc.Inputs.Value); err != nil {
			return "", "", nil, fmt.Errorf("inputs do not match form.schema: %s", SchemaErrors(err))
		}
	}
	inputs := p.Normalize(tc.Inputs.Value)
	a := &Activation{Inputs: inputs, Now: now}
	keys, err := p.Keys(a)
	if err != nil {
		return "", "", nil, err
	}
	a.vars()
	for _, d := range p.Data {
		if _, reads := keys[d.Source.Name]; !reads {
			continue
		}
		if d.Source.Exchange != "" {
			body, ok := tc.Exchange[d.Source.Name][keys[d.Source.Name]]
			if !ok {
				continue
			}
			if err := d.CheckResponse(body.Value); err != nil {
				return "", "", nil, err
			}
			a.Data[d.Source.Name] = body.Value
			continue
		}
		if d.Source.By != "" {
			a.Data[d.Source.Name] = lookupAll(tc.Registry[d.Source.Registry], d.Source.By, keys[d.Source.Name])
			continue
		}
		if rec := lookup(tc.Registry[d.Source.Registry], p.env.Registries[d.Source.Registry].Key, keys[d.Source.Name]); rec != nil {
			a.Data[d.Source.Name] = rec
		}
	}
	if err := p.Derive(a); err != nil {
		return "", "", nil, err
	}
	doc = map[string]any{}
	steps := 0
	for i := 0; i >= 0 && i < len(p.Steps); {
		if steps++; steps > MaxStepsPerRun {
			return "", "", nil, fmt.Errorf("more than %d steps: the process loops", MaxStepsPerRun)
		}
		s := p.Steps[i]
		runs, err := p.Runs(i, a)
		if err != nil {
			return "", "", nil, err
		}
		if runs {
			switch s.Step.Type {
			case StepDecide:
				if refusal, err = p.Decide(a); err != nil || refusal != "" {
					return "refused", refusal, doc, err
				}
			case StepReview, StepFee, StepSign:
				given, ok := tc.Decisions[s.Step.ID]
				switch {
				case ok:
				case s.Step.Type == StepFee:
					given = Paid // the applicant pays unless the case says otherwise
				case s.Step.Type == StepSign:
					given = Signed
				default:
					return "", "", nil, fmt.Errorf("step %q needs an officer's decision: add decisions: {%s: %s}", s.Step.ID, s.Step.ID, strings.Join(s.Step.Decisions, "|"))
				}
				decision, refusal, err := s.Step.ParseDecision(given)
				if err != nil {
					return "", "", nil, err
				}
				switch decision {
				case "refuse":
					return "refused", refusal, doc, nil
				case "return":
					return "returned", "", doc, nil
				}
				if s.Step.Type == StepReview {
					// What the officer records feeds the rest, as when the
					// engine resumes: derived values are computed again.
					outputs, _ := tc.Outputs[s.Step.ID].Value.(map[string]any)
					if problems := p.CheckOutputs(i, outputs); len(problems) > 0 {
						return "", "", nil, fmt.Errorf("step %q: the officer's outputs are wrong at %q (%s)", s.Step.ID, problems[0].Path, problems[0].Code)
					}
					if outputs != nil {
						a.Review[s.Step.ID] = outputs
						if err := p.Derive(a); err != nil {
							return "", "", nil, err
						}
					}
				}
			case StepCall:
				if _, _, err := p.Call(i, a); err != nil {
					return "", "", nil, err
				}
			case StepIssue:
				fields, err := p.Document(i, a)
				if err != nil {
					return "", "", nil, err
				}
				for _, f := range fields {
					doc[f.Name] = f.Value
				}
			}
		}
		i = s.Next
	}
	return "completed", "", doc, nil
}

func lookup(records []JSONValue, field, key string) map[string]any {
	for _, r := range records {
		if m, ok := r.Value.(map[string]any); ok && m[field] == key {
			return m
		}
	}
	return nil
}

// lookupAll returns every record whose field is key, in order.
func lookupAll(records []JSONValue, field, key string) []any {
	out := []any{}
	for _, r := range records {
		if m, ok := r.Value.(map[string]any); ok && m[field] == key {
			out = append(out, m)
		}
	}
	return out
}

func sameJSON(a, b any) bool {
	var x, y any
	if json.Unmarshal([]byte(jsonString(a)), &x) != nil || json.Unmarshal([]byte(jsonString(b)), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// Clock is the time a case runs at: its now: when set, else fallback.
func (tc TestCase) Clock(fallback time.Time) time.Time {
	if t, err := parseNow(tc.Now); err == nil {
		return t
	}
	return fallback
}

func parseNow(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Parse(time.DateOnly, s)
}
