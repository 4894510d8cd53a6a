package servicedef

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// APIVersion is the format version this compiler reads.
const APIVersion = "ortaq.kz/v1"

// Problem is one finding, with its place, a stable code and a plain reason.
type Problem struct {
	Pos     Pos    `json:"pos"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Format renders p as "file:line:col: code: message".
func (p Problem) Format(file string) string {
	return fmt.Sprintf("%s:%d:%d: %s: %s", file, p.Pos.Line, p.Pos.Col, p.Code, p.Message)
}

// CostBudget bounds the evaluation cost of one expression (CEL cost units).
const CostBudget = 100_000

// Plan is a definition compiled and checked, ready to run.
type Plan struct {
	File        *File
	Inputs      *jsonschema.Schema
	Data        []PlanData
	Derived     []PlanExpr
	Eligibility []PlanRule
	Steps       []PlanStep
	env         Environment
}

// PlanExpr is a compiled expression.
type PlanExpr struct {
	Name    string
	Program cel.Program
	Type    *types.Type
	Src     Expr
}

// PlanData is a compiled data source.
type PlanData struct {
	Source DataSource
	Key    PlanExpr
	When   *PlanExpr
	Path   *PlanExpr // exchange sources with path:
	// Response checks an exchange service's answer before any rule sees it.
	Response *jsonschema.Schema
}

// PlanRule is a compiled eligibility condition.
type PlanRule struct {
	Rule Eligibility
	Expr PlanExpr
}

// PlanStep is a compiled step; Next is the index of the following step, or
// -1 at the end.
type PlanStep struct {
	Step     Step
	When     *PlanExpr
	Next     int
	Document []PlanExpr
	Until    *PlanExpr // wait steps with until:
	// Outputs checks what an officer records when approving a review step.
	Outputs *jsonschema.Schema
	// call steps
	CallPath *PlanExpr
	Body     []PlanExpr
}

var (
	identifier = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	serviceID  = regexp.MustCompile(`^[a-z][a-z0-9-]{1,60}$`)
)

// compiler carries one compilation.
type compiler struct {
	d        *decoder
	env      Environment
	file     *File
	provider *typeProvider
	inputs   *types.Type
	data     *object
	derived  *object
	plan     *Plan
	exprEnv  *cel.Env // inputs, data, derived and now: for rules and steps
	// responses are the compiled response schemas of exchange sources,
	// outputs those of review steps.
	responses map[string]*jsonschema.Schema
	outputs   map[string]*jsonschema.Schema
	review    *object
}

// Compile parses, checks and compiles a service file. It never panics on any
// input; every problem comes back with a position.
func Compile(src []byte, env Environment) (*Plan, []Problem) {
	root, problems := parseYAML(src)
	if problems != nil {
		return nil, problems
	}
	d := &decoder{budget: maxNodes}
	f := &File{}
	d.decode(root, reflectValue(f))
	c := &compiler{d: d, env: env, file: f, provider: newTypeProvider(), plan: &Plan{File: f, env: env},
		responses: map[string]*jsonschema.Schema{}, outputs: map[string]*jsonschema.Schema{}}
	if d.budget >= 0 {
		c.check()
	}
	sort.SliceStable(d.problems, func(i, j int) bool {
		a, b := d.problems[i].Pos, d.problems[j].Pos
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
	if len(d.problems) > 0 {
		return nil, d.problems
	}
	return c.plan, nil
}

func reflectValue(p any) reflect.Value { return reflect.ValueOf(p).Elem() }

func (c *compiler) problem(at Pos, code, format string, args ...any) {
	c.d.problem(at, code, format, args...)
}

func (c *compiler) text(t Text, where string, at Pos) {
	var missing []string
	if t.KK == "" {
		missing = append(missing, "kk")
	}
	if t.RU == "" {
		missing = append(missing, "ru")
	}
	if t.EN == "" {
		missing = append(missing, "en")
	}
	if len(missing) > 0 {
		if t.At.Line > 0 {
			at = t.At
		}
		c.problem(at, "text.missing_language", "%s has no text in %s (every text needs kk, ru and en)", where, strings.Join(missing, ", "))
	}
}

func (c *compiler) check() {
	f := c.file
	if f.APIVersion != APIVersion {
		c.problem(f.Keys.at("apiVersion", f.At), "header.api_version", "apiVersion must be %q, found %q", APIVersion, f.APIVersion)
	}
	if f.Kind != "Service" {
		c.problem(f.Keys.at("kind", f.At), "header.kind", "kind must be \"Service\", found %q", f.Kind)
	}
	if !serviceID.MatchString(f.ID) {
		c.problem(f.Keys.at("id", f.At), "service.id", "id %q must be 2-61 lower-case letters, digits and dashes, starting with a letter", f.ID)
	}
	if f.Version < 1 {
		c.problem(f.Keys.at("version", f.At), "service.version", "version must be a whole number from 1")
	}
	roles, ok := c.env.Agencies[f.Owner]
	if !ok {
		c.problem(f.Keys.at("owner", f.At), "ref.unknown_agency", "owner %q is not a known agency (known: %s)", f.Owner, strings.Join(sortedKeys(c.env.Agencies), ", "))
	}
	if f.Audience != "citizen" && f.Audience != "business" {
		c.problem(f.Keys.at("audience", f.At), "service.audience", "audience must be citizen or business, found %q", f.Audience)
	}
	if f.Category == "" {
		c.problem(f.At, "field.required", "category is required (the life situation the service belongs to)")
	}
	c.text(f.Texts.Title, "texts.title", f.Texts.At)
	c.text(f.Texts.Description, "texts.description", f.Texts.At)
	c.text(f.Texts.Result, "texts.result", f.Texts.At)
	for _, code := range sortedKeys(f.Texts.Refusals) {
		if !identifier.MatchString(code) {
			c.problem(f.Texts.Refusals[code].At, "refusal.code", "refusal code %q must be a lower-case identifier", code)
		}
		c.text(f.Texts.Refusals[code], "texts.refusals."+code, f.Texts.At)
	}

	c.checkForm()
	c.checkPrefill()
	c.data = &object{name: "data", fields: map[string]*types.Type{}}
	c.derived = &object{name: "derived", fields: map[string]*types.Type{}}
	c.review = &object{name: "review", fields: map[string]*types.Type{}}
	c.provider.add(c.data)
	c.provider.add(c.derived)
	c.provider.add(c.review)
	c.checkData()
	c.checkOutputs()
	c.checkRules()
	c.checkSteps(roles)
	if f.SLA.Target.D <= 0 {
		c.problem(f.SLA.Keys.at("target", f.SLA.At), "sla.target", "sla.target must be a positive ISO 8601 duration such as PT5M")
	}
	if f.SLA.LegalDays < 1 {
		c.problem(f.SLA.Keys.at("legalDays", f.SLA.At), "sla.legal_days", "sla.legalDays must be the legal deadline in working days, 1 or more")
	}
	c.checkTests()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (c *compiler) checkForm() {
	form := c.file.Form
	if !form.Schema.Set {
		if form.Schema.At.Line == 0 { // absent; a present but broken schema is already reported
			c.problem(form.At, "form.schema", "form.schema is required: the JSON Schema of the inputs")
		}
		c.inputs = types.NewMapType(types.StringType, types.DynType)
		return
	}
	schema, ok := form.Schema.Value.(map[string]any)
	if !ok || schema["type"] != "object" {
		c.problem(form.Schema.At, "form.schema", "form.schema must be a JSON Schema with type: object")
		c.inputs = types.NewMapType(types.StringType, types.DynType)
		return
	}
	if s, err := compileSchema(schema, true); err != nil {
		c.problem(form.Schema.At, "form.schema", "form.schema is not a valid JSON Schema: %v", err)
	} else {
		c.plan.Inputs = s
	}
	c.inputs = c.provider.schemaType("inputs", schema)
	props, _ := schema["properties"].(map[string]any)
	presented := map[string]bool{}
	for _, field := range form.Fields {
		if _, ok := props[field.Name]; !ok {
			c.problem(field.At, "ref.unknown_field", "form field %q is not a property of form.schema (properties: %s)", field.Name, strings.Join(sortedKeys(props), ", "))
		}
		if presented[field.Name] {
			c.problem(field.At, "field.duplicate", "form field %q is presented twice", field.Name)
		}
		presented[field.Name] = true
		c.text(field.Label, "the label of "+field.Name, field.At)
		if field.Hint != nil {
			c.text(*field.Hint, "the hint of "+field.Name, field.At)
		}
		if len(field.Options) > 0 {
			prop, _ := props[field.Name].(map[string]any)
			enum := EnumValues(prop)
			if enum == nil {
				c.problem(field.Keys.at("options", field.At), "form.options", "field %q has options but its schema has no enum of strings", field.Name)
			}
			for _, v := range enum {
				if _, ok := field.Options[v]; !ok {
					c.problem(field.Keys.at("options", field.At), "form.options", "field %q: enum value %q has no label in options", field.Name, v)
				}
			}
			for _, v := range sortedKeys(field.Options) {
				if enum != nil && !slices.Contains(enum, v) {
					c.problem(field.Keys.at("options", field.At), "form.options", "field %q: option %q is not a value of its enum", field.Name, v)
				}
				c.text(field.Options[v], "the label of option "+v+" of "+field.Name, field.At)
			}
		}
	}
	if iinProp, _ := props["iin"].(map[string]any); c.file.Audience == "citizen" && (iinProp == nil || iinProp["type"] != "string") {
		// Until sign-in exists the applicant is named by the form.
		c.problem(form.Schema.At, "form.applicant", "a citizen service needs a string input \"iin\": the applicant's IIN")
	}
	for _, name := range sortedKeys(props) {
		if !presented[name] {
			c.problem(form.At, "form.unpresented", "input %q has no entry in form.fields (its label in kk, ru and en)", name)
		}
	}
	// visibleWhen is checked once the environment exists (it may use data).
}

// checkPrefill checks each form field's prefill: a registry of the
// environment keyed by the applicant's IIN, an attribute it holds, and a
// field of a scalar type the value can fill.
func (c *compiler) checkPrefill() {
	schema, _ := c.file.Form.Schema.Value.(map[string]any)
	props, _ := schema["properties"].(map[string]any)
	for _, field := range c.file.Form.Fields {
		if field.Prefill == "" {
			continue
		}
		at := field.Keys.at("prefill", field.At)
		name, attr := field.PrefillSource()
		if name == "" || attr == "" || strings.Contains(attr, ".") {
			c.problem(at, "form.prefill", "field %q: prefill must be <registry>.<attribute>, not %q", field.Name, field.Prefill)
			continue
		}
		reg, ok := c.env.Registries[name]
		if !ok {
			c.problem(at, "ref.unknown_registry", "field %q: registry %q does not exist (known: %s)", field.Name, name, strings.Join(sortedKeys(c.env.Registries), ", "))
			continue
		}
		regProps, _ := reg.Record["properties"].(map[string]any)
		if reg.Key != "iin" {
			c.problem(at, "form.prefill", "field %q: registry %q is keyed by %q, not the applicant's iin: there is no one record of the applicant to prefill from", field.Name, name, reg.Key)
		}
		attrSchema, ok := regProps[attr].(map[string]any)
		if !ok {
			c.problem(at, "ref.unknown_field", "field %q: prefill names %q, which registry %q does not hold (fields: %s)", field.Name, attr, name, strings.Join(sortedKeys(regProps), ", "))
			continue
		}
		prop, _ := props[field.Name].(map[string]any)
		if t, _ := attrSchema["type"].(string); t == "object" || t == "array" {
			c.problem(at, "form.prefill", "field %q: %s.%s is an %s: only a single value can fill a field", field.Name, name, attr, t)
		} else if pt, _ := prop["type"].(string); t != "" && pt != "" && t != pt {
			c.problem(at, "form.prefill", "field %q is a %s, but %s.%s is a %s", field.Name, pt, name, attr, t)
		}
	}
}

// SchemaErrors renders a JSON Schema validation error as "at /path: reason"
// clauses, without the schema's internal URL.
func SchemaErrors(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return oneLine(err)
	}
	var parts []string
	for _, u := range ve.BasicOutput().Errors {
		if u.Error == nil || len(u.Error.String()) == 0 {
			continue
		}
		msg := u.Error.String()
		if strings.HasPrefix(msg, "validation failed") {
			continue
		}
		parts = append(parts, "at /"+strings.TrimPrefix(u.InstanceLocation, "/")+": "+msg)
	}
	if len(parts) == 0 {
		return oneLine(err)
	}
	return strings.Join(parts, "; ")
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

func (c *compiler) checkData() {
	seen := map[string]bool{}
	for i := range c.file.Data {
		ds := &c.file.Data[i]
		if !identifier.MatchString(ds.Name) {
			c.problem(ds.At, "data.name", "data source name %q must be a lower-case identifier", ds.Name)
			continue
		}
		if seen[ds.Name] {
			c.problem(ds.At, "field.duplicate", "data source %q is declared twice", ds.Name)
			continue
		}
		seen[ds.Name] = true
		if ds.Exchange != "" || ds.Path != nil || ds.Response.Value != nil {
			if ds.By != "" {
				c.problem(ds.Keys.at("by", ds.At), "step.field", "data source %q: by belongs to registry reads", ds.Name)
			}
			c.checkExchangeSource(ds)
			continue
		}
		reg, ok := c.env.Registries[ds.Registry]
		if !ok {
			c.problem(ds.Keys.at("registry", ds.At), "ref.unknown_registry", "registry %q does not exist (known: %s)", ds.Registry, strings.Join(sortedKeys(c.env.Registries), ", "))
			c.data.fields[ds.Name] = types.DynType
			continue
		}
		if reg.Personal && ds.Basis == "" && !ds.Consent {
			c.problem(ds.At, "data.no_basis", "registry %q holds personal data: name the legal basis (basis:) or require consent (consent: true)", ds.Registry)
		}
		c.data.fields[ds.Name] = c.provider.schemaType("registry."+ds.Registry, reg.Record)
		props, _ := reg.Record["properties"].(map[string]any)
		if ds.By != "" {
			if _, ok := props[ds.By]; !ok {
				c.problem(ds.Keys.at("by", ds.At), "ref.unknown_field", "data source %q reads by %q, which registry %q does not hold (fields: %s)", ds.Name, ds.By, ds.Registry, strings.Join(sortedKeys(props), ", "))
			} else if reg.Indexed != nil && !slices.Contains(reg.Indexed, ds.By) {
				c.problem(ds.Keys.at("by", ds.At), "data.by_unindexed", "data source %q reads every record of registry %q whose %s is the key, and %s has no index there: each application would read the whole registry (the registry's definition must declare it indexed: true)", ds.Name, ds.Registry, ds.By, ds.By)
			}
			if len(ds.Prefill) > 0 {
				c.problem(ds.Keys.at("prefill", ds.At), "data.prefill_list", "data source %q reads a list (by:): there is no one record to prefill from", ds.Name)
			}
			c.data.fields[ds.Name] = types.NewListType(c.data.fields[ds.Name])
		}
		for _, p := range ds.Prefill {
			if _, ok := props[p]; !ok {
				c.problem(ds.Keys.at("prefill", ds.At), "ref.unknown_field", "prefill names %q, which registry %q does not hold (fields: %s)", p, ds.Registry, strings.Join(sortedKeys(props), ", "))
			}
		}
	}
	// Once only: the form must not ask for what a data source already reads.
	schema, _ := c.file.Form.Schema.Value.(map[string]any)
	formProps, _ := schema["properties"].(map[string]any)
	for _, ds := range c.file.Data {
		for _, p := range ds.Prefill {
			if _, asked := formProps[p]; asked {
				c.problem(ds.Keys.at("prefill", ds.At), "form.once_only", "the form asks for %q, which data source %q already reads from %s: the state must not ask again", p, ds.Name, ds.origin())
			}
		}
	}
	// Keys may use inputs only: data is what the key fetches.
	keyEnv := c.newEnv(false, false)
	for _, ds := range c.file.Data {
		if !seen[ds.Name] {
			continue
		}
		pd := PlanData{Source: ds, Response: c.responses[ds.Name]}
		var ok bool
		pd.Key, ok = c.compile(keyEnv, "data."+ds.Name+".key", ds.Key, types.StringType, ds.At)
		if ds.Path != nil {
			path, pathOK := c.compile(keyEnv, "data."+ds.Name+".path", *ds.Path, types.StringType, ds.At)
			pd.Path, ok = &path, ok && pathOK
		}
		if ds.When != nil {
			when, whenOK := c.compile(keyEnv, "data."+ds.Name+".when", *ds.When, types.BoolType, ds.At)
			pd.When, ok = &when, ok && whenOK
		}
		if ok {
			c.plan.Data = append(c.plan.Data, pd)
		}
	}
}

// checkOutputs compiles what officers record at review steps, before the
// rules, so that rules and later steps can read review.<step>.<field>.
func (c *compiler) checkOutputs() {
	for _, s := range c.file.Steps {
		if s.Outputs.Value == nil {
			continue
		}
		if s.Type != StepReview {
			c.problem(s.Keys.at("outputs", s.At), "step.field", "step %q: outputs belong to review steps", s.ID)
			continue
		}
		schema, ok := s.Outputs.Value.(map[string]any)
		if !ok || schema["type"] != "object" {
			c.problem(s.Keys.at("outputs", s.At), "step.outputs", "review step %q: outputs must be a JSON Schema with type: object", s.ID)
			continue
		}
		compiled, err := compileSchema(schema, false)
		if err != nil {
			c.problem(s.Keys.at("outputs", s.At), "step.outputs", "review step %q: outputs is not a valid JSON Schema: %v", s.ID, err)
			continue
		}
		if identifier.MatchString(s.ID) {
			c.outputs[s.ID] = compiled
			c.review.fields[s.ID] = c.provider.schemaType("outputs."+s.ID, schema)
		}
	}
}

// schemaURL names a schema of a service file. A relative name would be
// resolved against the working directory, which then shows in messages.
const schemaURL = "https://schemas.ortaq.kz/service-file.json"

// compileSchema compiles a JSON Schema (2020-12 unless it says otherwise)
// written in a service file; its error says what is wrong without naming
// the compiler's internal URL. assertFormat makes "format" a check, as the
// form's inputs need.
func compileSchema(schema any, assertFormat bool) (*jsonschema.Schema, error) {
	compiler := jsonschema.NewCompiler()
	compiler.DefaultDraft(jsonschema.Draft2020)
	compiler.UseLoader(noExternalRefs{})
	if assertFormat {
		compiler.AssertFormat()
	}
	err := compiler.AddResource(schemaURL, schema)
	if err == nil {
		var s *jsonschema.Schema
		if s, err = compiler.Compile(schemaURL); err == nil {
			return s, nil
		}
	}
	msg := strings.ReplaceAll(oneLine(err), strconv.Quote(schemaURL+"#")+" ", "the schema ")
	return nil, errors.New(strings.ReplaceAll(msg, schemaURL, "the schema"))
}

// noExternalRefs refuses every $ref outside the schema itself: a service
// file must not make the platform read its own files or fetch URLs.
type noExternalRefs struct{}

func (noExternalRefs) Load(url string) (any, error) {
	return nil, fmt.Errorf("$ref to %s: a schema may refer only to itself (#/...)", url)
}

// exchangeService is an X-Road service id: INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE.
var exchangeService = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}/[A-Z]{2,10}/[A-Za-z0-9.-]{1,64}/[A-Za-z0-9._-]{1,64}/[A-Za-z0-9._-]{1,128}$`)

