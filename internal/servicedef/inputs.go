package servicedef

import (
	"errors"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// InputError is one problem of an application's inputs: where (a JSON
// pointer into the inputs) and a field code of the public error catalogue
// (required, type, unknown_field, too_long, format).
type InputError struct {
	Path string
	Code string
}

// CheckInputs validates inputs against the form's schema and names every
// field that is wrong.
func (p *Plan) CheckInputs(inputs any) []InputError {
	if p.Inputs == nil {
		return nil
	}
	return schemaErrors(p.Inputs.Validate(inputs))
}

// schemaErrors names every field a validation error found wrong.
func schemaErrors(err error) []InputError {
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []InputError{{Path: "", Code: "format"}}
	}
	var out []InputError
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		at := pointer(e.InstanceLocation)
		switch k := e.ErrorKind.(type) {
		case *kind.Required:
			for _, m := range k.Missing {
				out = append(out, InputError{Path: at + "/" + m, Code: "required"})
			}
		case *kind.AdditionalProperties:
			for _, m := range k.Properties {
				out = append(out, InputError{Path: at + "/" + m, Code: "unknown_field"})
			}
		case *kind.Type:
			out = append(out, InputError{Path: at, Code: "type"})
		case *kind.MaxLength, *kind.MaxItems:
			out = append(out, InputError{Path: at, Code: "too_long"})
		default:
			out = append(out, InputError{Path: at, Code: "format"})
		}
	}
	walk(ve)
	return out
}

func pointer(loc []string) string {
	if len(loc) == 0 {
		return ""
	}
	escaped := make([]string, len(loc))
	for i, s := range loc {
		escaped[i] = strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
	}
	return "/" + strings.Join(escaped, "/")
}
