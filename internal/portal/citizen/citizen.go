package citizen

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/portal"
	"github.com/ortaq/ortaq/internal/process"
	"github.com/ortaq/ortaq/internal/registry"
	"github.com/ortaq/ortaq/internal/service"
	"github.com/ortaq/ortaq/internal/servicedef"
	"github.com/ortaq/ortaq/internal/web"
)

//go:embed templates/*.html templates/*.tmpl
var templateFS embed.FS

// Deps are the capabilities the citizen's pages show.
type Deps struct {
	Services *service.Catalogue
	Agencies service.AgencyNames
	Engine   *process.Engine
	// Registries pre-fill forms with the citizen's own records; nil
	// switches pre-filling off.
	Registries *registry.Store
	// Pool holds the drafts (table portal_draft, Schema).
	Pool *pgxpool.Pool
	// CanRead decides who may see an application (see app.Platform.CanRead).
	CanRead func(ctx context.Context, who identity.Principal, signedIn bool, what, id string) error
	// Now is the clock; nil is the real one.
	Now func() time.Time
}

// Citizen serves the applying journey's pages.
type Citizen struct {
	deps   Deps
	pages  portal.Templates
	drafts drafts
}

// New parses the templates; a template error is a programming error.
func New(d Deps) *Citizen {
	if d.Now == nil {
		d.Now = time.Now
	}
	pages := portal.ParseTemplates(templateFS, funcs, "catalogue", "service", "application", "applications")
	for _, name := range []string{"service", "application"} {
		pages[name] = template.Must(pages[name].ParseFS(templateFS, "templates/form.tmpl"))
	}
	return &Citizen{deps: d, pages: pages, drafts: drafts{pool: d.Pool}}
}

var funcs = template.FuncMap{
	// actor names who did a step, never an officer's personal id.
	"actor": func(lang i18n.Lang, actor string) string {
		kind, _, _ := strings.Cut(actor, ":")
		switch kind {
		case "officer":
			return i18n.T(lang, "portal.citizen.actor.officer")
		case "citizen":
			return i18n.T(lang, "actor.citizen")
		}
		return i18n.T(lang, "actor.system")
	},
	"category": func(lang i18n.Lang, c string) string { return i18n.T(lang, "portal.citizen.category."+c) },
	"add":      func(a, b int) int { return a + b },
}

// Routes mounts the pages on site and the citizens' menu items.
func (c *Citizen) Routes(site *portal.Site) {
	site.AddNav("/", "portal.nav.services", portal.IsCitizen)
	site.AddNav("/applications", "portal.citizen.nav.applications", portal.IsCitizen)
	for pattern, h := range map[string]portal.Handler{
		"GET /{$}":                         c.catalogue,
		"GET /services/{id}":               c.service,
		"POST /services/{id}/apply":        c.apply,
		"POST /services/{id}/draft":        c.saveDraft,
		"POST /apply/{id}":                 c.apply,
		"GET /applications":                c.list,
		"GET /applications/{id}":           c.application,
		"POST /applications/{id}/withdraw": c.withdraw,
		"POST /applications/{id}/correct":  c.correct,
	} {
		site.Handle(pattern, c.pages, h)
	}
}

func newKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// categories are the life situations services are grouped by, in the
// order the catalogue shows them; any other category is shown as "other".
var categories = []string{"family", "education", "housing", "documents", "social", "health", "legal", "business", "transport"}

type card struct {
	ID          string
	Title       string
	Description string
	Duration    time.Duration
	FeeTiyn     int64
	Fees        bool // some fee is charged (perhaps only in some cases)
}

type group struct {
	Category string
	Cards    []card
}

type catalogueData struct {
	Query  string
	Groups []group
	Count  int
}

// maxQuery bounds a search: longer input is cut, not an error.
const maxQuery = 200

func (c *Citizen) catalogue(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if len([]rune(q)) > maxQuery {
		q = string([]rune(q)[:maxQuery])
	}
	defs, err := c.deps.Services.List(r.Context())
	if err != nil {
		return "", 0, err
	}
	needle := strings.ToLower(q)
	byCategory := map[string][]card{}
	count := 0
	for _, d := range defs {
		title, desc := d.Title.In(pg.Lang), d.Description.In(pg.Lang)
		if needle != "" && !strings.Contains(strings.ToLower(title), needle) && !strings.Contains(strings.ToLower(desc), needle) &&
			!strings.Contains(strings.ToLower(d.ID), needle) {
			continue
		}
		sum, err := c.deps.Services.Summarise(r.Context(), d, c.deps.Agencies, pg.Lang)
		if err != nil {
			return "", 0, err
		}
		cat := d.Category
		if !slices.Contains(categories, cat) {
			cat = "other"
		}
		byCategory[cat] = append(byCategory[cat], card{ID: d.ID, Title: title, Description: desc, Duration: d.TargetDuration,
			FeeTiyn: sum.FeeTiyn, Fees: len(sum.Fees) > 0 || sum.FeeTiyn > 0})
		count++
	}
	data := catalogueData{Query: q, Count: count}
	for _, cat := range append(slices.Clone(categories), "other") {
		if cards := byCategory[cat]; len(cards) > 0 {
			slices.SortFunc(cards, func(a, b card) int { return strings.Compare(a.Title, b.Title) })
			data.Groups = append(data.Groups, group{Category: cat, Cards: cards})
		}
	}
	pg.Title = i18n.T(pg.Lang, "portal.home.title")
	pg.Data = data
	return "catalogue", http.StatusOK, nil
}