// checkExchangeSource checks a data source read through the exchange
// gateway. What another agency's system returns is about a person (the
// key): the read needs a legal basis or the person's consent, like a
// personal-data registry.
func (c *compiler) checkExchangeSource(ds *DataSource) {
	c.data.fields[ds.Name] = types.DynType
	if ds.Registry != "" {
		c.problem(ds.Keys.at("registry", ds.At), "field.one_of", "data source %q reads either a registry or an exchange service, not both", ds.Name)
		return
	}
	if !exchangeService.MatchString(ds.Exchange) {
		c.problem(ds.Keys.at("exchange", ds.At), "data.exchange_service", "data source %q: exchange must be an X-Road service id INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE, e.g. KZ/GOV/MIA/registry/persons-v1, not %q", ds.Name, ds.Exchange)
	} else if c.env.Exchange != nil && !c.env.Exchange[ds.Exchange] {
		c.problem(ds.Keys.at("exchange", ds.At), "ref.unknown_exchange_service", "exchange service %q is not in the exchange catalogue", ds.Exchange)
	}
	if ds.Basis == "" && !ds.Consent {
		c.problem(ds.At, "data.no_basis", "data source %q reads another agency's data about a person: name the legal basis (basis:) or require consent (consent: true)", ds.Name)
	}
	schema, ok := ds.Response.Value.(map[string]any)
	if !ok || schema["type"] != "object" {
		c.problem(ds.Keys.at("response", ds.At), "field.required", "data source %q needs response: the JSON Schema of the answer, an object with properties", ds.Name)
		return
	}
	compiled, err := compileSchema(schema, false)
	if err != nil {
		c.problem(ds.Keys.at("response", ds.At), "data.response_schema", "data source %q: response is not a valid JSON Schema: %v", ds.Name, err)
		return
	}
	c.responses[ds.Name] = compiled
	c.data.fields[ds.Name] = c.provider.schemaType("exchange."+ds.Name, schema)
	props, _ := schema["properties"].(map[string]any)
	for _, p := range ds.Prefill {
		if _, ok := props[p]; !ok {
			c.problem(ds.Keys.at("prefill", ds.At), "ref.unknown_field", "prefill names %q, which the response of %q does not hold (fields: %s)", p, ds.Exchange, strings.Join(sortedKeys(props), ", "))
		}
	}
}

