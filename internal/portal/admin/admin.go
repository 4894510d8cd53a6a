package admin

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/portal"
	"github.com/ortaq/ortaq/internal/registry"
	"github.com/ortaq/ortaq/internal/service"
	"github.com/ortaq/ortaq/internal/servicedef"
	"github.com/ortaq/ortaq/internal/web"
)

//go:embed templates/*.html
var templateFS embed.FS

// Role is the officer role of the platform's administrators.
const Role = "platform-administrator"

// MaxDefinition bounds an uploaded service definition.
const MaxDefinition = 1 << 20

// Deps are the capabilities the pages show.
type Deps struct {
	Services   *service.Catalogue
	Agencies   service.AgencyNames
	Registries *registry.Store
}

// Pages are the administrator's and analyst's pages.
type Pages struct {
	deps  Deps
	pages portal.Templates
}

// New parses the templates; a template error is a programming error.
func New(d Deps) *Pages {
	return &Pages{deps: d, pages: portal.ParseTemplates(templateFS, funcs,
		"services", "versions", "publish", "registries", "registry", "record", "catalogue")}
}

// IsAdmin reports whether p is an administrator of the platform.
func IsAdmin(p identity.Principal) bool {
	return p.Kind == identity.Officer && slices.Contains(p.Roles, Role)
}

// analyst reports whether p may browse the registries and the catalogue:
// an administrator, or an officer who may read some registry.
func (a *Pages) analyst(p identity.Principal) bool {
	if IsAdmin(p) {
		return true
	}
	if p.Kind != identity.Officer {
		return false
	}
	return slices.ContainsFunc(a.deps.Registries.Definitions(), func(d *registry.Definition) bool { return d.CanRead(p) })
}

// Routes mounts the pages and their menu items on site.
func (a *Pages) Routes(site *portal.Site) {
	site.AddNav("/admin/services", "portal.admin.nav.services", IsAdmin)
	site.AddNav("/admin/publish", "portal.admin.nav.publish", IsAdmin)
	site.AddNav("/admin/registries", "portal.admin.nav.registries", a.analyst)
	site.AddNav("/admin/catalogue", "portal.admin.nav.catalogue", a.analyst)
	site.Handle("GET /admin/services", a.pages, a.only(IsAdmin, a.services))
	site.Handle("GET /admin/services/{id}", a.pages, a.only(IsAdmin, a.versions))
	site.Handle("GET /admin/publish", a.pages, a.only(IsAdmin, a.publishForm))
	site.Handle("POST /admin/publish", a.pages, a.only(IsAdmin, a.publish))
	site.Handle("GET /admin/registries", a.pages, a.only(a.analyst, a.registries))
	site.Handle("GET /admin/registries/{name}", a.pages, a.only(a.analyst, a.search))
	site.Handle("GET /admin/registries/{name}/{key}", a.pages, a.only(a.analyst, a.record))
	site.Handle("GET /admin/catalogue", a.pages, a.only(a.analyst, a.catalogue))
}

// only lets through whom may allows: anonymous visitors go to sign in,
// everyone else is forbidden.
func (a *Pages) only(may func(identity.Principal) bool, h portal.Handler) portal.Handler {
	return func(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
		if pg.Who == nil {
			return portal.ToLogin(w, r)
		}
		if !may(*pg.Who) {
			return "", 0, apierr.New(apierr.Forbidden)
		}
		return h(w, r, pg)
	}
}

var almaty = time.FixedZone("Asia/Almaty", 5*60*60)

var funcs = template.FuncMap{
	"date":      func(t time.Time) string { return t.In(almaty).Format("02.01.2006 15:04") },
	"show":      show,
	"join":      strings.Join,
	"consumers": consumers,
	// recordHref links a search result to its record, the purpose kept.
	"recordHref": func(registry, key, query string) string {
		return "/admin/registries/" + url.PathEscape(registry) + "/" + url.PathEscape(key) + "?" + query
	},
}

