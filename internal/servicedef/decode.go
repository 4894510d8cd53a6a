package servicedef

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Pos is a place in a service file, 1-based.
type Pos struct {
	Line int `json:"line"`
	Col  int `json:"col"`
}

func posOf(n *yaml.Node) Pos { return Pos{Line: n.Line, Col: n.Column} }

// nodeDecoder is implemented by types that decode themselves from a node.
type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node)
}

// decoder turns a YAML node tree into the model strictly: unknown fields,
// wrong types and malformed values all become problems with a position, and
// decoding goes on so that one run reports every problem.
type decoder struct {
	problems []Problem
	budget   int // nodes left; bounds alias expansion ("billion laughs")
}

// maxNodes bounds the work one file may cause, aliases included.
const maxNodes = 200_000

func (d *decoder) problem(at Pos, code, format string, args ...any) {
	if at.Line < 1 {
		// A missing section has no place of its own: point at the top.
		at = Pos{Line: 1, Col: 1}
	}
	d.problems = append(d.problems, Problem{Pos: at, Code: code, Message: fmt.Sprintf(format, args...)})
}

var (
	posType  = reflect.TypeFor[Pos]()
	keysType = reflect.TypeFor[Keys]()
)

// Keys records where each field of a struct was written, for problems about
// a value that is wrong as a whole (an unknown agency, a missing role).
type Keys map[string]Pos

// at returns where key was written, or fallback when it was not.
func (k Keys) at(key string, fallback Pos) Pos {
	if p, ok := k[key]; ok {
		return p
	}
	return fallback
}

// resolve follows aliases and charges the node budget.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	d.budget--
	return n
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value) {
	n = d.resolve(n)
	if n == nil {
		return
	}
	if d.budget < 0 {
		if d.budget == -1 {
			d.problem(posOf(n), "yaml.too_large", "the file expands to more than %d YAML nodes (aliases included)", maxNodes)
		}
		return
	}
	if v.CanAddr() {
		if nd, ok := v.Addr().Interface().(nodeDecoder); ok {
			nd.decodeNode(d, n)
			return
		}
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // absent: the zero value; required fields are checked later
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem())
	case reflect.Struct:
		d.decodeStruct(n, v)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.problem(posOf(n), "field.type", "expected a list, found %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.problem(posOf(n), "field.type", "expected a mapping, found %s", describe(n))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		d.entries(n, func(k, val *yaml.Node) {
			elem := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, elem)
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), elem)
		})
		v.Set(m)
	case reflect.String:
		if s, ok := d.scalar(n, "text"); ok {
			v.SetString(s)
		}
	case reflect.Int:
		s, ok := d.scalar(n, "whole number")
		if !ok {
			return
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n.Tag != "!!int" || i > math.MaxInt32 || i < math.MinInt32 {
			d.problem(posOf(n), "field.type", "expected a whole number, found %q", s)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		s, ok := d.scalar(n, "number")
		if !ok {
			return
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || (n.Tag != "!!int" && n.Tag != "!!float") || math.IsInf(f, 0) || math.IsNaN(f) {
			d.problem(posOf(n), "field.type", "expected a number, found %q", s)
			return
		}
		v.SetFloat(f)
	case reflect.Bool:
		s, ok := d.scalar(n, "true or false")
		if !ok {
			return
		}
		if n.Tag != "!!bool" {
			d.problem(posOf(n), "field.type", "expected true or false, found %q", s)
			return
		}
		v.SetBool(s == "true" || s == "True" || s == "TRUE")
	default:
		panic(fmt.Sprintf("servicedef: no decoder for %s", v.Type()))
	}
}

// entries calls fn for each key and value of a mapping node, reporting keys
// that are not names and keys that appear twice.
func (d *decoder) entries(n *yaml.Node, fn func(key, value *yaml.Node)) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := d.resolve(n.Content[i])
		if k.Kind != yaml.ScalarNode {
			d.problem(posOf(k), "field.type", "expected a name, found %s", describe(k))
			continue
		}
		if seen[k.Value] {
			d.problem(posOf(k), "field.duplicate", "%q appears twice", k.Value)
			continue
		}
		seen[k.Value] = true
		fn(k, n.Content[i+1])
	}
}