// origin says where a data source reads from, for messages.
func (ds DataSource) origin() string {
	if ds.Exchange != "" {
		return "exchange service " + strconv.Quote(ds.Exchange)
	}
	return "registry " + strconv.Quote(ds.Registry)
}

func (c *compiler) newEnv(withData, withDerived bool) *cel.Env {
	opts := []cel.EnvOption{
		cel.CustomTypeProvider(c.provider),
		cel.Variable("inputs", c.inputs),
		cel.Variable("now", celTimestamp),
		ext.Strings(),
		ext.Math(),
	}
	if withData {
		opts = append(opts, cel.Variable("data", types.NewObjectType("data")))
	}
	if withDerived {
		opts = append(opts, cel.Variable("derived", types.NewObjectType("derived")),
			cel.Variable("review", types.NewObjectType("review")))
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		panic("servicedef: CEL environment: " + err.Error()) // a bug, not bad input
	}
	return env
}

// compile type-checks one expression; want nil accepts any type.
func (c *compiler) compile(env *cel.Env, name string, e Expr, want *types.Type, owner Pos) (PlanExpr, bool) {
	at := e.At
	if at.Line == 0 {
		at = owner
	}
	if strings.TrimSpace(e.Src) == "" {
		c.problem(at, "expr.empty", "%s: an expression is required", name)
		return PlanExpr{}, false
	}
	if len(e.Src) > 4096 {
		c.problem(at, "expr.too_long", "%s: expressions are limited to 4096 characters", name)
		return PlanExpr{}, false
	}
	ast, iss := env.Compile(e.Src)
	if iss != nil && iss.Err() != nil {
		for _, ce := range iss.Errors() {
			c.problem(exprPos(e, at, ce.Location.Line(), ce.Location.Column()), "expr.compile", "%s: %s", name, ce.Message)
		}
		return PlanExpr{}, false
	}
	if want != nil && !ast.OutputType().IsExactType(want) && ast.OutputType() != types.DynType {
		c.problem(at, "expr.type", "%s must be %s, but the expression gives %s", name, want, ast.OutputType())
		return PlanExpr{}, false
	}
	est, err := env.EstimateCost(ast, zeroEstimator{})
	if err == nil && est.Min > CostBudget {
		c.problem(at, "expr.cost", "%s costs at least %d units, over the budget of %d", name, est.Min, CostBudget)
		return PlanExpr{}, false
	}
	prg, err := env.Program(ast, cel.CostLimit(CostBudget), cel.InterruptCheckFrequency(100))
	if err != nil {
		c.problem(at, "expr.compile", "%s: %s", name, oneLine(err))
		return PlanExpr{}, false
	}
	return PlanExpr{Name: name, Program: prg, Type: ast.OutputType(), Src: e}, true
}

