package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/web"
)

// GovStackDatabaseRoutes mounts the GovStack Digital Registries Database
// API (1.3.0) under GovStackPrefix: a "database" is a registry, numbered
// once and for ever (registry_database), its schema the registry's
// definition. Reads name the calling system in the Information-Mediator-
// Client header, as the Data API's do, and show any registry (definitions
// are public, records are not). Creating or modifying a schema and
// deleting (archiving) a database need a signed-in officer: a platform
// administrator, or a registry administrator of the owner agency.
func (s *Store) GovStackDatabaseRoutes(srv *web.Server) {
	srv.HandleFunc("GET "+GovStackPrefix+"/databases", s.gsDatabases)
	srv.HandleFunc("GET "+GovStackPrefix+"/database/{id}", s.gsDatabase)
	srv.HandleFunc("DELETE "+GovStackPrefix+"/database/{id}", s.gsDatabaseDelete)
	srv.HandleFunc("POST "+GovStackPrefix+"/database/modify", s.gsDatabaseModify)
}

// GSDatabaseInfo is a registry as the Database API shows it (DatabaseInfo).
type GSDatabaseInfo struct {
	ID              int64              `json:"id"`
	Version         string             `json:"version"`
	Name            string             `json:"name"`
	Description     string             `json:"description"`
	Institution     string             `json:"institution"`
	Schema          GSDatabaseSchema   `json:"schema"`
	SchemaTags      []GSSchemaFlag     `json:"schemaTags"`
	SchemaFlags     []GSSchemaFlag     `json:"schemaFlags"`
	FieldsUniques   [][]string         `json:"fieldsUniques"`
	IsDraft         bool               `json:"isDraft"`
	IsDisabled      bool               `json:"isDisabled"`
	IsArchived      bool               `json:"isArchived"`
	ModifiedAt      string             `json:"modifiedAt"`
	ByUserName      string             `json:"byUserName"`
	GenericServices []GSGenericService `json:"genericServices"`
	HasLogo         bool               `json:"hasLogo"`
	// Ortaq's additions: the legal basis, the owner agency's id, the
	// title in every language.
	Basis string    `json:"basis"`
	Owner string    `json:"owner"`
	Title i18n.Text `json:"title"`
}

// GSDatabaseSchema is a registry's record schema as the Database API shows
// and takes it (DatabaseSchema): JSON Schema with flags on the properties.
type GSDatabaseSchema struct {
	Type       string                    `json:"type"`
	Properties map[string]map[string]any `json:"properties"`
	Required   []string                  `json:"required"`
}

// GSSchemaFlag flags a property (path /name): mandatory, primaryKey,
// personal, sensitive.
type GSSchemaFlag struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

// GSGenericService is one Data API method of a database.
type GSGenericService struct {
	ServiceID int    `json:"serviceId"`
	Name      string `json:"name"`
	IsVisible bool   `json:"isVisible"`
}

// GSDatabaseGroup is the databases of one owner agency (DatabasesSchema).
type GSDatabaseGroup struct {
	ID        int64            `json:"id"`
	Name      string           `json:"name"`
	Code      string           `json:"code"`
	Databases []GSDatabaseInfo `json:"databases"`
}

// gsDataServices are the Data API's methods, by their GovStack names; the
// writing ones are hidden once the registry is archived.
var gsDataServices = []struct {
	name  string
	write bool
}{
	{"data-create", true}, {"data-read", false}, {"data-exists", false}, {"data-list", false},
	{"data-update", true}, {"data-update-entries", true}, {"data-update-or-create", true},
	{"data-delete", true}, {"data-read-value", false},
}