func show(lang i18n.Lang, v any) string {
	switch v := v.(type) {
	case nil:
		return "—"
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case map[string]any:
		if kk, ok := v["kk"].(string); ok && len(v) <= 3 {
			t := i18n.Text{KK: kk}
			t.RU, _ = v["ru"].(string)
			t.EN, _ = v["en"].(string)
			return t.In(lang)
		}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// serviceRow is a published service with its versions.
type serviceRow struct {
	service.Definition
	Owner    i18n.Text
	Versions int
}

func (a *Pages) services(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	defs, err := a.deps.Services.List(r.Context())
	if err != nil {
		return "", 0, err
	}
	rows := make([]serviceRow, 0, len(defs))
	for _, d := range defs {
		vs, err := a.deps.Services.Versions(r.Context(), d.ID)
		if err != nil {
			return "", 0, err
		}
		owner, err := a.deps.Agencies.Name(r.Context(), d.OwnerAgency)
		if err != nil {
			return "", 0, err
		}
		rows = append(rows, serviceRow{Definition: d, Owner: owner, Versions: len(vs)})
	}
	pg.Title = i18n.T(pg.Lang, "portal.admin.services.title")
	pg.Data = rows
	return "services", http.StatusOK, nil
}

type versionsData struct {
	ID       string
	Current  int
	Versions []service.Summary
	Defs     []service.Definition
}

func (a *Pages) versions(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	id := r.PathValue("id")
	defs, err := a.deps.Services.Versions(r.Context(), id)
	if errors.Is(err, service.ErrNotFound) {
		return "", 0, apierr.New(apierr.ServiceNotFound)
	}
	if err != nil {
		return "", 0, err
	}
	cur, err := a.deps.Services.Current(r.Context(), id)
	if err != nil {
		return "", 0, err
	}
	d := versionsData{ID: id, Current: cur.Version, Defs: defs}
	for _, def := range defs {
		s, err := a.deps.Services.Summarise(r.Context(), def, a.deps.Agencies, pg.Lang)
		if err != nil {
			return "", 0, err
		}
		d.Versions = append(d.Versions, s)
	}
	pg.Title = i18n.T(pg.Lang, "portal.admin.versions.title", cur.Title.In(pg.Lang))
	pg.Data = d
	return "versions", http.StatusOK, nil
}

type publishData struct {
	Source    string
	Problems  []servicedef.Problem
	Error     string // over the form: a field's or the catalogue's message
	Checked   bool   // a check found no problem
	Published *service.Definition
	Plan      *servicedef.Plan
}

func (a *Pages) publishForm(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	pg.Title = i18n.T(pg.Lang, "portal.admin.publish.title")
	pg.Data = &publishData{}
	return "publish", http.StatusOK, nil
}

// source is the posted definition: the uploaded file, or else the text.
func source(r *http.Request) (string, error) {
	if r.MultipartForm != nil {
		if fhs := r.MultipartForm.File["file"]; len(fhs) > 0 && fhs[0].Size > 0 {
			if fhs[0].Size > MaxDefinition {
				return "", apierr.New(apierr.BodyTooLarge)
			}
			f, err := fhs[0].Open()
			if err != nil {
				return "", err
			}
			defer f.Close()
			b, err := io.ReadAll(io.LimitReader(f, MaxDefinition+1))
			if err != nil {
				return "", err
			}
			if len(b) > MaxDefinition {
				return "", apierr.New(apierr.BodyTooLarge)
			}
			return string(b), nil
		}
	}
	src := r.PostFormValue("source")
	if len(src) > MaxDefinition {
		return "", apierr.New(apierr.BodyTooLarge)
	}
	return src, nil
}

func (a *Pages) publish(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	pg.Title = i18n.T(pg.Lang, "portal.admin.publish.title")
	d := &publishData{}
	pg.Data = d
	src, err := source(r)
	if err != nil {
		e := apierr.From(err)
		if e.Code != apierr.BodyTooLarge {
			return "", 0, err
		}
		d.Error = web.ErrorMessage(pg.Lang, e.Code)
		return "publish", e.Status(), nil
	}
	d.Source = src
	if strings.TrimSpace(src) == "" {
		d.Error = web.ErrorMessage(pg.Lang, apierr.FieldRequired)
		return "publish", http.StatusUnprocessableEntity, nil
	}
	if r.PostFormValue("action") == "check" {
		plan, problems, err := a.deps.Services.Compile(r.Context(), []byte(src))
		if err != nil {
			return "", 0, err
		}
		if len(problems) > 0 {
			d.Problems = problems
			return "publish", http.StatusUnprocessableEntity, nil
		}
		d.Checked, d.Plan = true, plan
		return "publish", http.StatusOK, nil
	}
	def, problems, err := a.deps.Services.PublishSource(r.Context(), []byte(src))
	if errors.Is(err, service.ErrVersionConflict) {
		d.Error = web.ErrorMessage(pg.Lang, apierr.ServiceConflict)
		return "publish", http.StatusConflict, nil
	}
	if err != nil {
		return "", 0, err
	}
	if len(problems) > 0 {
		d.Problems = problems
		return "publish", http.StatusUnprocessableEntity, nil
	}
	d.Published = &def
	return "publish", http.StatusOK, nil
}

type registryRow struct {
	*registry.Definition
	Records  int64
	Readable bool
}

func (a *Pages) registries(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	counts, err := a.deps.Registries.Counts(r.Context())
	if err != nil {
		return "", 0, err
	}
	var rows []registryRow
	for _, d := range a.deps.Registries.Definitions() {
		rows = append(rows, registryRow{Definition: d, Records: counts[d.Name], Readable: d.CanRead(*pg.Who)})
	}
	pg.Title = i18n.T(pg.Lang, "portal.admin.registries.title")
	pg.Data = rows
	return "registries", http.StatusOK, nil
}

// filterField is one attribute a search can filter on.
type filterField struct {
	registry.Attribute
	Value string
	Error string
}

type searchData struct {
	Def      *registry.Definition
	Readable bool
	Purpose  string
	Filters  []filterField
	// Cancelled includes cancelled records.
	Cancelled bool
	Searched  bool
	Records   []registry.Record
	Columns   []string
	// Query keeps the purpose for the record links; Next is the next
	// page's query, First the first page's.
	Query, Next, First string
	Errors             map[string]string
}

// definition is the registry the path names.
func (a *Pages) definition(r *http.Request) (*registry.Definition, error) {
	d, ok := a.deps.Registries.Definition(r.PathValue("name"))
	if !ok {
		return nil, apierr.New(apierr.RegistryNotFound)
	}
	return d, nil
}

// filterable reports whether a search can compare an attribute with a
// typed value.
func filterable(at registry.Attribute) bool {
	switch at.Schema["type"] {
	case "string", "integer", "number", "boolean":
		return true
	}
	return false
}

// access is the audited access of an officer's read through these pages.
func access(r *http.Request, who identity.Principal, purpose string) registry.Access {
	return registry.Access{Actor: who.Actor(), Purpose: purpose, Object: "portal:" + r.URL.Path, RequestID: web.RequestID(r.Context())}
}

// purpose is the reason the officer gives for a read: required, bounded.
func purpose(r *http.Request, lang i18n.Lang) (string, string) {
	p := strings.TrimSpace(r.URL.Query().Get("purpose"))
	switch {
	case p == "":
		return "", web.ErrorMessage(lang, apierr.FieldRequired)
	case len(p) > 500:
		return p, web.ErrorMessage(lang, apierr.FieldTooLong)
	}
	return p, ""
}

func (a *Pages) search(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	d, err := a.definition(r)
	if err != nil {
		return "", 0, err
	}
	who := *pg.Who
	q := r.URL.Query()
	data := &searchData{Def: d, Readable: d.CanRead(who), Errors: map[string]string{}, Cancelled: q.Get("cancelled") != ""}
	pg.Title = d.Title.In(pg.Lang)
	pg.Data = data
	query := registry.Query{Equal: map[string]any{}, After: q.Get("after"), Cancelled: data.Cancelled, Limit: 25}
	for _, at := range d.Attributes {
		if !filterable(at) {
			continue
		}
		f := filterField{Attribute: at, Value: strings.TrimSpace(q.Get("f." + at.Name))}
		if f.Value != "" {
			if v, ok := typed(f.Value, at.Schema); ok {
				query.Equal[at.Name] = v
			} else {
				f.Error = web.ErrorMessage(pg.Lang, apierr.FieldType)
			}
		}
		data.Filters = append(data.Filters, f)
		if len(data.Columns) < 3 && at.Name != d.Key.Attribute {
			data.Columns = append(data.Columns, at.Name)
		}
	}
	if !q.Has("purpose") {
		return "registry", http.StatusOK, nil // the form, nothing read yet
	}
	if !data.Readable {
		return "", 0, apierr.New(apierr.Forbidden)
	}
	p, perr := purpose(r, pg.Lang)
	data.Purpose = p
	if perr != "" {
		data.Errors["purpose"] = perr
	}
	for _, f := range data.Filters {
		if f.Error != "" {
			data.Errors["filters"] = f.Error
		}
	}
	if len(data.Errors) > 0 {
		return "registry", http.StatusUnprocessableEntity, nil
	}
	err = pgx.BeginFunc(r.Context(), a.deps.Registries.Pool(), func(tx pgx.Tx) error {
		var err error
		var next string
		data.Records, next, err = a.deps.Registries.Search(r.Context(), tx, d.Name, query, access(r, who, p))
		if next != "" {
			v := url.Values{}
			for k, vs := range q {
				if k != "after" {
					v[k] = vs
				}
			}
			v.Set("after", next)
			data.Next = "/admin/registries/" + url.PathEscape(d.Name) + "?" + v.Encode()
		}
		return err
	})
	if err != nil {
		return "", 0, err
	}
	if query.After != "" {
		v := url.Values{}
		for k, vs := range q {
			if k != "after" {
				v[k] = vs
			}
		}
		data.First = "/admin/registries/" + url.PathEscape(d.Name) + "?" + v.Encode()
	}
	data.Searched = true
	data.Query = url.Values{"purpose": {p}}.Encode()
	return "registry", http.StatusOK, nil
}

// typed reads a filter's text as the attribute's JSON type.
func typed(v string, schema map[string]any) (any, bool) {
	switch schema["type"] {
	case "integer", "number":
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return nil, false
		}
		return json.Number(v), true
	case "boolean":
		b, err := strconv.ParseBool(v)
		return b, err == nil
	}
	return v, true
}

type recordData struct {
	Def      *registry.Definition
	Key      string
	Purpose  string
	Error    string
	Versions []registry.Record
}

func (a *Pages) record(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	d, err := a.definition(r)
	if err != nil {
		return "", 0, err
	}
	who := *pg.Who
	if !d.CanRead(who) {
		return "", 0, apierr.New(apierr.Forbidden)
	}
	key := r.PathValue("key")
	data := &recordData{Def: d, Key: key}
	pg.Title = i18n.T(pg.Lang, "portal.admin.record.title", key)
	pg.Data = data
	p, perr := purpose(r, pg.Lang)
	data.Purpose = p
	if perr != "" {
		if r.URL.Query().Has("purpose") {
			data.Error = perr
			return "record", http.StatusUnprocessableEntity, nil
		}
		return "record", http.StatusOK, nil // ask why first
	}
	err = pgx.BeginFunc(r.Context(), a.deps.Registries.Pool(), func(tx pgx.Tx) error {
		data.Versions, err = a.deps.Registries.History(r.Context(), tx, d.Name, key, access(r, who, p))
		return err
	})
	if err != nil {
		return "", 0, err
	}
	if len(data.Versions) == 0 {
		return "", 0, apierr.New(apierr.RecordNotFound)
	}
	slices.Reverse(data.Versions) // the newest first
	return "record", http.StatusOK, nil
}

type catalogueData struct {
	Q          string
	Entries    []registry.CatalogueEntry
	Duplicates []registry.Duplicate
}

func (a *Pages) catalogue(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if len(q) > 200 {
		q = q[:200]
	}
	entries, err := a.deps.Registries.Where(r.Context(), q)
	if err != nil {
		return "", 0, err
	}
	pg.Title = i18n.T(pg.Lang, "portal.admin.catalogue.title")
	pg.Data = catalogueData{Q: q, Entries: entries, Duplicates: a.deps.Registries.Duplicates()}
	return "catalogue", http.StatusOK, nil
}

// consumers lists who reads an attribute's registry, for the catalogue.
func consumers(cs []registry.Consumer) string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s v%d (%s)", c.Service, c.Version, c.DataSource))
	}
	return strings.Join(out, ", ")
}