// exprPos maps a position inside an expression onto the file.
func exprPos(e Expr, at Pos, line, col int) Pos {
	if e.Inline && line <= 1 {
		quote := 0
		if e.Quoted {
			quote = 1
		}
		return Pos{Line: at.Line, Col: at.Col + quote + col}
	}
	if !e.Inline {
		// A block scalar starts on the line after its indicator.
		return Pos{Line: at.Line + line, Col: col + 1}
	}
	return Pos{Line: at.Line + line - 1, Col: col + 1}
}

func (c *compiler) checkRules() {
	// One environment serves every rule and step: the type provider is
	// asked for the derived fields at check time, so each derived value sees
	// exactly the ones declared before it.
	c.exprEnv = c.newEnv(true, true)
	env := c.exprEnv
	seen := map[string]bool{}
	for _, dv := range c.file.Rules.Derive {
		if !identifier.MatchString(dv.Name) || seen[dv.Name] {
			c.problem(dv.At, "rule.name", "derived value name %q must be a unique lower-case identifier", dv.Name)
			continue
		}
		seen[dv.Name] = true
		// Each derived value sees the ones before it.
		if pe, ok := c.compile(env, "derive."+dv.Name, dv.Expr, nil, dv.At); ok {
			c.derived.fields[dv.Name] = pe.Type
			pe.Name = dv.Name
			c.plan.Derived = append(c.plan.Derived, pe)
		} else {
			c.derived.fields[dv.Name] = types.DynType
		}
	}
	names := map[string]bool{}
	for _, r := range c.file.Rules.Eligibility {
		if !identifier.MatchString(r.Name) || names[r.Name] {
			c.problem(r.At, "rule.name", "eligibility rule name %q must be a unique lower-case identifier", r.Name)
			continue
		}
		names[r.Name] = true
		if _, ok := c.file.Texts.Refusals[r.Refusal]; !ok {
			c.problem(r.Keys.at("refusal", r.At), "ref.unknown_refusal", "rule %q refuses with %q, which texts.refusals does not define", r.Name, r.Refusal)
		}
		if pe, ok := c.compile(env, "eligibility."+r.Name, r.Expr, types.BoolType, r.At); ok {
			c.plan.Eligibility = append(c.plan.Eligibility, PlanRule{Rule: r, Expr: pe})
		}
	}
	for _, field := range c.file.Form.Fields {
		if field.VisibleWhen != nil {
			c.compile(env, "form.fields."+field.Name+".visibleWhen", *field.VisibleWhen, types.BoolType, field.At)
		}
	}
}