// GSSchemaOf shows a definition as the Database API's DatabaseSchema, its
// descriptions in lang.
func GSSchemaOf(d *Definition, lang i18n.Lang) GSDatabaseSchema {
	out := GSDatabaseSchema{Type: "object", Properties: map[string]map[string]any{}, Required: []string{}}
	for i, a := range d.Attributes {
		p := map[string]any{}
		for k, v := range a.Schema {
			p[k] = v
		}
		p["description"] = a.Title.In(lang)
		p["primaryKey"] = a.Name == d.Key.Attribute
		p["readOnly"] = a.Name == d.Key.Attribute
		p["id"] = i + 1
		if a.Personal != "" && a.Personal != PDNone {
			p["personal"] = a.Personal
		}
		if a.Check != "" {
			p["check"] = a.Check
		}
		if a.Classifier != "" {
			p["classifier"] = a.Classifier
		}
		if a.Fact != "" {
			p["fact"] = a.Fact
		}
		if a.Master != "" {
			p["master"] = a.Master
		}
		out.Properties[a.Name] = p
		if a.Required || a.Name == d.Key.Attribute {
			out.Required = append(out.Required, a.Name)
		}
	}
	return out
}

func gsInfo(db Database, d *Definition, lang i18n.Lang, agencies map[string]Agency) GSDatabaseInfo {
	info := GSDatabaseInfo{
		ID: db.ID, Version: strconv.Itoa(d.Version), Name: d.Name, Description: d.Title.In(lang),
		Institution: d.Owner, Schema: GSSchemaOf(d, lang), SchemaTags: []GSSchemaFlag{}, SchemaFlags: []GSSchemaFlag{},
		FieldsUniques: [][]string{{d.Key.Attribute}}, IsArchived: db.ArchivedAt != nil,
		ModifiedAt: db.ModifiedAt.UTC().Format(time.RFC3339Nano), ByUserName: db.ModifiedBy,
		Basis: d.Basis, Owner: d.Owner, Title: d.Title,
	}
	if a, ok := agencies[d.Owner]; ok && a.Name.In(lang) != "" {
		info.Institution = a.Name.In(lang)
	}
	for _, a := range d.Attributes {
		path := "/" + pointerToken(a.Name)
		if a.Required || a.Name == d.Key.Attribute {
			info.SchemaFlags = append(info.SchemaFlags, GSSchemaFlag{"mandatory", path})
		}
		if a.Name == d.Key.Attribute {
			info.SchemaFlags = append(info.SchemaFlags, GSSchemaFlag{"primaryKey", path})
		}
		if a.Personal == PDPersonal || a.Personal == PDSensitive {
			info.SchemaFlags = append(info.SchemaFlags, GSSchemaFlag{"personal", path})
		}
		if a.Personal == PDSensitive {
			info.SchemaFlags = append(info.SchemaFlags, GSSchemaFlag{"sensitive", path})
		}
	}
	for i, m := range gsDataServices {
		info.GenericServices = append(info.GenericServices, GSGenericService{ServiceID: i + 1, Name: m.name, IsVisible: !m.write || db.ArchivedAt == nil})
	}
	return info
}

// gsReader checks the mediator's client header of a read.
func gsReader(r *http.Request) error {
	if _, ok := gsClient(r); !ok {
		return apierr.New(apierr.InvalidParameter, apierr.FieldError{Path: "/" + imClientHeader, Code: apierr.FieldFormat})
	}
	return nil
}

func databaseID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, apierr.New(apierr.InvalidParameter, apierr.FieldError{Path: "/id", Code: apierr.FieldType})
	}
	return id, nil
}

func (s *Store) gsDatabase(w http.ResponseWriter, r *http.Request) error {
	if err := gsReader(r); err != nil {
		return err
	}
	id, err := databaseID(r)
	if err != nil {
		return err
	}
	db, ok := s.DatabaseByID(id)
	d, served := s.Definition(db.Name)
	if !ok || !served {
		return apierr.New(apierr.RegistryNotFound)
	}
	agencies, err := s.Agencies(r.Context())
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, gsInfo(db, d, web.Lang(r), agencies))
	return nil
}

