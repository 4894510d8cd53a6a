package citizen

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/registry"
	"github.com/ortaq/ortaq/internal/servicedef"
	"github.com/ortaq/ortaq/internal/web"
)

// Field kinds: how an input of the form's JSON Schema is presented.
const (
	kindText     = "text"
	kindTextarea = "textarea" // a long string (maxLength over 200)
	kindNumber   = "number"
	kindDate     = "date" // format: date
	kindCheckbox = "checkbox"
	kindSelect   = "select" // an enum of strings
	kindList     = "list"   // an array of single values: one input per item
	// kindUnsupported is an object or a list of objects: the form cannot
	// take it; the page says so instead of dropping it silently.
	kindUnsupported = "unsupported"
)

// maxListItems bounds the inputs of a list without maxItems.
const maxListItems = 5

// formField is one input of a service's form, ready to render.
type formField struct {
	Name     string
	ID       string // the element id, unique on the page
	Label    i18n.Text
	Hint     *i18n.Text
	Kind     string
	Required bool
	Options  []option
	Value    string
	Items    []string // a list's inputs, filled or empty
	Checked  bool
	ReadOnly bool // the signed-in citizen's own IIN
	Min, Max string
	MaxLen   int
	// Source is the registry title a pre-filled value came from.
	Source *i18n.Text
	Error  string
}

// option is one choice of a select.
type option struct {
	Value string
	Label i18n.Text
}

// form is a service's form on a page.
type form struct {
	Lang           i18n.Lang
	CSRF           string
	Action         string
	DraftAction    string
	IdempotencyKey string
	Fields         []formField
	// Error is over the form (e.g. a draft too large to keep).
	Error string
	// Draft offers "save draft" (not on a correction).
	Draft bool
	// DraftSaved is when the shown draft was saved.
	DraftSaved *time.Time
}

func properties(plan *servicedef.Plan) (map[string]any, []string) {
	schema, _ := plan.File.Form.Schema.Value.(map[string]any)
	props, _ := schema["properties"].(map[string]any)
	var required []string
	if r, ok := schema["required"].([]any); ok {
		for _, v := range r {
			if s, ok := v.(string); ok {
				required = append(required, s)
			}
		}
	}
	return props, required
}

func kindOf(prop map[string]any) string {
	t, _ := prop["type"].(string)
	switch t {
	case "integer", "number":
		return kindNumber
	case "boolean":
		return kindCheckbox
	case "object":
		return kindUnsupported
	case "array":
		items, _ := prop["items"].(map[string]any)
		if it, _ := items["type"].(string); it == "string" || it == "integer" || it == "number" {
			return kindList
		}
		return kindUnsupported
	}
	if servicedef.EnumValues(prop) != nil {
		return kindSelect
	}
	if prop["format"] == "date" {
		return kindDate
	}
	if n, ok := prop["maxLength"].(float64); ok && n > 200 {
		return kindTextarea
	}
	return kindText
}

func number(v any) string {
	if f, ok := v.(float64); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return ""
}

// fields builds the form of plan with values (as a form posts them) for
// the signed-in citizen who; the IIN is always theirs.
func fields(plan *servicedef.Plan, who *identity.Principal, values url.Values) []formField {
	props, required := properties(plan)
	out := make([]formField, 0, len(plan.File.Form.Fields))
	for _, f := range plan.File.Form.Fields {
		prop, _ := props[f.Name].(map[string]any)
		ff := formField{Name: f.Name, ID: "f-" + f.Name, Label: f.Label.Text, Kind: kindOf(prop), Value: values.Get(f.Name)}
		for _, r := range required {
			ff.Required = ff.Required || r == f.Name
		}
		if f.Hint != nil {
			ff.Hint = &f.Hint.Text
		}
		if f.Name == "iin" && who != nil && who.Kind == identity.Citizen {
			ff.Value, ff.ReadOnly = who.Subject, true
		}
		ff.Min, ff.Max = number(prop["minimum"]), number(prop["maximum"])
		if n, ok := prop["maxLength"].(float64); ok {
			ff.MaxLen = int(n)
		}
		switch ff.Kind {
		case kindSelect:
			for _, v := range servicedef.EnumValues(prop) {
				label := f.Options[v].Text
				if !label.Complete() {
					label = i18n.Text{KK: v, RU: v, EN: v}
				}
				ff.Options = append(ff.Options, option{Value: v, Label: label})
			}
		case kindCheckbox:
			ff.Checked = ff.Value == "on" || ff.Value == "true"
		case kindList:
			n := maxListItems
			if m, ok := prop["maxItems"].(float64); ok && int(m) < n {
				n = int(m)
			}
			ff.Items = make([]string, n)
			copy(ff.Items, values[f.Name])
		}
		out = append(out, ff)
	}
	return out
}