var decisionsAllowed = []string{"approve", "refuse", "return"}

// MaxAttempts bounds a step's attempts: with exponential backoff the last
// one comes about a day after the first.
const MaxAttempts = 20

func (c *compiler) checkSteps(roles []string) {
	steps := c.file.Steps
	if len(steps) == 0 {
		c.problem(c.file.At, "steps.none", "steps: a service needs at least one step")
		return
	}
	index := map[string]int{}
	for i, s := range steps {
		if !identifier.MatchString(s.ID) {
			c.problem(s.At, "step.id", "step id %q must be a lower-case identifier", s.ID)
		} else if _, dup := index[s.ID]; dup {
			c.problem(s.At, "field.duplicate", "step id %q is used twice", s.ID)
		}
		index[s.ID] = i
	}
	env := c.exprEnv
	hasDecide := false
	for i, s := range steps {
		ps := PlanStep{Step: s, Next: i + 1, Outputs: c.outputs[s.ID]}
		if i+1 == len(steps) {
			ps.Next = -1
		}
		if s.Next != "" {
			if s.Next == "end" {
				ps.Next = -1
			} else if j, ok := index[s.Next]; ok {
				ps.Next = j
			} else {
				c.problem(s.Keys.at("next", s.At), "ref.unknown_step", "step %q continues with %q, which is not a step (or \"end\")", s.ID, s.Next)
			}
		}
		if s.When != nil {
			if pe, ok := c.compile(env, "steps."+s.ID+".when", *s.When, types.BoolType, s.At); ok {
				ps.When = &pe
			}
		}
		switch s.Type {
		case StepDecide:
			hasDecide = true
		case StepReview:
			if s.Role == "" {
				c.problem(s.At, "field.required", "review step %q needs a role", s.ID)
			} else if !slices.Contains(roles, s.Role) {
				c.problem(s.Keys.at("role", s.At), "ref.unknown_role", "role %q is not a role of agency %q (roles: %s)", s.Role, c.file.Owner, strings.Join(roles, ", "))
			}
			if s.Deadline == nil || s.Deadline.D <= 0 {
				c.problem(s.At, "field.required", "review step %q needs a deadline (ISO 8601, e.g. P3D)", s.ID)
			}
			if len(s.Decisions) == 0 {
				c.problem(s.At, "field.required", "review step %q needs the decisions it allows (%s)", s.ID, strings.Join(decisionsAllowed, ", "))
			}
			for _, d := range s.Decisions {
				if !slices.Contains(decisionsAllowed, d) {
					c.problem(s.Keys.at("decisions", s.At), "step.decision", "decision %q is not one of %s", d, strings.Join(decisionsAllowed, ", "))
				}
			}
			if slices.Contains(s.Decisions, "refuse") && len(s.Refusals) == 0 {
				c.problem(s.At, "field.required", "review step %q allows refuse: list the refusals the officer may give (codes of texts.refusals)", s.ID)
			}
			for _, r := range s.Refusals {
				if _, ok := c.file.Texts.Refusals[r]; !ok {
					c.problem(s.Keys.at("refusals", s.At), "ref.unknown_refusal", "review step %q offers refusal %q, which texts.refusals does not define", s.ID, r)
				}
			}
			if s.EscalateTo != "" && !slices.Contains(roles, s.EscalateTo) {
				c.problem(s.Keys.at("escalateTo", s.At), "ref.unknown_role", "role %q is not a role of agency %q (roles: %s)", s.EscalateTo, c.file.Owner, strings.Join(roles, ", "))
			}
		case StepIssue:
			if s.Document == nil || s.Document.Kind == "" || len(s.Document.Fields) == 0 {
				c.problem(s.At, "field.required", "issue step %q needs document.kind and document.fields", s.ID)
				break
			}
			names := map[string]bool{}
			for _, fe := range s.Document.Fields {
				names[fe.Name] = true
				if pe, ok := c.compile(env, "document.fields."+fe.Name, fe.Expr, nil, s.Document.At); ok {
					pe.Name = fe.Name
					ps.Document = append(ps.Document, pe)
				}
			}
			for _, name := range sortedKeys(s.Document.Labels) {
				if !names[name] {
					c.problem(s.Document.Keys.at("labels", s.Document.At), "ref.unknown_field", "document label for %q, which is not a document field", name)
				}
				c.text(s.Document.Labels[name], "the label of document field "+name, s.Document.At)
			}
		case StepWait:
			switch {
			case (s.Until == nil) == (s.After == nil):
				c.problem(s.At, "field.required", "wait step %q needs either until (a CEL timestamp) or after (an ISO 8601 duration)", s.ID)
			case s.Until != nil:
				if pe, ok := c.compile(env, "steps."+s.ID+".until", *s.Until, types.TimestampType, s.At); ok {
					ps.Until = &pe
				}
			case s.After.D <= 0:
				c.problem(s.Keys.at("after", s.At), "field.range", "wait step %q: after must be longer than zero", s.ID)
			}
		case StepFee:
			switch a := s.Amount; {
			case a == nil || (a.MRP == 0 && a.KZT == 0):
				c.problem(s.At, "field.required", "fee step %q needs an amount: amount: {mrp: 0.5} or amount: {kzt: 1500}", s.ID)
			case a.MRP != 0 && a.KZT != 0:
				c.problem(a.At, "field.one_of", "fee step %q: give the amount in mrp or in kzt, not both", s.ID)
			case a.MRP < 0 || a.KZT < 0 || a.MRP > maxFeeMRP || a.KZT > maxFeeKZT:
				c.problem(a.At, "field.range", "fee step %q: the amount must be above zero and at most %d MRP or %d KZT", s.ID, maxFeeMRP, maxFeeKZT)
			case a.KZT != 0 && math.Round(a.KZT*100) != a.KZT*100:
				c.problem(a.Keys.at("kzt", a.At), "field.range", "fee step %q: an amount in tenge has at most two decimals (tiyn)", s.ID)
			}
			c.awaited(s)
		case StepCall:
			if !exchangeService.MatchString(s.Service) {
				c.problem(s.Keys.at("service", s.At), "step.exchange_service", "call step %q: service must be an X-Road service id INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE, e.g. KZ/GOV/KGD/tax/registrations-v1, not %q", s.ID, s.Service)
			} else if c.env.Exchange != nil && !c.env.Exchange[s.Service] {
				c.problem(s.Keys.at("service", s.At), "ref.unknown_exchange_service", "exchange service %q is not in the exchange catalogue", s.Service)
			}
			if s.CallPath != nil {
				if pe, ok := c.compile(env, "steps."+s.ID+".path", *s.CallPath, types.StringType, s.At); ok {
					ps.CallPath = &pe
				}
			}
			if len(s.Body) == 0 {
				c.problem(s.At, "field.required", "call step %q needs a body: the fields to send, each a CEL expression", s.ID)
			}
			for _, fe := range s.Body {
				if pe, ok := c.compile(env, "steps."+s.ID+".body."+fe.Name, fe.Expr, nil, s.At); ok {
					pe.Name = fe.Name
					ps.Body = append(ps.Body, pe)
				}
			}
		case StepSign:
			if s.Signer != "" && s.Signer != SignerApplicant {
				c.problem(s.Keys.at("signer", s.At), "step.signer", "sign step %q: the signer must be %q (the person who applies), not %q", s.ID, SignerApplicant, s.Signer)
			}
			c.awaited(s)
		case StepNotify:
			if s.Message == nil {
				c.problem(s.At, "field.required", "notify step %q needs a message in kk, ru and en", s.ID)
			} else {
				c.text(*s.Message, "the message of step "+s.ID, s.At)
			}
		default:
			c.problem(s.Keys.at("type", s.At), "step.type", "step type %q is not one of decide, review, fee, sign, call, issue, notify, wait", s.Type)
		}
		if s.Type != StepReview && (s.Role != "" || len(s.Decisions) > 0 || s.EscalateTo != "" || len(s.Refusals) > 0) {
			c.problem(s.At, "step.field", "step %q: role, decisions, escalateTo and refusals belong to review steps", s.ID)
		}
		if s.Deadline != nil && s.Type != StepReview && s.Type != StepFee && s.Type != StepSign {
			c.problem(s.Keys.at("deadline", s.At), "step.field", "step %q: deadline belongs to review, fee and sign steps", s.ID)
		}
		if s.Refusal != "" && s.Type != StepFee && s.Type != StepSign {
			c.problem(s.Keys.at("refusal", s.At), "step.field", "step %q: refusal belongs to fee and sign steps (a review step lists refusals)", s.ID)
		}
		if s.Amount != nil && s.Type != StepFee {
			c.problem(s.Keys.at("amount", s.At), "step.field", "step %q: amount belongs to fee steps", s.ID)
		}
		if s.Type != StepCall && (s.Service != "" || s.CallPath != nil || len(s.Body) > 0) {
			c.problem(s.At, "step.field", "step %q: service, path and body belong to call steps", s.ID)
		}
		if s.Signer != "" && s.Type != StepSign {
			c.problem(s.Keys.at("signer", s.At), "step.field", "step %q: signer belongs to sign steps", s.ID)
		}
		if s.Type != StepWait && (s.Until != nil || s.After != nil) {
			c.problem(s.At, "step.field", "step %q: until and after belong to wait steps", s.ID)
		}
		if s.Attempts < 0 || s.Attempts > MaxAttempts {
			c.problem(s.Keys.at("attempts", s.At), "field.range", "step %q: attempts must be between 1 and %d", s.ID, MaxAttempts)
		}
		if s.Timeout != nil && (s.Timeout.D < time.Second || s.Timeout.D > 10*time.Minute) {
			c.problem(s.Keys.at("timeout", s.At), "field.range", "step %q: timeout must be between PT1S and PT10M", s.ID)
		}
		c.plan.Steps = append(c.plan.Steps, ps)
	}
	if len(c.file.Rules.Eligibility) > 0 && !hasDecide {
		c.problem(c.file.At, "rules.unused", "eligibility rules exist but no decide step evaluates them")
	}
	c.checkCycles()
}

