package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"go.yaml.in/yaml/v3"

	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/iin"
)

// Key kinds: what identifies a record of a registry.
const (
	KeyIIN = "iin" // a person's IIN, checked by internal/iin
	KeyBIN = "bin" // a legal entity's BIN, checked by internal/iin
	KeyID  = "id"  // the registry's own identifier (pattern from the key attribute's schema)
)

// Personal-data classes of an attribute (Law "On personal data", art. 1, 6):
// none, personal (common personal data), sensitive (restricted access:
// health, criminal records, biometrics).
const (
	PDNone      = "none"
	PDPersonal  = "personal"
	PDSensitive = "sensitive"
)

// MaxDefinitionSize bounds a definition or classifier file.
const MaxDefinitionSize = 1 << 20

// Pos is a place in a definition file, 1-based.
type Pos struct{ Line, Col int }

// Problem is one thing wrong with a definition, with its place.
type Problem struct {
	Pos     Pos
	Code    string
	Message string
}

// Format renders the problem as file:line:col: code: message.
func (p Problem) Format(file string) string {
	return fmt.Sprintf("%s:%d:%d: %s: %s", file, p.Pos.Line, p.Pos.Col, p.Code, p.Message)
}

// Definition is one version of a registry's declaration.
type Definition struct {
	Name    string    `yaml:"registry" json:"name"`
	Version int       `yaml:"version" json:"version"`
	Title   i18n.Text `yaml:"title" json:"title"`
	// Owner is the agency that keeps the registry and is accountable for it.
	Owner string `yaml:"owner" json:"owner"`
	// Basis is the legal act that establishes the registry.
	Basis string `yaml:"basis" json:"basis"`
	Key   struct {
		Attribute string `yaml:"attribute" json:"attribute"`
		Kind      string `yaml:"kind" json:"kind"`
	} `yaml:"key" json:"key"`
	// Subject names the attribute holding the IIN of the person a record is
	// about (the key itself for person registries); its reads are audited
	// under that person. Empty: records are nobody's personal data.
	Subject    string      `yaml:"subject" json:"subject,omitempty"`
	Access     AccessRules `yaml:"access" json:"access"`
	Attributes []Attribute `yaml:"attributes" json:"attributes"`

	// Source is the file the definition was read from.
	Source []byte `yaml:"-" json:"-"`
	schema *jsonschema.Schema
}

// AccessRules say who writes and who reads.
type AccessRules struct {
	// Write are the roles of the owner agency whose officers create, update,
	// correct and cancel records (they also read).
	Write []string `yaml:"write" json:"write"`
	// Read are other readers: officers of an agency with one of the roles.
	Read []Reader `yaml:"read" json:"read,omitempty"`
	// Systems are organisations' systems (client ids; for the GovStack API,
	// the Information Mediator client INSTANCE/CLASS/MEMBER/SUBSYSTEM) that
	// may read.
	Systems []string `yaml:"systems" json:"systems,omitempty"`
	// SystemWrite are the systems that may also change records.
	SystemWrite []string `yaml:"system_write" json:"system_write,omitempty"`
	// Citizen: a citizen may read the records whose subject they are.
	Citizen bool `yaml:"citizen" json:"citizen"`
	// Public: records hold no personal data and anyone may read them.
	Public bool `yaml:"public" json:"public"`
}

// Reader is an agency and the roles of its officers that read.
type Reader struct {
	Agency string   `yaml:"agency" json:"agency"`
	Roles  []string `yaml:"roles" json:"roles"`
}

// Attribute is one field of a registry's records.
type Attribute struct {
	Name  string    `yaml:"name" json:"name"`
	Title i18n.Text `yaml:"title" json:"title"`
	// Schema is the JSON Schema of the value (type, pattern, maxLength ...).
	Schema   map[string]any `yaml:"schema" json:"schema"`
	Required bool           `yaml:"required" json:"required"`
	// Personal is the personal-data class: none, personal or sensitive.
	Personal string `yaml:"personal" json:"personal"`
	// Master is "registry.attribute" when this registry keeps a reference
	// copy of a fact mastered elsewhere; empty when it is authoritative here.
	Master string `yaml:"master" json:"master,omitempty"`
	// Classifier names the code list whose codes the value must be.
	Classifier string `yaml:"classifier" json:"classifier,omitempty"`
	// Check is "iin" or "bin": the value is checked by internal/iin.
	Check string `yaml:"check" json:"check,omitempty"`
	// Fact is what real-world fact the value states ("residential address",
	// "date of birth"); two attributes mastered in two registries with the
	// same fact are reported as duplicates by the data catalogue.
	Fact string `yaml:"fact" json:"fact,omitempty"`
	// Indexed asks for an index on the attribute: searches by it, and
	// services' sources that read every record with a value (`by:`), look
	// it up instead of reading the whole registry.
	Indexed bool `yaml:"indexed" json:"indexed,omitempty"`
}