// inputsOf turns posted form values into typed inputs: a number that does
// not parse stays text, so that validation names the field; empty answers
// are left out, so that a required one is named as missing.
func inputsOf(values url.Values, plan *servicedef.Plan) map[string]any {
	inputs := map[string]any{}
	props, _ := properties(plan)
	for _, f := range plan.File.Form.Fields {
		prop, _ := props[f.Name].(map[string]any)
		t, _ := prop["type"].(string)
		if t == "array" {
			items, _ := prop["items"].(map[string]any)
			it, _ := items["type"].(string)
			var list []any
			for _, raw := range values[f.Name] {
				if raw = strings.TrimSpace(raw); raw != "" {
					list = append(list, scalar(it, raw))
				}
			}
			if list != nil {
				inputs[f.Name] = list
			}
			continue
		}
		raw := strings.TrimSpace(values.Get(f.Name))
		switch {
		case t == "boolean":
			inputs[f.Name] = raw == "on" || raw == "true"
		case raw != "" && t != "object":
			inputs[f.Name] = scalar(t, raw)
		}
	}
	return inputs
}

func scalar(t, raw string) any {
	switch t {
	case "integer":
		if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
			return float64(n)
		}
	case "number":
		if n, err := strconv.ParseFloat(raw, 64); err == nil {
			return n
		}
	}
	return raw
}

// valuesOf turns stored inputs back into form values (a correction starts
// from what was submitted).
func valuesOf(inputs map[string]any) url.Values {
	v := url.Values{}
	for name, in := range inputs {
		switch x := in.(type) {
		case []any:
			for _, item := range x {
				v.Add(name, fmt.Sprint(item))
			}
		case bool:
			if x {
				v.Set(name, "on")
			}
		case float64:
			v.Set(name, strconv.FormatFloat(x, 'f', -1, 64))
		case string:
			v.Set(name, x)
		}
	}
	return v
}

// fieldErrors puts each error of a validation failure next to its field
// (an item's error, /inputs/name/2, next to its list).
func fieldErrors(lang i18n.Lang, e *apierr.Error, ff []formField) {
	for _, fe := range e.Fields {
		for i := range ff {
			p := "/inputs/" + ff[i].Name
			if (fe.Path == p || strings.HasPrefix(fe.Path, p+"/")) && ff[i].Error == "" {
				ff[i].Error = web.ErrorMessage(lang, fe.Code)
			}
		}
	}
}

// prefill fills each empty field whose definition names a value the state
// holds with the citizen's own value, read through the registry's audited
// API, and marks it with the registry it came from. A registry that is not
// there or holds nothing for them leaves the field empty.
func (c *Citizen) prefill(ctx context.Context, plan *servicedef.Plan, who *identity.Principal, ff []formField, requestID string) {
	if who == nil || who.Kind != identity.Citizen || c.deps.Registries == nil {
		return
	}
	for i, f := range plan.File.Form.Fields {
		if f.Prefill == "" || i >= len(ff) || ff[i].Value != "" || ff[i].Kind == kindList || ff[i].Kind == kindUnsupported {
			continue
		}
		name, attr := f.PrefillSource()
		def, ok := c.deps.Registries.Definition(name)
		if !ok || !def.Access.Citizen || def.Key.Kind != registry.KeyIIN {
			continue
		}
		rec, found, err := c.deps.Registries.GetCommitted(ctx, name, who.Subject, nil, registry.Access{
			Actor: who.Actor(), Purpose: "service:" + plan.File.ID + "; prefill of the form", RequestID: requestID})
		if err != nil || !found || rec.Cancelled {
			continue
		}
		switch v := rec.Data[attr].(type) {
		case string:
			ff[i].Value = v
		case float64:
			ff[i].Value = strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			ff[i].Checked = v
		default:
			continue
		}
		title := def.Title
		ff[i].Source = &title
	}
}