// Bounds of a fee, against typing errors (a fee of millions of MRP).
const (
	maxFeeMRP = 10_000
	maxFeeKZT = 100_000_000
)

// awaited checks what fee and sign steps share: a deadline for the
// applicant and the refusal given when it passes.
func (c *compiler) awaited(s Step) {
	if s.Deadline == nil || s.Deadline.D <= 0 {
		c.problem(s.At, "field.required", "%s step %q needs a deadline for the applicant (ISO 8601, e.g. P5D)", s.Type, s.ID)
	}
	if s.Refusal == "" {
		c.problem(s.At, "field.required", "%s step %q needs the refusal given when its deadline passes (a code of texts.refusals)", s.Type, s.ID)
	} else if _, ok := c.file.Texts.Refusals[s.Refusal]; !ok {
		c.problem(s.Keys.at("refusal", s.At), "ref.unknown_refusal", "%s step %q refuses with %q, which texts.refusals does not define", s.Type, s.ID, s.Refusal)
	}
}

// Waits reports whether step type t pauses for a person: an officer, or
// the applicant paying or signing.
func Waits(t string) bool { return t == StepReview || t == StepFee || t == StepSign }

// checkCycles refuses loops that no human step interrupts: they would run
// forever on their own. Each loop is reported once, at its first step.
func (c *compiler) checkCycles() {
	steps := c.plan.Steps
	reported := map[int]bool{}
	for start := range steps {
		seen := map[int]bool{}
		for i := start; i >= 0 && i < len(steps); i = steps[i].Next {
			if steps[i].Step.Type == StepReview {
				break
			}
			if seen[i] {
				if i == start && !reported[start] {
					for j := start; ; {
						reported[j] = true
						if j = steps[j].Next; j == start {
							break
						}
					}
					c.problem(steps[start].Step.At, "step.cycle", "step %q leads back to itself without a review step in between", steps[start].Step.ID)
				}
				break
			}
			seen[i] = true
		}
	}
}