func (s *Store) gsDatabases(w http.ResponseWriter, r *http.Request) error {
	if err := gsReader(r); err != nil {
		return err
	}
	agencies, err := s.Agencies(r.Context())
	if err != nil {
		return err
	}
	lang := web.Lang(r)
	groups := map[string]*GSDatabaseGroup{}
	var order []string
	// Databases come by id: a group's id is its first database's, which
	// stays (databases are never deleted, an owner never changes).
	for _, db := range s.Databases() {
		d, ok := s.Definition(db.Name)
		if !ok {
			continue
		}
		g, ok := groups[d.Owner]
		if !ok {
			name := d.Owner
			if a, ok := agencies[d.Owner]; ok && a.Name.In(lang) != "" {
				name = a.Name.In(lang)
			}
			g = &GSDatabaseGroup{ID: db.ID, Name: name, Code: d.Owner, Databases: []GSDatabaseInfo{}}
			groups[d.Owner] = g
			order = append(order, d.Owner)
		}
		g.Databases = append(g.Databases, gsInfo(db, d, lang, agencies))
	}
	out := make([]*GSDatabaseGroup, 0, len(order))
	for _, o := range order {
		out = append(out, groups[o])
	}
	web.WriteJSON(w, http.StatusOK, out)
	return nil
}

// manager is the signed-in officer who may manage some registry.
func manager(r *http.Request) (identity.Principal, error) {
	p, err := identity.Require(r)
	if err != nil {
		return p, err
	}
	if !ManagesAny(p) {
		return p, apierr.New(apierr.Forbidden)
	}
	if h := r.Header.Get(imClientHeader); h != "" && !imClientRE.MatchString(strings.TrimSpace(h)) {
		return p, apierr.New(apierr.InvalidParameter, apierr.FieldError{Path: "/" + imClientHeader, Code: apierr.FieldFormat})
	}
	return p, nil
}

func (s *Store) gsDatabaseDelete(w http.ResponseWriter, r *http.Request) error {
	p, err := manager(r)
	if err != nil {
		return err
	}
	id, err := databaseID(r)
	if err != nil {
		return err
	}
	err = s.Archive(r.Context(), id, Publisher{p, web.RequestID(r.Context())}, func(owner string) error {
		if !CanManage(p, owner) {
			return apierr.New(apierr.Forbidden)
		}
		return nil
	})
	if errors.Is(err, ErrUnknownRegistry) {
		return apierr.New(apierr.RegistryNotFound)
	}
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, "Success")
	return nil
}

// GSModify is the body of POST /database/modify. Basis (the legal act
// establishing the registry) is Ortaq's own addition; without it the
// registry's basis stays, or a new one names the Database API.
type GSModify struct {
	GroupName   string          `json:"groupName"`
	CatalogName string          `json:"catalogName"`
	Code        string          `json:"code"`
	Basis       string          `json:"basis"`
	Schema      *GSModifySchema `json:"schema"`
}

// GSModifySchema is the schema of a modify request: JSON Schema of the
// records, with GovStack's flags on the properties.
type GSModifySchema struct {
	Type           string          `json:"type"`
	Properties     json.RawMessage `json:"properties"`
	Required       []string        `json:"required"`
	Description    GSText          `json:"description"`
	CreationDate   string          `json:"creationDate"`
	Filename       string          `json:"filename"`
	IncrementIndex *int            `json:"incrementIndex"`
}

// GSText is a description: one string (taken for every language) or
// {kk, ru, en}.
type GSText struct{ i18n.Text }

// UnmarshalJSON takes a string or an object of the three languages.
func (t *GSText) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		t.Text = i18n.Text{KK: s, RU: s, EN: s}
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(&t.Text)
}

// gsProperty is one property of a modify request's schema.
type gsProperty struct {
	Type        string          `json:"type"`
	Description GSText          `json:"description"`
	PrimaryKey  bool            `json:"primaryKey"`
	ReadOnly    bool            `json:"readOnly"`
	Example     any             `json:"example"`
	ID          json.Number     `json:"id"`
	Triggers    json.RawMessage `json:"triggers"`
	Format      string          `json:"format"`
	Pattern     string          `json:"pattern"`
	MinLength   *int            `json:"minLength"`
	MaxLength   *int            `json:"maxLength"`
	Minimum     *float64        `json:"minimum"`
	Maximum     *float64        `json:"maximum"`
	Enum        []any           `json:"enum"`
	Items       json.RawMessage `json:"items"`
	Properties  json.RawMessage `json:"properties"`
	Required    []string        `json:"required"`
	// Ortaq's additions: the personal-data class (true means personal),
	// an IIN or BIN check, a classifier, the fact stated, the master
	// (registry.attribute) of a copy.
	Personal   json.RawMessage `json:"personal"`
	Check      string          `json:"check"`
	Classifier string          `json:"classifier"`
	Fact       string          `json:"fact"`
	Master     string          `json:"master"`
}

