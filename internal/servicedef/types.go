package servicedef

import (
	"sort"

	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
)

// object is a CEL object type whose values are maps at run time: the
// compiler checks field names and types, the interpreter looks keys up.
type object struct {
	name   string
	fields map[string]*types.Type
}

// typeProvider teaches CEL our object types: form inputs, registry records,
// the data and derived namespaces.
type typeProvider struct {
	*types.Registry
	objects map[string]*object
}

func newTypeProvider() *typeProvider {
	return &typeProvider{Registry: types.NewEmptyRegistry(), objects: map[string]*object{}}
}

func (p *typeProvider) add(o *object) *types.Type {
	p.objects[o.name] = o
	return types.NewObjectType(o.name)
}

func (p *typeProvider) FindStructType(name string) (*types.Type, bool) {
	if _, ok := p.objects[name]; ok {
		return types.NewTypeTypeWithParam(types.NewObjectType(name)), true
	}
	return p.Registry.FindStructType(name)
}

func (p *typeProvider) FindStructFieldNames(name string) ([]string, bool) {
	o, ok := p.objects[name]
	if !ok {
		return p.Registry.FindStructFieldNames(name)
	}
	names := make([]string, 0, len(o.fields))
	for k := range o.fields {
		names = append(names, k)
	}
	sort.Strings(names)
	return names, true
}

func (p *typeProvider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	o, ok := p.objects[name]
	if !ok {
		return p.Registry.FindStructFieldType(name, field)
	}
	t, ok := o.fields[field]
	if !ok {
		return nil, false
	}
	return &types.FieldType{
		Type: t,
		IsSet: func(target any) bool {
			m, ok := target.(map[string]any)
			if !ok {
				return false
			}
			v, has := m[field]
			return has && v != nil
		},
		// An absent field reads as its type's zero value, as proto fields do
		// in CEL; has() tells absent from zero.
		GetFrom: func(target any) (any, error) {
			m, _ := target.(map[string]any)
			if v, ok := m[field]; ok && v != nil {
				return v, nil
			}
			return zeroOf(t), nil
		},
	}, true
}

// schemaType maps a JSON Schema (as decoded JSON) to a CEL type, registering
// object types under name.
func (p *typeProvider) schemaType(name string, schema any) *types.Type {
	s, _ := schema.(map[string]any)
	switch t, _ := s["type"].(string); t {
	case "string":
		return types.StringType
	case "integer":
		return types.IntType
	case "number":
		return types.DoubleType
	case "boolean":
		return types.BoolType
	case "array":
		return types.NewListType(p.schemaType(name+"_item", s["items"]))
	case "object":
		props, ok := s["properties"].(map[string]any)
		if !ok {
			return types.NewMapType(types.StringType, types.DynType)
		}
		o := &object{name: name, fields: map[string]*types.Type{}}
		for k, v := range props {
			o.fields[k] = p.schemaType(name+"."+k, v)
		}
		return p.add(o)
	}
	return types.DynType
}

// zeroEstimator leaves sizes and calls to CEL's defaults; with unknown sizes
// the minimum estimate is what an expression costs at the very least.
type zeroEstimator struct{}

func (zeroEstimator) EstimateCallCost(function, overloadID string, target *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	return nil
}

func (zeroEstimator) EstimateSize(element cost.AstNode) *cost.SizeEstimate { return nil }

func zeroOf(t *types.Type) any {
	switch t.Kind() {
	case types.IntKind:
		return int64(0)
	case types.UintKind:
		return uint64(0)
	case types.DoubleKind:
		return float64(0)
	case types.StringKind:
		return ""
	case types.BoolKind:
		return false
	case types.ListKind:
		return []any{}
	case types.MapKind, types.StructKind:
		return map[string]any{}
	}
	return nil
}