func (c *compiler) checkTests() {
	if len(c.file.Tests) == 0 {
		c.problem(c.file.At, "tests.none", "a service needs test cases (tests:) that show its outcomes")
	}
	var docFields []string
	for _, s := range c.file.Steps {
		if s.Document != nil {
			for _, f := range s.Document.Fields {
				docFields = append(docFields, f.Name)
			}
		}
	}
	for _, tc := range c.file.Tests {
		if tc.Name == "" {
			c.problem(tc.At, "field.required", "a test case needs a name")
		}
		if tc.Now != "" {
			if _, err := parseNow(tc.Now); err != nil {
				c.problem(tc.Keys.at("now", tc.At), "test.now", "test %q: now must be RFC 3339 (2026-11-23T09:00:00Z) or a date (2026-11-23), found %q", tc.Name, tc.Now)
			}
		}
		for _, step := range sortedKeys(tc.Outputs) {
			if c.outputs[step] == nil {
				c.problem(tc.Keys.at("outputs", tc.At), "ref.unknown_step", "test %q gives outputs for step %q, which is not a review step with outputs", tc.Name, step)
			}
		}
		for _, name := range sortedKeys(tc.Exchange) {
			if !slices.ContainsFunc(c.file.Data, func(ds DataSource) bool { return ds.Name == name && ds.Exchange != "" }) {
				c.problem(tc.Keys.at("exchange", tc.At), "ref.unknown_data", "test %q gives answers for %q, which is not an exchange data source", tc.Name, name)
			}
		}
		for reg := range tc.Registry {
			if _, ok := c.env.Registries[reg]; !ok {
				c.problem(tc.At, "ref.unknown_registry", "test %q loads registry %q, which does not exist", tc.Name, reg)
			}
		}
		if c.plan.Inputs != nil && tc.Inputs.Set {
			if err := c.plan.Inputs.Validate(tc.Inputs.Value); err != nil {
				c.problem(tc.Inputs.At, "test.inputs", "test %q: inputs do not match form.schema: %s", tc.Name, SchemaErrors(err))
			}
		}
		switch tc.Expect.Outcome {
		case "completed", "refused", "returned":
		default:
			c.problem(tc.Expect.Keys.at("outcome", tc.Expect.At), "test.outcome", "test %q: expect.outcome must be completed, refused or returned, found %q", tc.Name, tc.Expect.Outcome)
		}
		if tc.Expect.Refusal != "" {
			if _, ok := c.file.Texts.Refusals[tc.Expect.Refusal]; !ok {
				c.problem(tc.Expect.Keys.at("refusal", tc.Expect.At), "ref.unknown_refusal", "test %q expects refusal %q, which texts.refusals does not define", tc.Name, tc.Expect.Refusal)
			}
		}
		for name := range tc.Expect.Document {
			if !slices.Contains(docFields, name) {
				c.problem(tc.Expect.At, "ref.unknown_field", "test %q expects document field %q, which no issue step produces", tc.Name, name)
			}
		}
		for _, step := range sortedKeys(tc.Decisions) {
			i := slices.IndexFunc(c.file.Steps, func(s Step) bool { return s.ID == step && Waits(s.Type) })
			if i < 0 {
				c.problem(tc.At, "ref.unknown_step", "test %q decides step %q, which is not a review, fee or sign step", tc.Name, step)
				continue
			}
			if _, _, err := c.file.Steps[i].ParseDecision(tc.Decisions[step]); err != nil {
				c.problem(tc.At, "step.decision", "test %q: %v", tc.Name, err)
			}
		}
	}
}