// need is a piece of data the state already holds that the service reads.
type need struct {
	Source     i18n.Text   // the registry's title
	Exchange   bool        // read from another agency's system
	Attributes []i18n.Text // what the applicant is shown of it
}

type serviceData struct {
	Summary  service.Summary
	Category string
	Legal    int
	Fees     []service.Fee
	Needs    []formField
	Data     []need
	Form     *form
	// SignIn is where an anonymous visitor signs in to apply.
	SignIn string
	// Officer: signed in, but not as a citizen (no form).
	Officer bool
	Target  time.Duration
	// Saved: the draft was just saved.
	Saved bool
}

// load finds the current version of service id and its plan.
func (c *Citizen) load(ctx context.Context, id string) (service.Definition, *servicedef.Plan, error) {
	def, err := c.deps.Services.Current(ctx, id)
	if errors.Is(err, service.ErrNotFound) {
		return def, nil, apierr.New(apierr.ServiceNotFound)
	}
	if err != nil {
		return def, nil, err
	}
	if def.Flow != service.FlowPlan {
		return def, nil, apierr.New(apierr.ServiceNotFound)
	}
	plan, err := c.deps.Services.Plan(ctx, def.ID, def.Version)
	return def, plan, err
}

// dataNeeds lists what the service reads of the data the state holds.
func (c *Citizen) dataNeeds(plan *servicedef.Plan) []need {
	var out []need
	for _, d := range plan.Data {
		ds := d.Source
		if ds.Registry == "" {
			out = append(out, need{Exchange: true})
			continue
		}
		n := need{Source: i18n.Text{KK: ds.Registry, RU: ds.Registry, EN: ds.Registry}}
		if c.deps.Registries != nil {
			if def, ok := c.deps.Registries.Definition(ds.Registry); ok {
				n.Source = def.Title
				for _, p := range ds.Prefill {
					for _, a := range def.Attributes {
						if a.Name == p {
							n.Attributes = append(n.Attributes, a.Title)
						}
					}
				}
			}
		}
		if !slices.ContainsFunc(out, func(o need) bool { return o.Source == n.Source && len(o.Attributes) == len(n.Attributes) }) {
			out = append(out, n)
		}
	}
	return out
}

func (c *Citizen) service(w http.ResponseWriter, r *http.Request, pg *portal.Page) (string, int, error) {
	def, plan, err := c.load(r.Context(), r.PathValue("id"))
	if err != nil {
		return "", 0, err
	}
	sum, err := c.deps.Services.Summarise(r.Context(), def, c.deps.Agencies, pg.Lang)
	if err != nil {
		return "", 0, err
	}
	data := serviceData{Summary: sum, Category: def.Category, Legal: def.LegalDays, Fees: sum.Fees, Data: c.dataNeeds(plan),
		Target: def.TargetDuration, Saved: r.URL.Query().Get("draft") == "saved"}
	if !slices.Contains(categories, data.Category) {
		data.Category = "other"
	}
	data.Needs = fields(plan, nil, nil)
	switch {
	case pg.Who == nil:
		data.SignIn = "/login?next=/services/" + def.ID
	case pg.Who.Kind != identity.Citizen:
		data.Officer = true
	default:
		f, err := c.newForm(r, pg, def, plan)
		if err != nil {
			return "", 0, err
		}
		data.Form = f
	}
	pg.Title = sum.Title
	pg.Data = data
	return "service", http.StatusOK, nil
}

// newForm is the form as it opens: the citizen's draft if they kept one,
// else empty, then pre-filled with what the state holds.
func (c *Citizen) newForm(r *http.Request, pg *portal.Page, def service.Definition, plan *servicedef.Plan) (*form, error) {
	values, saved, err := c.drafts.load(r.Context(), pg.Who.Subject, def.ID)
	if err != nil {
		return nil, err
	}
	f := &form{Lang: pg.Lang, CSRF: pg.CSRF, Action: "/services/" + def.ID + "/apply", DraftAction: "/services/" + def.ID + "/draft", IdempotencyKey: newKey(), Draft: true, Fields: fields(plan, pg.Who, values)}
	if saved != nil {
		f.DraftSaved = saved
	}
	c.prefill(r.Context(), plan, pg.Who, f.Fields, web.RequestID(r.Context()))
	return f, nil
}
