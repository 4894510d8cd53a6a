package servicedef

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Change is one difference between two versions of a service, said for the
// people it touches.
type Change struct {
	For  string // "citizens", "officers" or "everyone"
	What string
}

// Diff lists what changes from old to new for citizens and officers.
func Diff(old, new *Plan) []Change {
	var out []Change
	add := func(who, format string, args ...any) {
		out = append(out, Change{For: who, What: fmt.Sprintf(format, args...)})
	}
	o, n := old.File, new.File
	if o.ID != n.ID {
		add("everyone", "these are different services: %s and %s", o.ID, n.ID)
	}
	if o.Owner != n.Owner {
		add("everyone", "the provider changes from %s to %s", o.Owner, n.Owner)
	}
	texts := func(name string, a, b Text) {
		for _, l := range []struct{ lang, a, b string }{{"kk", a.KK, b.KK}, {"ru", a.RU, b.RU}, {"en", a.EN, b.EN}} {
			if l.a != l.b {
				add("citizens", "%s (%s) changes from %q to %q", name, l.lang, l.a, l.b)
			}
		}
	}
	texts("the title", o.Texts.Title, n.Texts.Title)
	texts("the description", o.Texts.Description, n.Texts.Description)
	texts("the result", o.Texts.Result, n.Texts.Result)
	for _, code := range union(keysOf(o.Texts.Refusals), keysOf(n.Texts.Refusals)) {
		a, inOld := o.Texts.Refusals[code]
		b, inNew := n.Texts.Refusals[code]
		switch {
		case !inOld:
			add("citizens", "a new reason for refusal: %s (%q)", code, b.EN)
		case !inNew:
			add("citizens", "refusal %s is no longer given", code)
		default:
			texts("the text of refusal "+code, a, b)
		}
	}

	oProps, nProps := properties(o), properties(n)
	oReq, nReq := required(o), required(n)
	for _, name := range union(keysOf(oProps), keysOf(nProps)) {
		a, inOld := oProps[name]
		b, inNew := nProps[name]
		switch {
		case !inOld:
			add("citizens", "the form asks for a new input %q (%s)", name, describeType(b))
		case !inNew:
			add("citizens", "the form no longer asks for %q", name)
		case !reflect.DeepEqual(a, b):
			add("citizens", "input %q changes: %s becomes %s", name, describeType(a), describeType(b))
		}
		if inOld && inNew && slices.Contains(oReq, name) != slices.Contains(nReq, name) {
			if slices.Contains(nReq, name) {
				add("citizens", "input %q becomes required", name)
			} else {
				add("citizens", "input %q becomes optional", name)
			}
		}
	}

	dataName := func(d DataSource) string { return d.Name }
	oData, nData := byName(o.Data, dataName), byName(n.Data, dataName)
	for _, name := range union(keysOf(oData), keysOf(nData)) {
		a, inOld := oData[name]
		b, inNew := nData[name]
		switch {
		case !inOld:
			add("everyone", "the service reads new data %q from registry %s (%s)", name, b.Registry, basisOf(b))
		case !inNew:
			add("everyone", "the service no longer reads %q from registry %s", name, a.Registry)
		case basisOf(a) != basisOf(b) || a.Registry != b.Registry || a.Key.Src != b.Key.Src:
			add("everyone", "data %q is read differently: %s[%s] (%s) becomes %s[%s] (%s)", name,
				a.Registry, a.Key.Src, basisOf(a), b.Registry, b.Key.Src, basisOf(b))
		}
	}

	ruleName := func(r Eligibility) string { return r.Name }
	oRules, nRules := byName(o.Rules.Eligibility, ruleName), byName(n.Rules.Eligibility, ruleName)
	for _, name := range union(keysOf(oRules), keysOf(nRules)) {
		a, inOld := oRules[name]
		b, inNew := nRules[name]
		switch {
		case !inOld:
			add("citizens", "a new condition %q: %s, else refusal %s", name, oneLineExpr(b.Expr), b.Refusal)
		case !inNew:
			add("citizens", "condition %q is dropped", name)
		case oneLineExpr(a.Expr) != oneLineExpr(b.Expr):
			add("citizens", "condition %q changes from %s to %s", name, oneLineExpr(a.Expr), oneLineExpr(b.Expr))
		case a.Refusal != b.Refusal:
			add("citizens", "condition %q now refuses with %s instead of %s", name, b.Refusal, a.Refusal)
		}
	}
	derivedName := func(d Derived) string { return d.Name }
	oDerived, nDerived := byName(o.Rules.Derive, derivedName), byName(n.Rules.Derive, derivedName)
	for _, name := range union(keysOf(oDerived), keysOf(nDerived)) {
		if a, b := oneLineExpr(oDerived[name].Expr), oneLineExpr(nDerived[name].Expr); a != b {
			add("officers", "derived value %q: %q becomes %q", name, a, b)
		}
	}

	stepID := func(s Step) string { return s.ID }
	oSteps, nSteps := byName(o.Steps, stepID), byName(n.Steps, stepID)
	for _, id := range union(keysOf(oSteps), keysOf(nSteps)) {
		a, inOld := oSteps[id]
		b, inNew := nSteps[id]
		switch {
		case !inOld:
			add(stepAudience(b), "a new step %q (%s)%s", id, b.Type, reviewNote(b))
		case !inNew:
			add(stepAudience(a), "step %q (%s) is removed", id, a.Type)
		default:
			if a.Type != b.Type {
				add(stepAudience(b), "step %q changes from %s to %s", id, a.Type, b.Type)
			}
			if a.Role != b.Role {
				add("officers", "step %q moves from role %q to role %q", id, a.Role, b.Role)
			}
			if durationOf(a.Deadline) != durationOf(b.Deadline) {
				add(stepAudience(b), "the deadline of step %q changes from %s to %s", id, durationOf(a.Deadline), durationOf(b.Deadline))
			}
			if amountOf(a) != amountOf(b) {
				add("citizens", "the fee of step %q changes from %s to %s", id, amountOf(a), amountOf(b))
			}
			if a.Service != b.Service {
				add("everyone", "step %q now calls %s (was %s)", id, b.Service, a.Service)
			}
			if !slices.Equal(a.Decisions, b.Decisions) {
				add("officers", "the decisions of step %q change from %v to %v", id, a.Decisions, b.Decisions)
			}
			if whenOf(a) != whenOf(b) {
				add(stepAudience(b), "step %q now runs %s (was %s)", id, whenOf(b), whenOf(a))
			}
			if !reflect.DeepEqual(documentFields(a), documentFields(b)) {
				add("citizens", "the document of step %q changes its fields from %v to %v", id, documentFields(a), documentFields(b))
			}
		}
	}
	if o.SLA.Target.D != n.SLA.Target.D {
		add("citizens", "the promised delivery time changes from %s to %s", o.SLA.Target.D, n.SLA.Target.D)
	}
	if o.SLA.LegalDays != n.SLA.LegalDays {
		add("everyone", "the legal deadline changes from %d to %d working days", o.SLA.LegalDays, n.SLA.LegalDays)
	}
	return out
}