// Attributes names every attribute of a registry's records as consents
// name them ("registry.attribute"), in order.
func (p *Plan) Attributes(registry string) []string {
	props, _ := p.env.Registries[registry].Record["properties"].(map[string]any)
	out := make([]string, 0, len(props))
	for _, name := range sortedKeys(props) {
		out = append(out, registry+"."+name)
	}
	return out
}

// Target is the promised delivery time.
func (p *Plan) Target() time.Duration { return p.File.SLA.Target.D }

// Describe renders the plan as stable text, for golden tests and reviews.
func (p *Plan) Describe() string {
	f := p.File
	var b strings.Builder
	fmt.Fprintf(&b, "service %s v%d: owner %s, audience %s, category %s, target %s, legal deadline %d working days\n",
		f.ID, f.Version, f.Owner, f.Audience, f.Category, f.SLA.Target.D, f.SLA.LegalDays)
	schema, _ := f.Form.Schema.Value.(map[string]any)
	props, _ := schema["properties"].(map[string]any)
	for _, name := range sortedKeys(props) {
		fmt.Fprintf(&b, "input %s: %s\n", name, p.inputsField(name))
	}
	for _, d := range p.Data {
		basis := "consent"
		if d.Source.Basis != "" {
			basis = "basis " + strconvQuote(d.Source.Basis)
		}
		if d.Source.Exchange != "" {
			path := `"/" + key`
			if d.Path != nil {
				path = strings.TrimSpace(d.Path.Src.Src)
			}
			fmt.Fprintf(&b, "data %s <- exchange %s GET %s about %s (%s), prefill %v\n", d.Source.Name, d.Source.Exchange, path, d.Key.Src.Src, basis, d.Source.Prefill)
			continue
		}
		if d.Source.By != "" {
			fmt.Fprintf(&b, "data %s <- %s where %s = %s (%s)\n", d.Source.Name, d.Source.Registry, d.Source.By, d.Key.Src.Src, basis)
			continue
		}
		fmt.Fprintf(&b, "data %s <- %s[%s] (%s), prefill %v\n", d.Source.Name, d.Source.Registry, d.Key.Src.Src, basis, d.Source.Prefill)
	}
	for _, d := range p.Derived {
		fmt.Fprintf(&b, "derive %s: %s\n", d.Name, d.Type)
	}
	for _, r := range p.Eligibility {
		fmt.Fprintf(&b, "eligibility %s, else refuse %s\n", r.Rule.Name, r.Rule.Refusal)
	}
	for _, s := range p.Steps {
		next := "end"
		if s.Next >= 0 {
			next = p.Steps[s.Next].Step.ID
		}
		fmt.Fprintf(&b, "step %s %s", s.Step.ID, s.Step.Type)
		if s.When != nil {
			fmt.Fprintf(&b, " when %s", strings.TrimSpace(s.When.Src.Src))
		}
		switch s.Step.Type {
		case StepReview:
			fmt.Fprintf(&b, " by %s within %s, decisions %v", s.Step.Role, s.Step.Deadline.D, s.Step.Decisions)
			if len(s.Step.Refusals) > 0 {
				fmt.Fprintf(&b, ", refusals %v", s.Step.Refusals)
			}
			if s.Step.EscalateTo != "" {
				fmt.Fprintf(&b, ", escalate to %s", s.Step.EscalateTo)
			}
			if s.Outputs != nil {
				schema, _ := s.Step.Outputs.Value.(map[string]any)
				props, _ := schema["properties"].(map[string]any)
				fmt.Fprintf(&b, ", records %v", sortedKeys(props))
			}
		case StepFee:
			fmt.Fprintf(&b, " %s within %s, else refuse %s", s.Step.Amount, s.Step.Deadline.D, s.Step.Refusal)
		case StepCall:
			path := `"/"`
			if s.CallPath != nil {
				path = strings.TrimSpace(s.CallPath.Src.Src)
			}
			fmt.Fprintf(&b, " POST %s %s {", s.Step.Service, path)
			for i, d := range s.Body {
				if i > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "%s: %s", d.Name, d.Type)
			}
			b.WriteString("}")
		case StepSign:
			fmt.Fprintf(&b, " by %s within %s, else refuse %s", cmp.Or(s.Step.Signer, SignerApplicant), s.Step.Deadline.D, s.Step.Refusal)
		case StepWait:
			if s.Until != nil {
				fmt.Fprintf(&b, " until %s", strings.TrimSpace(s.Until.Src.Src))
			} else {
				fmt.Fprintf(&b, " for %s", s.Step.After.D)
			}
		case StepIssue:
			fmt.Fprintf(&b, " %s {", s.Step.Document.Kind)
			for i, d := range s.Document {
				if i > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "%s: %s", d.Name, d.Type)
			}
			b.WriteString("}")
		}
		fmt.Fprintf(&b, " -> %s\n", next)
	}
	fmt.Fprintf(&b, "tests %d\n", len(f.Tests))
	return b.String()
}

func (p *Plan) inputsField(name string) string {
	schema, _ := p.File.Form.Schema.Value.(map[string]any)
	props, _ := schema["properties"].(map[string]any)
	prop, _ := props[name].(map[string]any)
	t, _ := prop["type"].(string)
	return t
}

func strconvQuote(s string) string { return fmt.Sprintf("%q", s) }

// EnumValues returns a schema's enum when it is a list of strings, in order.
func EnumValues(schema map[string]any) []string {
	list, ok := schema["enum"].([]any)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(list))
	for _, v := range list {
		s, ok := v.(string)
		if !ok {
			return nil
		}
		out = append(out, s)
	}
	return out
}