var gsTypes = []string{"string", "integer", "number", "boolean", "object", "array"}

// gsMaxDepth bounds nested object properties.
const gsMaxDepth = 4

// orderedMembers splits a JSON object into its members in their order.
func orderedMembers(raw json.RawMessage) ([]string, []json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, errors.New("not an object")
	}
	var names []string
	var values []json.RawMessage
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		name, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, err
		}
		names, values = append(names, name), append(values, v)
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("trailing data")
	}
	return names, values, nil
}

// decodeProperty decodes one property strictly, naming the member at fault.
func decodeProperty(raw json.RawMessage, path string) (gsProperty, *DefinitionProblem) {
	var p gsProperty
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te):
			return p, &DefinitionProblem{Path: path + "/" + strings.ReplaceAll(te.Field, ".", "/"), Code: string(apierr.FieldType), Message: "wrong JSON type: " + te.Value}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return p, &DefinitionProblem{Path: path + "/" + pointerToken(f), Code: string(apierr.FieldUnknown), Message: "unknown member " + f}
		}
		return p, &DefinitionProblem{Path: path, Code: string(apierr.FieldType), Message: "a property must be a JSON object"}
	}
	return p, nil
}

// valueSchema turns a property into the JSON Schema of its value.
func valueSchema(p gsProperty, path string, depth int) (map[string]any, []DefinitionProblem) {
	var probs []DefinitionProblem
	bad := func(member, code, format string, args ...any) {
		probs = append(probs, DefinitionProblem{Path: path + member, Code: code, Message: fmt.Sprintf(format, args...)})
	}
	s := map[string]any{}
	switch {
	case p.Type == "":
		bad("/type", string(apierr.FieldRequired), "a property needs a type (%s)", strings.Join(gsTypes, ", "))
	case !slices.Contains(gsTypes, p.Type):
		bad("/type", string(apierr.FieldOneOf), "type %q is none of %s", p.Type, strings.Join(gsTypes, ", "))
	default:
		s["type"] = p.Type
	}
	if p.Format != "" {
		s["format"] = p.Format
	}
	if p.Pattern != "" {
		s["pattern"] = p.Pattern
	}
	if p.MinLength != nil {
		s["minLength"] = *p.MinLength
	}
	if p.MaxLength != nil {
		s["maxLength"] = *p.MaxLength
	}
	if p.Minimum != nil {
		s["minimum"] = *p.Minimum
	}
	if p.Maximum != nil {
		s["maximum"] = *p.Maximum
	}
	if p.Enum != nil {
		s["enum"] = p.Enum
	}
	if len(p.Items) > 0 {
		if p.Type != "array" {
			bad("/items", string(apierr.FieldUnknown), "items belong to arrays")
		} else if depth >= gsMaxDepth {
			bad("/items", string(apierr.FieldTooLong), "nested deeper than %d levels", gsMaxDepth)
		} else {
			item, perr := decodeProperty(p.Items, path+"/items")
			if perr != nil {
				probs = append(probs, *perr)
			} else {
				is, ip := valueSchema(item, path+"/items", depth+1)
				probs = append(probs, ip...)
				s["items"] = is
			}
		}
	}
	if len(p.Properties) > 0 {
		if p.Type != "object" {
			bad("/properties", string(apierr.FieldUnknown), "properties belong to objects")
		} else if depth >= gsMaxDepth {
			bad("/properties", string(apierr.FieldTooLong), "nested deeper than %d levels", gsMaxDepth)
		} else {
			names, raws, err := orderedMembers(p.Properties)
			if err != nil {
				bad("/properties", string(apierr.FieldType), "properties must be a JSON object")
			}
			props := map[string]any{}
			for i, name := range names {
				np := path + "/properties/" + pointerToken(name)
				child, perr := decodeProperty(raws[i], np)
				if perr != nil {
					probs = append(probs, *perr)
					continue
				}
				cs, cp := valueSchema(child, np, depth+1)
				probs = append(probs, cp...)
				props[name] = cs
			}
			s["properties"] = props
			if len(p.Required) > 0 {
				req := make([]any, 0, len(p.Required))
				for i, r := range p.Required {
					if _, ok := props[r]; !ok {
						bad("/required/"+strconv.Itoa(i), string(apierr.FieldUnknown), "required %q is not a property", r)
					}
					req = append(req, r)
				}
				s["required"] = req
			}
		}
	} else if len(p.Required) > 0 {
		bad("/required", string(apierr.FieldUnknown), "required belongs to objects with properties")
	}
	return s, probs
}

