package servicedef

import (
	"reflect"
)

// FormatSchema is the JSON Schema of the service definition format itself,
// derived from the model so that it cannot drift; editors validate service
// files with it (docs/service-format.schema.json, golden-tested).
func FormatSchema() map[string]any {
	s := schemaFor(reflect.TypeFor[File]())
	s["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	s["$id"] = "https://ortaq.kz/schemas/service-format/v1.json"
	s["title"] = "Ortaq service definition (" + APIVersion + ")"
	s["required"] = []string{"apiVersion", "kind", "id", "version", "owner", "audience", "category", "texts", "form", "steps", "sla", "tests"}
	return s
}

var (
	textType      = reflect.TypeFor[Text]()
	exprType      = reflect.TypeFor[Expr]()
	durationType  = reflect.TypeFor[Duration]()
	jsonValueType = reflect.TypeFor[JSONValue]()
	namedExprType = reflect.TypeFor[NamedExprs]()
)

func schemaFor(t reflect.Type) map[string]any {
	switch t {
	case textType:
		str := map[string]any{"type": "string", "minLength": 1}
		return map[string]any{"type": "object", "additionalProperties": false, "required": []string{"kk", "ru", "en"},
			"properties": map[string]any{"kk": str, "ru": str, "en": str}, "description": "a text in Kazakh, Russian and English"}
	case exprType:
		return map[string]any{"type": "string", "description": "a CEL expression"}
	case durationType:
		return map[string]any{"type": "string", "pattern": isoDuration.String(), "description": "an ISO 8601 duration such as PT5M or P3D"}
	case jsonValueType:
		return map[string]any{}
	case namedExprType:
		return map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string", "description": "a CEL expression"}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaFor(t.Elem())
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Int:
		return map[string]any{"type": "integer"}
	case reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": schemaFor(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaFor(t.Elem())}
	case reflect.Struct:
		props := map[string]any{}
		for i := range t.NumField() {
			f := t.Field(i)
			name := yamlName(f)
			if name == "" || name == "-" {
				continue
			}
			props[name] = schemaFor(f.Type)
		}
		return map[string]any{"type": "object", "additionalProperties": false, "properties": props}
	}
	return map[string]any{}
}