// Attr returns the attribute named name.
func (d *Definition) Attr(name string) (Attribute, bool) {
	for _, a := range d.Attributes {
		if a.Name == name {
			return a, true
		}
	}
	return Attribute{}, false
}

// IndexedAttributes names the attributes declared indexed (never nil).
func (d *Definition) IndexedAttributes() []string {
	out := []string{}
	for _, a := range d.Attributes {
		if a.Indexed {
			out = append(out, a.Name)
		}
	}
	return out
}

// HasPersonalData reports whether any attribute is personal data.
func (d *Definition) HasPersonalData() bool {
	for _, a := range d.Attributes {
		if a.Personal == PDPersonal || a.Personal == PDSensitive {
			return true
		}
	}
	return false
}

// RecordSchema is the JSON Schema of a record: an object of the attributes,
// the required ones required, nothing else allowed.
func (d *Definition) RecordSchema() map[string]any {
	props := map[string]any{}
	var req []any
	for _, a := range d.Attributes {
		props[a.Name] = a.Schema
		if a.Required || a.Name == d.Key.Attribute {
			req = append(req, a.Name)
		}
	}
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(req) > 0 {
		s["required"] = req
	}
	return s
}

// Classifier is one version of a code list (KATO units, countries, document
// types). A new edition is a new version; records keep the codes valid when
// they were written.
type Classifier struct {
	Name    string    `yaml:"classifier" json:"name"`
	Version int       `yaml:"version" json:"version"`
	Title   i18n.Text `yaml:"title" json:"title"`
	Edition string    `yaml:"edition" json:"edition,omitempty"`
	Codes   []Code    `yaml:"codes" json:"codes"`
	Source  []byte    `yaml:"-" json:"-"`
	index   map[string]int
}

// Code is one entry of a classifier.
type Code struct {
	Code   string    `yaml:"code" json:"code"`
	Title  i18n.Text `yaml:"title" json:"title"`
	Parent string    `yaml:"parent" json:"parent,omitempty"`
}

// Has reports whether code is in the classifier.
func (c *Classifier) Has(code string) bool {
	_, ok := c.index[code]
	return ok
}

// Lookup returns the entry of code.
func (c *Classifier) Lookup(code string) (Code, bool) {
	i, ok := c.index[code]
	if !ok {
		return Code{}, false
	}
	return c.Codes[i], true
}

var (
	nameRE  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	classRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	lineRE  = regexp.MustCompile(`^(?:yaml: )?line (\d+)(?::(\d+))?: (.*)$`)
	attrRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,62}$`)
	codeRE  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	masterR = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}\.[A-Za-z][A-Za-z0-9_]{0,62}$`)
)

// yamlProblems turns a YAML decoding error into positioned problems.
func yamlProblems(err error) []Problem {
	var te *yaml.TypeError
	var msgs []string
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var out []Problem
	for _, m := range msgs {
		p := Problem{Pos: Pos{1, 1}, Code: "yaml", Message: m}
		if g := lineRE.FindStringSubmatch(m); g != nil {
			p.Pos.Line, _ = strconv.Atoi(g[1])
			if g[2] != "" {
				p.Pos.Col, _ = strconv.Atoi(g[2])
			}
			p.Message = g[3]
		}
		if strings.Contains(p.Message, "not found in type") {
			p.Code = "unknown_field"
		}
		out = append(out, p)
	}
	return out
}

