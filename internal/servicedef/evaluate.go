package servicedef

import (
	"fmt"
	"strings"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// Activation is what expressions see for one application.
type Activation struct {
	Inputs  map[string]any
	Data    map[string]any // data source name -> record (a map), or absent
	Derived map[string]any
	// Review holds what officers recorded when approving, by review step.
	Review map[string]any
	Now    time.Time
}

func (a *Activation) vars() map[string]any {
	if a.Data == nil {
		a.Data = map[string]any{}
	}
	if a.Derived == nil {
		a.Derived = map[string]any{}
	}
	if a.Review == nil {
		a.Review = map[string]any{}
	}
	return map[string]any{"inputs": a.Inputs, "data": a.Data, "derived": a.Derived, "review": a.Review, "now": a.Now}
}

// Eval evaluates one compiled expression into plain Go values (strings,
// float64/int64, bool, time.Time, time.Duration, []any, map[string]any, nil).
func (pe PlanExpr) Eval(a *Activation) (any, error) {
	out, _, err := pe.Program.Eval(a.vars())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pe.Name, err)
	}
	return native(out), nil
}

// Reads reports whether data source d is to be read for this application.
func (d PlanData) Reads(a *Activation) (bool, error) {
	if d.When == nil {
		return true, nil
	}
	v, err := d.When.Eval(a)
	if err != nil {
		return false, err
	}
	ok, _ := v.(bool)
	return ok, nil
}

// ExchangePath is the path to GET on an exchange source's service for key.
func (d PlanData) ExchangePath(a *Activation, key string) (string, error) {
	if d.Path == nil {
		return "/" + key, nil
	}
	v, err := d.Path.Eval(a)
	if err != nil {
		return "", err
	}
	path, _ := v.(string)
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return path, nil
}

// CheckResponse checks an exchange service's answer against the source's
// response schema: an answer of another shape must not reach the rules.
func (d PlanData) CheckResponse(body any) error {
	if d.Response == nil {
		return nil
	}
	if err := d.Response.Validate(body); err != nil {
		return fmt.Errorf("the answer of %s does not match the response schema of data source %q: %s", d.Source.Exchange, d.Source.Name, SchemaErrors(err))
	}
	return nil
}

// Keys evaluates the keys of the data sources to read; a source whose
// when: does not hold has no key.
func (p *Plan) Keys(a *Activation) (map[string]string, error) {
	keys := make(map[string]string, len(p.Data))
	for _, d := range p.Data {
		if reads, err := d.Reads(a); err != nil {
			return nil, err
		} else if !reads {
			continue
		}
		v, err := d.Key.Eval(a)
		if err != nil {
			return nil, err
		}
		s, _ := v.(string)
		keys[d.Source.Name] = s
	}
	return keys, nil
}

// Derive computes the derived values in order into a.Derived.
func (p *Plan) Derive(a *Activation) error {
	a.vars()
	for _, d := range p.Derived {
		v, err := d.Eval(a)
		if err != nil {
			return err
		}
		a.Derived[d.Name] = v
	}
	return nil
}

// Decide returns the refusal code of the first eligibility rule that does not
// hold, or "" when the application is eligible.
func (p *Plan) Decide(a *Activation) (refusal string, err error) {
	for _, r := range p.Eligibility {
		v, err := r.Expr.Eval(a)
		if err != nil {
			return "", err
		}
		if ok, _ := v.(bool); !ok {
			return r.Rule.Refusal, nil
		}
	}
	return "", nil
}

// Runs reports whether step i runs for this application.
func (p *Plan) Runs(i int, a *Activation) (bool, error) {
	s := p.Steps[i]
	if s.When == nil {
		return true, nil
	}
	v, err := s.When.Eval(a)
	if err != nil {
		return false, err
	}
	ok, _ := v.(bool)
	return ok, nil
}

// Document evaluates the fields of issue step i, in order.
func (p *Plan) Document(i int, a *Activation) ([]Field, error) {
	var out []Field
	for _, f := range p.Steps[i].Document {
		v, err := f.Eval(a)
		if err != nil {
			return nil, err
		}
		out = append(out, Field{Name: f.Name, Value: exported(v)})
	}
	return out, nil
}

// Call evaluates call step i: the path to POST to and the body.
func (p *Plan) Call(i int, a *Activation) (path string, body map[string]any, err error) {
	s := p.Steps[i]
	path = "/"
	if s.CallPath != nil {
		v, err := s.CallPath.Eval(a)
		if err != nil {
			return "", nil, err
		}
		path, _ = v.(string)
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
	}
	body = make(map[string]any, len(s.Body))
	for _, f := range s.Body {
		v, err := f.Eval(a)
		if err != nil {
			return "", nil, err
		}
		body[f.Name] = exported(v)
	}
	return path, body, nil
}

// CheckOutputs checks what an officer records when approving review step
// i against the step's outputs schema. A step without outputs takes none.
func (p *Plan) CheckOutputs(i int, outputs map[string]any) []InputError {
	s := p.Steps[i]
	if s.Outputs == nil {
		if len(outputs) > 0 {
			return []InputError{{Path: "", Code: "unknown_field"}}
		}
		return nil
	}
	var v any = outputs
	if outputs == nil {
		v = map[string]any{}
	}
	return schemaErrors(s.Outputs.Validate(v))
}

// Field is one evaluated document field.
type Field struct {
	Name  string
	Value any
}

// native turns a CEL value into plain Go values.
func native(v ref.Val) any {
	switch v.Type() {
	case types.NullType:
		return nil
	case types.TimestampType, types.DurationType:
		// Kept as time.Time and time.Duration so that later expressions
		// (derived values) see them with their CEL types; exported() turns
		// them into text where values leave the plan.
		return v.Value()
	}
	if l, ok := v.(traits.Lister); ok && v.Type() == types.ListType {
		var out []any
		for it := l.Iterator(); it.HasNext() == types.True; {
			out = append(out, native(it.Next()))
		}
		return out
	}
	if m, ok := v.(traits.Mapper); ok && v.Type() == types.MapType {
		out := map[string]any{}
		for it := m.Iterator(); it.HasNext() == types.True; {
			k := it.Next()
			out[fmt.Sprint(native(k))] = native(m.Get(k))
		}
		return out
	}
	return v.Value()
}

// Normalize converts decoded JSON (numbers as float64) into the types the
// form's schema declares, so that CEL sees int where the schema says
// integer. The value must already be valid against the schema.
func (p *Plan) Normalize(inputs any) map[string]any {
	schema, _ := p.File.Form.Schema.Value.(map[string]any)
	m, _ := normalize(schema, inputs).(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m
}

func normalize(schema map[string]any, v any) any {
	switch schema["type"] {
	case "integer":
		if f, ok := v.(float64); ok {
			return int64(f)
		}
	case "array":
		items, _ := schema["items"].(map[string]any)
		if list, ok := v.([]any); ok {
			out := make([]any, len(list))
			for i, x := range list {
				out[i] = normalize(items, x)
			}
			return out
		}
	case "object":
		props, _ := schema["properties"].(map[string]any)
		if obj, ok := v.(map[string]any); ok {
			out := make(map[string]any, len(obj))
			for k, x := range obj {
				ps, _ := props[k].(map[string]any)
				out[k] = normalize(ps, x)
			}
			return out
		}
	}
	return v
}

// exported turns time values into text (RFC 3339 in UTC, Go durations), for
// values that leave the plan: document fields.
func exported(v any) any {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case time.Duration:
		return x.String()
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = exported(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = exported(e)
		}
		return out
	}
	return v
}