func (d *decoder) scalar(n *yaml.Node, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.problem(posOf(n), "field.type", "expected %s, found %s", want, describe(n))
		return "", false
	}
	return n.Value, true
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// yamlName is a struct field's name in the file.
func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value) {
	t := v.Type()
	var keys reflect.Value // Keys map[string]Pos: where each field's key stands
	for i := range t.NumField() {
		switch f := t.Field(i); {
		case f.Type == posType && f.Name == "At":
			v.Field(i).Set(reflect.ValueOf(posOf(n)))
		case f.Type == keysType && f.Name == "Keys":
			keys = reflect.MakeMap(keysType)
			v.Field(i).Set(keys)
		}
	}
	if n.Kind != yaml.MappingNode {
		d.problem(posOf(n), "field.type", "expected a mapping, found %s", describe(n))
		return
	}
	d.entries(n, func(k, val *yaml.Node) {
		if keys.IsValid() {
			keys.SetMapIndex(reflect.ValueOf(k.Value), reflect.ValueOf(posOf(k)))
		}
		field, ok := fieldByYAMLName(t, k.Value)
		if !ok {
			d.problem(posOf(k), "field.unknown", "unknown field %q; expected one of: %s", k.Value, strings.Join(fieldNames(t), ", "))
			return
		}
		d.decode(val, v.FieldByIndex(field.Index))
	})
}

func fieldByYAMLName(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		if f := t.Field(i); yamlName(f) == name && name != "-" && name != "" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func fieldNames(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		if name := yamlName(t.Field(i)); name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

var yamlLine = regexp.MustCompile(`line (\d+)(?::(\d+))?`)

// parseYAML reads the document node, turning a syntax error into a problem.
func parseYAML(src []byte) (*yaml.Node, []Problem) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		at := Pos{Line: 1, Col: 1}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			at.Line, _ = strconv.Atoi(m[1])
			if m[2] != "" {
				at.Col, _ = strconv.Atoi(m[2])
			}
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		return nil, []Problem{{Pos: at, Code: "yaml.syntax", Message: "not valid YAML: " + msg}}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, []Problem{{Pos: Pos{Line: 1, Col: 1}, Code: "yaml.empty", Message: "the file holds no YAML document"}}
	}
	return doc.Content[0], nil
}

// toJSONValue converts a node into the values encoding/json would produce,
// for JSON Schemas and test data.
func (d *decoder) toJSONValue(n *yaml.Node) (any, bool) {
	n = d.resolve(n)
	if n == nil || d.budget < 0 {
		return nil, false
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		before := len(d.problems)
		d.entries(n, func(k, val *yaml.Node) {
			if v, ok := d.toJSONValue(val); ok {
				m[k.Value] = v
			}
		})
		return m, len(d.problems) == before && d.budget >= 0
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			val, ok := d.toJSONValue(c)
			if !ok {
				return nil, false
			}
			s = append(s, val)
		}
		return s, true
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, true
		case "!!bool":
			return n.Value == "true" || n.Value == "True" || n.Value == "TRUE", true
		case "!!int":
			i, err := strconv.ParseInt(n.Value, 0, 64)
			if err != nil {
				d.problem(posOf(n), "field.type", "number %q is out of range", n.Value)
				return nil, false
			}
			return float64(i), true
		case "!!float":
			f, err := strconv.ParseFloat(n.Value, 64)
			if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				d.problem(posOf(n), "field.type", "%q is not a finite number", n.Value)
				return nil, false
			}
			return f, true
		default:
			return n.Value, true
		}
	}
	d.problem(posOf(n), "field.type", "unsupported YAML node")
	return nil, false
}