func keysOf[V any](m map[string]V) []string { return sortedKeys(m) }

// byName indexes items by their name.
func byName[T any](items []T, name func(T) string) map[string]T {
	m := make(map[string]T, len(items))
	for _, it := range items {
		m[name(it)] = it
	}
	return m
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}

func properties(f *File) map[string]any {
	schema, _ := f.Form.Schema.Value.(map[string]any)
	props, _ := schema["properties"].(map[string]any)
	return props
}

func required(f *File) []string {
	schema, _ := f.Form.Schema.Value.(map[string]any)
	list, _ := schema["required"].([]any)
	var out []string
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func describeType(schema any) string {
	s, _ := schema.(map[string]any)
	var parts []string
	for _, k := range sortedKeys(s) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, s[k]))
	}
	return strings.Join(parts, " ")
}

func basisOf(d DataSource) string {
	if d.Basis != "" {
		return "basis: " + d.Basis
	}
	if d.Consent {
		return "with the person's consent"
	}
	return "no basis"
}

func oneLineExpr(e Expr) string { return strings.Join(strings.Fields(e.Src), " ") }

func stepAudience(s Step) string {
	if s.Type == StepReview {
		return "officers"
	}
	return "citizens"
}

func reviewNote(s Step) string {
	switch s.Type {
	case StepReview:
		return fmt.Sprintf(": role %s decides within %s", s.Role, durationOf(s.Deadline))
	case StepFee:
		return fmt.Sprintf(": %s to pay within %s", amountOf(s), durationOf(s.Deadline))
	case StepSign:
		return fmt.Sprintf(": the applicant signs within %s", durationOf(s.Deadline))
	case StepCall:
		return ": sends data to " + s.Service
	}
	return ""
}

func amountOf(s Step) string {
	if s.Amount == nil {
		return "none"
	}
	return s.Amount.String()
}

func durationOf(d *Duration) string {
	if d == nil {
		return "no deadline"
	}
	if d.Days > 0 {
		return fmt.Sprintf("%d working days", d.Days)
	}
	return d.D.String()
}

func whenOf(s Step) string {
	if s.When == nil {
		return "always"
	}
	return "when " + oneLineExpr(*s.When)
}

func documentFields(s Step) []string {
	if s.Document == nil {
		return nil
	}
	var out []string
	for _, f := range s.Document.Fields {
		out = append(out, f.Name+"="+oneLineExpr(f.Expr))
	}
	return out
}