func personalClass(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 {
		return PDNone, true
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err == nil {
		if b {
			return PDPersonal, true
		}
		return PDNone, true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil && (s == PDNone || s == PDPersonal || s == PDSensitive) {
		return s, true
	}
	return "", false
}

// ModifyTarget is what a modify request builds on: the registry's newest
// installed version (nil for a new registry) and, for a new one, its owner,
// write roles and the systems that use it through the Data API.
type ModifyTarget struct {
	Prev    *Definition
	Version int
	Owner   string
	Write   []string
	Systems []string
}

// GovStackDefinition turns a modify request into the source of a registry
// definition (YAML, as the files are written) and checks it as a file is
// checked. Problems name the request's members (/code,
// /schema/properties/<name>/type ...).
func GovStackDefinition(m GSModify, t ModifyTarget, env Env) (*Definition, []DefinitionProblem) {
	var probs []DefinitionProblem
	bad := func(path, code, format string, args ...any) {
		probs = append(probs, DefinitionProblem{Path: path, Code: code, Message: fmt.Sprintf(format, args...)})
	}
	name := strings.ToLower(strings.TrimSpace(m.Code))
	switch {
	case name == "":
		bad("/code", string(apierr.FieldRequired), "code (the registry's short name) is required")
	case !nameRE.MatchString(name):
		bad("/code", string(apierr.FieldFormat), "code %q must be a letter then letters, digits or _ (at most 63)", m.Code)
	}
	if m.Schema == nil {
		bad("/schema", string(apierr.FieldRequired), "schema is required")
		return nil, probs
	}
	if m.Schema.Type != "" && m.Schema.Type != "object" {
		bad("/schema/type", string(apierr.FieldOneOf), "a database schema is of type object")
	}
	d := &Definition{Name: name, Version: t.Version, Title: m.Schema.Description.Text, Owner: t.Owner, Basis: strings.TrimSpace(m.Basis)}
	if t.Prev != nil {
		d.Owner, d.Access = t.Prev.Owner, t.Prev.Access
		if d.Basis == "" {
			d.Basis = t.Prev.Basis
		}
		if d.Title == (i18n.Text{}) {
			d.Title = t.Prev.Title
		}
	} else {
		d.Access = AccessRules{Write: t.Write, Systems: t.Systems, SystemWrite: t.Systems}
		if d.Basis == "" {
			d.Basis = "GovStack Digital Registries Database API (catalog " + strconv.Quote(m.CatalogName) + ")"
		}
	}
	if !d.Title.Complete() {
		bad("/schema/description", string(apierr.FieldRequired), "description (the registry's title) is required, as a string or {kk, ru, en}")
	}
	if len(m.Schema.Properties) == 0 {
		bad("/schema/properties", string(apierr.FieldRequired), "properties (the records' attributes) are required")
		return nil, probs
	}
	names, raws, err := orderedMembers(m.Schema.Properties)
	if err != nil {
		bad("/schema/properties", string(apierr.FieldType), "properties must be a JSON object")
		return nil, probs
	}
	if len(names) > 500 {
		bad("/schema/properties", string(apierr.FieldTooLong), "at most 500 properties")
		return nil, probs
	}
	keyKind := KeyID
	for i, pname := range names {
		path := "/schema/properties/" + pointerToken(pname)
		p, perr := decodeProperty(raws[i], path)
		if perr != nil {
			probs = append(probs, *perr)
			continue
		}
		schema, sp := valueSchema(p, path, 1)
		probs = append(probs, sp...)
		personal, ok := personalClass(p.Personal)
		if !ok {
			bad(path+"/personal", string(apierr.FieldOneOf), "personal is true, false, none, personal or sensitive")
		}
		title := p.Description.Text
		if !title.Complete() {
			title = i18n.Text{KK: pname, RU: pname, EN: pname}
		}
		a := Attribute{Name: pname, Title: title, Schema: schema, Required: slices.Contains(m.Schema.Required, pname),
			Personal: personal, Check: p.Check, Classifier: p.Classifier, Fact: p.Fact, Master: p.Master}
		if p.PrimaryKey {
			if d.Key.Attribute != "" {
				bad(path+"/primaryKey", string(apierr.FieldDuplicate), "only one property is the primary key; %q is already", d.Key.Attribute)
			}
			d.Key.Attribute = pname
			if p.Check == KeyIIN || p.Check == KeyBIN {
				keyKind, a.Check = p.Check, ""
			}
		}
		d.Attributes = append(d.Attributes, a)
	}
	for i, r := range m.Schema.Required {
		if !slices.Contains(names, r) {
			bad("/schema/required/"+strconv.Itoa(i), string(apierr.FieldUnknown), "required %q is not a property", r)
		}
	}
	if d.Key.Attribute == "" {
		d.Key.Attribute = "ID"
		if !slices.Contains(names, "ID") {
			bad("/schema/properties", string(apierr.FieldRequired), "no property is the primary key (primaryKey: true) and there is no ID property")
		}
	}
	d.Key.Kind = keyKind
	if keyKind != KeyIIN && d.HasPersonalData() {
		for _, a := range d.Attributes {
			if a.Check == KeyIIN {
				d.Subject = a.Name
				break
			}
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	src, err := yaml.Marshal(d)
	if err != nil {
		bad("/schema", string(apierr.FieldFormat), "cannot be written as a definition: %v", err)
		return nil, probs
	}
	parsed, lint := ParseDefinition(src, env)
	if lint != nil {
		return nil, lintProblems(src, d, lint)
	}
	return parsed, nil
}

var schemaAtRE = regexp.MustCompile(`at '/properties/([^/']+)`)

// lintProblems names the request member behind each problem of the
// generated definition: the property whose lines it is on, else by its
// code.
func lintProblems(src []byte, d *Definition, lint []Problem) []DefinitionProblem {
	var root yaml.Node
	_ = yaml.Unmarshal(src, &root)
	var doc *yaml.Node
	if len(root.Content) > 0 {
		doc = root.Content[0]
	}
	starts := make([]int, len(d.Attributes))
	for i := range d.Attributes {
		starts[i] = at(doc, "attributes", i).Line
	}
	out := make([]DefinitionProblem, 0, len(lint))
	for _, p := range lint {
		path := ""
		switch {
		case p.Code == "attribute.schema" && schemaAtRE.MatchString(p.Message):
			// The record schema is compiled as a whole: the compiler
			// names the property.
			path = "/schema/properties/" + schemaAtRE.FindStringSubmatch(p.Message)[1]
		case p.Code == "key.type":
			path = "/schema/properties/" + pointerToken(d.Key.Attribute) + "/type"
		case len(starts) > 0 && starts[0] > 0 && p.Pos.Line >= starts[0]:
			// The attributes come last: the problem is in the property
			// whose lines it is on.
			i := len(starts) - 1
			for i > 0 && starts[i] > p.Pos.Line {
				i--
			}
			path = "/schema/properties/" + pointerToken(d.Attributes[i].Name)
		case p.Code == "registry.name":
			path = "/code"
		case p.Code == "text.missing":
			path = "/schema/description"
		case strings.HasPrefix(p.Code, "basis"):
			path = "/basis"
		case strings.HasPrefix(p.Code, "key"):
			path = "/schema/properties/" + pointerToken(d.Key.Attribute) + "/primaryKey"
		case strings.HasPrefix(p.Code, "subject"):
			path = "/schema/properties"
		}
		out = append(out, DefinitionProblem{Path: path, Code: p.Code, Message: p.Message})
	}
	return out
}

// publicFieldCode maps a definition problem's code to the public field
// code catalogue.
func publicFieldCode(code string) apierr.Code {
	if apierr.IsFieldCode(apierr.Code(code)) {
		return apierr.Code(code)
	}
	switch {
	case strings.HasSuffix(code, ".missing"), strings.HasSuffix(code, ".empty"):
		return apierr.FieldRequired
	case code == "unknown_field":
		return apierr.FieldUnknown
	case strings.HasSuffix(code, "duplicate"):
		return apierr.FieldDuplicate
	case strings.HasSuffix(code, ".type"):
		return apierr.FieldType
	case strings.HasPrefix(code, "ref.unknown"):
		return apierr.FieldUnknown
	}
	return apierr.FieldFormat
}

// DefinitionRefused is the public error of a refused definition: fields
// name each problem's member and code, details say what is wrong.
func DefinitionRefused(e *DefinitionError) *apierr.Error {
	var fields []apierr.FieldError
	for _, p := range e.Problems {
		if p.Path != "" { // a file's problems have a line and column instead
			fields = append(fields, apierr.FieldError{Path: p.Path, Code: publicFieldCode(p.Code)})
		}
	}
	err := apierr.New(apierr.RegistryDefinitionInvalid, fields...)
	err.Details = map[string]any{"problems": e.Problems}
	return err
}

// modifyEnv is what a published definition may refer to: the agencies
// (the publisher's own roles added: they hold them), the classifiers and
// registries served.
func (s *Store) modifyEnv(ctx context.Context, p identity.Principal) (Env, error) {
	env := Env{Classifiers: s.Classifiers(), Registries: map[string]*Definition{}}
	for _, d := range s.Definitions() {
		env.Registries[d.Name] = d
	}
	agencies, err := s.Agencies(ctx)
	if err != nil {
		return env, err
	}
	if agencies != nil {
		env.Agencies = map[string][]string{}
		for id, a := range agencies {
			env.Agencies[id] = slices.Clone(a.Roles)
		}
		for _, r := range p.Roles {
			if !slices.Contains(env.Agencies[p.Agency], r) {
				env.Agencies[p.Agency] = append(env.Agencies[p.Agency], r)
			}
		}
	}
	return env, nil
}

func (s *Store) gsDatabaseModify(w http.ResponseWriter, r *http.Request) error {
	p, err := manager(r)
	if err != nil {
		return err
	}
	var m GSModify
	if err := web.DecodeJSON(w, r, &m); err != nil {
		return err
	}
	env, err := s.modifyEnv(r.Context(), p)
	if err != nil {
		return err
	}
	name := strings.ToLower(strings.TrimSpace(m.Code))
	if !nameRE.MatchString(name) {
		_, probs := GovStackDefinition(m, ModifyTarget{Version: 1, Owner: p.Agency}, env)
		return DefinitionRefused(&DefinitionError{probs})
	}
	role := RegistryAdministratorRole
	if slices.Contains(p.Roles, PlatformAdministratorRole) {
		role = PlatformAdministratorRole
	}
	var systems []string
	if c, ok := gsClient(r); ok {
		systems = []string{c.Subject}
	}
	d, id, err := s.Publish(r.Context(), name, Publisher{p, web.RequestID(r.Context())}, func(prev *Definition, next int) (*Definition, error) {
		if prev != nil && !CanManage(p, prev.Owner) {
			return nil, apierr.New(apierr.Forbidden)
		}
		d, probs := GovStackDefinition(m, ModifyTarget{Prev: prev, Version: next, Owner: p.Agency, Write: []string{role}, Systems: systems}, env)
		if probs != nil {
			return nil, &DefinitionError{probs}
		}
		return d, nil
	})
	if err != nil {
		return publishFailure(err)
	}
	w.Header().Set("Location", fmt.Sprintf("%s/database/%d", GovStackPrefix, id))
	web.WriteJSON(w, http.StatusOK, GSSchemaOf(d, web.Lang(r)))
	return nil
}