// decodeStrict decodes one YAML document into v refusing unknown fields, and
// returns the document's node tree for positions.
func decodeStrict(src []byte, v any) (*yaml.Node, []Problem) {
	if len(src) > MaxDefinitionSize {
		return nil, []Problem{{Pos{1, 1}, "too_large", fmt.Sprintf("the file is larger than %d bytes", MaxDefinitionSize)}}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		return nil, yamlProblems(err)
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil, []Problem{{Pos{1, 1}, "yaml", "the file must be a YAML mapping"}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return nil, yamlProblems(err)
	}
	return root.Content[0], nil
}

// at returns the position of the value at path (mapping keys and sequence
// indexes) below n, or of the deepest node found.
func at(n *yaml.Node, path ...any) Pos {
	for _, step := range path {
		if n == nil {
			break
		}
		var next *yaml.Node
		switch s := step.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == s {
						next = n.Content[i+1]
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && s < len(n.Content) {
				next = n.Content[s]
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	if n == nil {
		return Pos{1, 1}
	}
	return Pos{n.Line, n.Column}
}

// jsonValue turns YAML-decoded values into the shapes encoding/json makes
// (float64 numbers, map[string]any), which JSON Schema expects.
func jsonValue(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(b))
}

// ParseClassifier reads and checks a classifier file.
func ParseClassifier(src []byte) (*Classifier, []Problem) {
	c := &Classifier{}
	root, probs := decodeStrict(src, c)
	if probs != nil {
		return nil, probs
	}
	c.Source = src
	if !classRE.MatchString(c.Name) {
		probs = append(probs, Problem{at(root, "classifier"), "classifier.name", "classifier must be a lower-case name ([a-z][a-z0-9_-]*)"})
	}
	if c.Version < 1 {
		probs = append(probs, Problem{at(root, "version"), "version", "version must be a positive integer"})
	}
	probs = append(probs, textProblems(c.Title, at(root, "title"), "title")...)
	if len(c.Codes) == 0 {
		probs = append(probs, Problem{at(root, "codes"), "codes.empty", "a classifier needs at least one code"})
	}
	c.index = make(map[string]int, len(c.Codes))
	for i, code := range c.Codes {
		p := at(root, "codes", i)
		if !codeRE.MatchString(code.Code) {
			probs = append(probs, Problem{at(root, "codes", i, "code"), "code.format", fmt.Sprintf("code %q must be 1-64 letters, digits, '.', '_' or '-'", code.Code)})
		}
		if _, dup := c.index[code.Code]; dup {
			probs = append(probs, Problem{p, "code.duplicate", fmt.Sprintf("code %q appears twice", code.Code)})
		}
		c.index[code.Code] = i
		probs = append(probs, textProblems(code.Title, at(root, "codes", i, "title"), "the title of code "+code.Code)...)
	}
	for i, code := range c.Codes {
		if code.Parent != "" {
			if _, ok := c.index[code.Parent]; !ok {
				probs = append(probs, Problem{at(root, "codes", i, "parent"), "code.parent", fmt.Sprintf("parent %q of code %q is not a code of this classifier", code.Parent, code.Code)})
			}
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return c, nil
}

func textProblems(t i18n.Text, p Pos, what string) []Problem {
	var missing []string
	for _, l := range []struct{ lang, v string }{{"kk", t.KK}, {"ru", t.RU}, {"en", t.EN}} {
		if strings.TrimSpace(l.v) == "" {
			missing = append(missing, l.lang)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return []Problem{{p, "text.missing", fmt.Sprintf("%s lacks %s", what, strings.Join(missing, ", "))}}
}

// Env is what a definition may refer to: agencies with their roles,
// classifiers, and other registries (for masters).
type Env struct {
	Agencies    map[string][]string // nil: agencies are not checked
	Classifiers map[string]*Classifier
	Registries  map[string]*Definition
}

// ParseDefinition reads and checks a registry definition against env. The
// definition's master references to registries not in env are reported.
func ParseDefinition(src []byte, env Env) (*Definition, []Problem) {
	d := &Definition{}
	root, probs := decodeStrict(src, d)
	if probs != nil {
		return nil, probs
	}
	d.Source = src
	add := func(p Pos, code, format string, args ...any) {
		probs = append(probs, Problem{p, code, fmt.Sprintf(format, args...)})
	}
	if !nameRE.MatchString(d.Name) {
		add(at(root, "registry"), "registry.name", "registry must be a lower-case name ([a-z][a-z0-9_]*), got %q", d.Name)
	}
	if d.Version < 1 {
		add(at(root, "version"), "version", "version must be a positive integer")
	}
	probs = append(probs, textProblems(d.Title, at(root, "title"), "title")...)
	var ownerRoles []string
	if d.Owner == "" {
		add(at(root), "owner.missing", "owner (the agency that keeps the registry) is required")
	} else if env.Agencies != nil {
		roles, ok := env.Agencies[d.Owner]
		if !ok {
			add(at(root, "owner"), "ref.unknown_agency", "owner %q is not an agency (known: %s)", d.Owner, strings.Join(sortedKeys(env.Agencies), ", "))
		}
		ownerRoles = roles
	}
	if strings.TrimSpace(d.Basis) == "" {
		add(at(root), "basis.missing", "basis (the legal act establishing the registry) is required")
	}
	switch d.Key.Kind {
	case KeyIIN, KeyBIN, KeyID:
	default:
		add(at(root, "key", "kind"), "key.kind", "key.kind must be iin, bin or id, got %q", d.Key.Kind)
	}
	if len(d.Access.Write) == 0 {
		add(at(root, "access"), "access.write", "access.write must name at least one role of the owner agency")
	}
	if env.Agencies != nil {
		for i, r := range d.Access.Write {
			if ownerRoles != nil && !slices.Contains(ownerRoles, r) {
				add(at(root, "access", "write", i), "ref.unknown_role", "agency %q has no role %q (roles: %s)", d.Owner, r, strings.Join(ownerRoles, ", "))
			}
		}
		for i, rd := range d.Access.Read {
			roles, ok := env.Agencies[rd.Agency]
			if !ok {
				add(at(root, "access", "read", i, "agency"), "ref.unknown_agency", "reader agency %q is not an agency", rd.Agency)
				continue
			}
			for j, r := range rd.Roles {
				if !slices.Contains(roles, r) {
					add(at(root, "access", "read", i, "roles", j), "ref.unknown_role", "agency %q has no role %q (roles: %s)", rd.Agency, r, strings.Join(roles, ", "))
				}
			}
		}
	}
	if len(d.Attributes) == 0 {
		add(at(root, "attributes"), "attributes.empty", "a registry needs attributes")
	}
	seen := map[string]bool{}
	for i, a := range d.Attributes {
		ap := func(field string) Pos { return at(root, "attributes", i, field) }
		if !attrRE.MatchString(a.Name) {
			add(ap("name"), "attribute.name", "attribute name %q must be [A-Za-z][A-Za-z0-9_]*", a.Name)
		}
		if seen[a.Name] {
			add(ap("name"), "attribute.duplicate", "attribute %q is declared twice", a.Name)
		}
		seen[a.Name] = true
		probs = append(probs, textProblems(a.Title, ap("title"), "the title of "+a.Name)...)
		if a.Schema == nil {
			add(at(root, "attributes", i), "attribute.schema", "attribute %q needs a schema (JSON Schema of its value)", a.Name)
		}
		switch a.Personal {
		case "":
			d.Attributes[i].Personal = PDNone
		case PDNone, PDPersonal, PDSensitive:
		default:
			add(ap("personal"), "attribute.personal", "personal must be none, personal or sensitive, got %q", a.Personal)
		}
		if a.Master != "" {
			if !masterR.MatchString(a.Master) {
				add(ap("master"), "attribute.master", "master must be registry.attribute, got %q", a.Master)
			} else if env.Registries != nil {
				reg, attr, _ := strings.Cut(a.Master, ".")
				if m, ok := env.Registries[reg]; !ok && reg != d.Name {
					add(ap("master"), "ref.unknown_registry", "master registry %q does not exist", reg)
				} else if ok {
					if ma, ok := m.Attr(attr); !ok {
						add(ap("master"), "ref.unknown_attribute", "registry %q has no attribute %q", reg, attr)
					} else if ma.Master != "" {
						add(ap("master"), "attribute.master_chain", "%s is itself a copy of %s: name the master", a.Master, ma.Master)
					}
				}
			}
		}
		if a.Classifier != "" {
			if _, ok := env.Classifiers[a.Classifier]; !ok {
				add(ap("classifier"), "ref.unknown_classifier", "classifier %q does not exist (known: %s)", a.Classifier, strings.Join(sortedKeys(env.Classifiers), ", "))
			}
		}
		switch a.Check {
		case "", KeyIIN, KeyBIN:
		default:
			add(ap("check"), "attribute.check", "check must be iin or bin, got %q", a.Check)
		}
	}
	if d.Key.Attribute == "" || !seen[d.Key.Attribute] {
		add(at(root, "key", "attribute"), "key.attribute", "key.attribute %q is not an attribute", d.Key.Attribute)
	} else if ka, _ := d.Attr(d.Key.Attribute); ka.Schema != nil && ka.Schema["type"] != "string" {
		add(at(root, "key", "attribute"), "key.type", "the key attribute %q must be of type string", d.Key.Attribute)
	}
	if d.Subject == "" && d.Key.Kind == KeyIIN {
		d.Subject = d.Key.Attribute
	}
	if d.Subject != "" {
		if sa, ok := d.Attr(d.Subject); !ok {
			add(at(root, "subject"), "subject", "subject %q is not an attribute", d.Subject)
		} else if sa.Check != KeyIIN && !(d.Subject == d.Key.Attribute && d.Key.Kind == KeyIIN) {
			add(at(root, "subject"), "subject", "subject %q must be an IIN attribute (check: iin)", d.Subject)
		}
	}
	if d.HasPersonalData() && d.Access.Public {
		add(at(root, "access", "public"), "access.public", "a registry with personal data cannot be public")
	}
	if d.HasPersonalData() && d.Subject == "" {
		add(at(root), "subject.missing", "a registry with personal data must name its subject (the attribute with the person's IIN)")
	}
	if len(probs) == 0 {
		schema, err := jsonValue(d.RecordSchema())
		if err == nil {
			c := jsonschema.NewCompiler()
			c.DefaultDraft(jsonschema.Draft2020)
			c.AssertFormat()
			// A definition must not make the platform read its files or
			// fetch URLs; the record's URL is absolute so that nothing
			// resolves against the working directory.
			c.UseLoader(noExternalRefs{})
			const recordURL = "https://schemas.ortaq.kz/registry-record.json"
			if err = c.AddResource(recordURL, schema); err == nil {
				d.schema, err = c.Compile(recordURL)
			}
		}
		if err != nil {
			add(at(root, "attributes"), "attribute.schema", "the attributes' schemas are not valid JSON Schema: %s", oneLine(err))
		}
	}
	if len(probs) > 0 {
		sort.SliceStable(probs, func(i, j int) bool {
			if probs[i].Pos.Line != probs[j].Pos.Line {
				return probs[i].Pos.Line < probs[j].Pos.Line
			}
			return probs[i].Pos.Col < probs[j].Pos.Col
		})
		return nil, probs
	}
	return d, nil
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Set is a consistent set of definitions and classifiers.
type Set struct {
	Registries  map[string]*Definition // the newest version of each
	Classifiers map[string]*Classifier // the newest version of each
}

// FileProblems are a file's problems.
type FileProblems struct {
	File     string
	Problems []Problem
}

// LoadSet reads every classifier (classifiers/*.yaml) and registry (*.yaml)
// of fsys, checking each against the others and, when agencies is not nil,
// the agencies and their roles. Registries may name masters in one another:
// they are checked once all are read.
func LoadSet(fsys fs.FS, agencies map[string][]string) (*Set, []FileProblems, error) {
	set := &Set{Registries: map[string]*Definition{}, Classifiers: map[string]*Classifier{}}
	var bad []FileProblems
	cfiles, _ := fs.Glob(fsys, "classifiers/*.yaml")
	for _, f := range cfiles {
		src, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, nil, err
		}
		c, probs := ParseClassifier(src)
		if probs != nil {
			bad = append(bad, FileProblems{f, probs})
			continue
		}
		if old, ok := set.Classifiers[c.Name]; !ok || old.Version < c.Version {
			set.Classifiers[c.Name] = c
		}
	}
	rfiles, _ := fs.Glob(fsys, "*.yaml")
	// Pass one without masters checked, to know every registry.
	first := map[string]*Definition{}
	for _, f := range rfiles {
		src, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, nil, err
		}
		if d, _ := ParseDefinition(src, Env{Classifiers: set.Classifiers}); d != nil {
			first[d.Name] = d
		}
	}
	for _, f := range rfiles {
		src, _ := fs.ReadFile(fsys, f)
		d, probs := ParseDefinition(src, Env{Agencies: agencies, Classifiers: set.Classifiers, Registries: first})
		if probs != nil {
			bad = append(bad, FileProblems{f, probs})
			continue
		}
		if want := strings.TrimSuffix(path.Base(f), ".yaml"); want != d.Name && !strings.HasPrefix(path.Base(f), d.Name+"@") {
			bad = append(bad, FileProblems{f, []Problem{{at(nil), "registry.file_name", fmt.Sprintf("registry %q must be in %s.yaml", d.Name, d.Name)}}})
			continue
		}
		if old, ok := set.Registries[d.Name]; ok && old.Version == d.Version {
			bad = append(bad, FileProblems{f, []Problem{{Pos{1, 1}, "registry.duplicate", fmt.Sprintf("registry %q version %d is defined twice", d.Name, d.Version)}}})
			continue
		} else if !ok || old.Version < d.Version {
			set.Registries[d.Name] = d
		}
	}
	return set, bad, nil
}

// FieldProblem is one thing wrong with a record: its JSON pointer and a
// field code of the public error catalogue.
type FieldProblem struct {
	Path string `json:"path"`
	Code string `json:"code"`
}

// Check validates a record against the definition and the set's
// classifiers: its JSON Schema, IINs and BINs by their check digits, codes by
// their classifier. It returns nil for a good record.
func (d *Definition) Check(rec map[string]any, classifiers map[string]*Classifier) []FieldProblem {
	var out []FieldProblem
	if d.schema != nil {
		if err := d.schema.Validate(rec); err != nil {
			out = append(out, schemaProblems(err)...)
		}
	}
	for _, a := range d.Attributes {
		v, ok := rec[a.Name]
		if !ok || v == nil {
			continue
		}
		s, isStr := v.(string)
		kind := a.Check
		if a.Name == d.Key.Attribute && (d.Key.Kind == KeyIIN || d.Key.Kind == KeyBIN) {
			kind = d.Key.Kind
		}
		if kind != "" && isStr {
			var err error
			if kind == KeyIIN {
				_, err = iin.Parse(s)
			} else {
				_, err = iin.ParseBIN(s)
			}
			if err != nil {
				out = append(out, FieldProblem{"/" + a.Name, iinCode(err, kind)})
			}
		}
		if a.Classifier != "" && isStr {
			if c := classifiers[a.Classifier]; c == nil || !c.Has(s) {
				out = append(out, FieldProblem{"/" + a.Name, "code.unknown"})
			}
		}
	}
	return dedupe(out)
}

func dedupe(in []FieldProblem) []FieldProblem {
	if len(in) < 2 {
		return in
	}
	seen := map[FieldProblem]bool{}
	out := in[:0]
	for _, p := range in {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// iinCode maps an internal/iin error to the public field code
// (iin.checksum, bin.kind ...).
func iinCode(err error, kind string) string {
	var e *iin.Error
	if errors.As(err, &e) && e.Code != "" {
		return e.Code
	}
	return kind + ".checksum"
}

// schemaProblems names every field a JSON Schema validation error finds
// wrong, with the public field codes (required, type, unknown_field,
// too_long, format, one_of, out_of_range).
func schemaProblems(err error) []FieldProblem {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []FieldProblem{{"", "format"}}
	}
	var out []FieldProblem
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
				out = append(out, FieldProblem{at + "/" + m, "required"})
			}
		case *kind.AdditionalProperties:
			for _, m := range k.Properties {
				out = append(out, FieldProblem{at + "/" + m, "unknown_field"})
			}
		case *kind.Type:
			out = append(out, FieldProblem{at, "type"})
		case *kind.MaxLength, *kind.MaxItems, *kind.MaxProperties:
			out = append(out, FieldProblem{at, "too_long"})
		case *kind.Enum, *kind.Const:
			out = append(out, FieldProblem{at, "one_of"})
		case *kind.Minimum, *kind.Maximum, *kind.ExclusiveMinimum, *kind.ExclusiveMaximum:
			out = append(out, FieldProblem{at, "out_of_range"})
		default:
			out = append(out, FieldProblem{at, "format"})
		}
	}
	walk(ve)
	return out
}

func pointer(loc []string) string {
	if len(loc) == 0 {
		return ""
	}
	r := strings.NewReplacer("~", "~0", "/", "~1")
	escaped := make([]string, len(loc))
	for i, s := range loc {
		escaped[i] = r.Replace(s)
	}
	return "/" + strings.Join(escaped, "/")
}

// noExternalRefs refuses every $ref outside the schema itself.
type noExternalRefs struct{}

func (noExternalRefs) Load(url string) (any, error) {
	return nil, fmt.Errorf("$ref to %s: a schema may refer only to itself (#/...)", url)
}
