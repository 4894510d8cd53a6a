// Package portal is the server-rendered web front for citizens: the service
// list, the application form, the status page with its timeline, the result
// document, and public verification of a document. Every page works without
// JavaScript, speaks Kazakh first (Russian and English one click away) and
// calls capabilities through their Go APIs, never over HTTP.
//
// Sign-in (/login: password, then the one-time code sent by SMS) starts a
// session (internal/identity); applying needs a signed-in citizen, who is the
// applicant, and an application or a document is shown only to whom
// [Deps].CanRead allows.
//
// Owns: routes /, /apply/{service}, /applications/{id}, /documents/{id},
// /verify, /login, /login/code, /logout, /lang/{lang}, /static/.
//
// May import: internal/web, internal/apierr, internal/i18n, internal/identity,
// internal/service, internal/servicedef, internal/process, internal/document.
package portal

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/document"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/process"
	"github.com/ortaq/ortaq/internal/service"
	"github.com/ortaq/ortaq/internal/servicedef"
	"github.com/ortaq/ortaq/internal/web"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Deps are the capabilities the portal shows.
type Deps struct {
	Services  *service.Catalogue
	Agencies  service.AgencyNames
	Engine    *process.Engine
	Documents *document.Store
	// Logins and Sessions sign people in; nil switches sign-in off.
	Logins   *identity.Logins
	Sessions *identity.Sessions
	// CanRead decides who may see an application or a document ("application",
	// "document" by id): nil, or the error to show. nil CanRead lets only
	// signed-in people see them.
	CanRead func(ctx context.Context, who identity.Principal, signedIn bool, what, id string) error
	// ExternalLogin offers citizens the external OpenID Connect provider
	// (/login/external, mounted by internal/identity).
	ExternalLogin bool
}

// Portal serves the core pages: sign-in, the service list with its forms,
// an application's status, a document, verification, the language switch.
type Portal struct {
	deps  Deps
	pages Templates
	site  *Site
}

// New parses the templates; a template error is a programming error.
func New(d Deps) *Portal {
	return &Portal{deps: d, pages: ParseTemplates(templateFS, nil, "home", "application", "document", "verify", "login")}
}

var almaty = time.FixedZone("Asia/Almaty", 5*60*60)

var funcs = template.FuncMap{
	"t":     func(lang i18n.Lang, key string, args ...any) string { return i18n.T(lang, key, args...) },
	"in":    func(lang i18n.Lang, t i18n.Text) string { return t.In(lang) },
	"deref": func(t *i18n.Text) i18n.Text { return *t },
	"langs": func() []i18n.Lang { return i18n.Supported },
	// People see time in Kazakhstan's zone (UTC+5); storage stays UTC.
	"when": func(t time.Time) string { return t.In(almaty).Format("02.01.2006 15:04:05") },
	// within says "up to N minutes/hours/days" in the largest whole unit.
	"within": func(lang i18n.Lang, d time.Duration) string {
		switch {
		case d >= 24*time.Hour && d%(24*time.Hour) == 0:
			return i18n.T(lang, "portal.service.days", int(d/(24*time.Hour)))
		case d >= time.Hour && d%time.Hour == 0:
			return i18n.T(lang, "portal.service.hours", int(d/time.Hour))
		}
		return i18n.T(lang, "portal.service.minutes", int(d.Minutes()))
	},
	// tenge shows an amount in tiyn as tenge, e.g. "2 162,50 ₸" (the
	// grouping and decimal comma used in Kazakhstan in every language).
	"tenge": func(tiyn int64) string {
		whole := strconv.FormatInt(tiyn/100, 10)
		var b strings.Builder
		for i, c := range whole {
			if i > 0 && (len(whole)-i)%3 == 0 {
				b.WriteRune('\u00a0')
			}
			b.WriteRune(c)
		}
		return fmt.Sprintf("%s,%02d\u00a0₸", b.String(), tiyn%100)
	},
	"ms": func(f float64) string {
		if f < 0.1 {
			return "<0.1"
		}
		return strconv.FormatFloat(f, 'f', 1, 64)
	},
	// loc picks the visitor's language out of a {kk, ru, en} document field.
	"loc": func(lang i18n.Lang, v any) string {
		if v == nil {
			return ""
		}
		if m, ok := v.(map[string]any); ok {
			t := i18n.Text{}
			t.KK, _ = m["kk"].(string)
			t.RU, _ = m["ru"].(string)
			t.EN, _ = m["en"].(string)
			return t.In(lang)
		}
		return fmt.Sprint(v)
	},
}

// Routes mounts the core pages and the static files on site, and the menu
// items every signed-in citizen sees.
func (p *Portal) Routes(site *Site) {
	p.site = site
	static, _ := fs.Sub(staticFS, "static")
	site.server.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	site.server.Handle("GET /lang/{lang}", http.HandlerFunc(p.switchLang))
	site.AddNav("/", "portal.nav.services", IsCitizen)
	for pattern, h := range map[string]Handler{
		"GET /{$}":               p.home,
		"POST /apply/{service}":  p.apply,
		"GET /applications/{id}": p.application,
		"GET /documents/{id}":    p.document,
		"GET /verify":            p.verifyForm,
		"POST /verify":           p.verify,
		"GET /login":             p.loginForm,
		"POST /login":            p.login,
		"POST /login/code":       p.loginCode,
		"POST /logout":           p.logout,
	} {
		site.Handle(pattern, p.pages, h)
	}
}

func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

// switchLang remembers the chosen language and goes back to the page.
func (p *Portal) switchLang(w http.ResponseWriter, r *http.Request) {
	lang, ok := i18n.Parse(r.PathValue("lang"))
	if !ok {
		lang = i18n.KK
	}
	http.SetCookie(w, &http.Cookie{Name: web.LangCookie, Value: string(lang), Path: "/", MaxAge: 365 * 24 * 3600,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	next := r.URL.Query().Get("next")
	// Only local paths: never an open redirect.
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

type serviceCard struct {
	Def            service.Definition
	Owner          i18n.Text
	IdempotencyKey string
	Fields         []formField
}

// formField is one input of a service's form, ready to render.
type formField struct {
	Name     string
	Label    i18n.Text
	Hint     *i18n.Text
	Kind     string // text, number, checkbox, select
	Options  []option
	Value    string
	ReadOnly bool // the signed-in citizen's own IIN
	Checked  bool
	Error    string
}

// option is one choice of a select.
type option struct {
	Value string
	Label i18n.Text
}

type homeData struct {
	Services []serviceCard
}

func newKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// schemaOf returns the JSON Schema properties of a plan's form.
func schemaOf(plan *servicedef.Plan) map[string]any {
	schema, _ := plan.File.Form.Schema.Value.(map[string]any)
	props, _ := schema["properties"].(map[string]any)
	return props
}

func propertyType(props map[string]any, name string) string {
	prop, _ := props[name].(map[string]any)
	t, _ := prop["type"].(string)
	return t
}

func (p *Portal) cards(ctx context.Context, who *identity.Principal) ([]serviceCard, error) {
	defs, err := p.deps.Services.List(ctx)
	if err != nil {
		return nil, err
	}
	cards := make([]serviceCard, 0, len(defs))
	for _, d := range defs {
		owner, err := p.deps.Agencies.Name(ctx, d.OwnerAgency)
		if err != nil {
			return nil, err
		}
		plan, err := p.deps.Services.Plan(ctx, d.ID, d.Version)
		if err != nil {
			return nil, err
		}
		card := serviceCard{Def: d, Owner: owner, IdempotencyKey: newKey()}
		props := schemaOf(plan)
		for _, f := range plan.File.Form.Fields {
			ff := formField{Name: f.Name, Label: f.Label.Text, Kind: "text"}
			if f.Name == "iin" && who != nil && who.Kind == identity.Citizen {
				ff.Value, ff.ReadOnly = who.Subject, true
			}
			if f.Hint != nil {
				ff.Hint = &f.Hint.Text
			}
			prop, _ := props[f.Name].(map[string]any)
			if enum := servicedef.EnumValues(prop); enum != nil {
				ff.Kind = "select"
				for _, v := range enum {
					label := f.Options[v].Text
					if !label.Complete() {
						label = i18n.Text{KK: v, RU: v, EN: v}
					}
					ff.Options = append(ff.Options, option{Value: v, Label: label})
				}
			}
			switch propertyType(props, f.Name) {
			case "integer", "number":
				ff.Kind = "number"
			case "boolean":
				ff.Kind = "checkbox"
			case "array", "object":
				continue // needs the full portal's widgets
			}
			card.Fields = append(card.Fields, ff)
		}
		cards = append(cards, card)
	}
	return cards, nil
}

func (p *Portal) home(w http.ResponseWriter, r *http.Request, v *Page) (string, int, error) {
	cards, err := p.cards(r.Context(), v.Who)
	if err != nil {
		return "", 0, err
	}
	v.Title = i18n.T(v.Lang, "portal.home.title")
	v.Data = homeData{Services: cards}
	return "home", http.StatusOK, nil
}

// formInputs turns posted form values into typed inputs: a number that does
// not parse stays text, so that validation names the field.
func formInputs(r *http.Request, plan *servicedef.Plan) map[string]any {
	inputs := map[string]any{}
	props := schemaOf(plan)
	for _, f := range plan.File.Form.Fields {
		raw := strings.TrimSpace(r.PostFormValue(f.Name))
		switch propertyType(props, f.Name) {
		case "boolean":
			inputs[f.Name] = raw == "on" || raw == "true"
		case "integer":
			if raw == "" {
				continue
			}
			if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
				inputs[f.Name] = float64(n)
			} else {
				inputs[f.Name] = raw
			}
		case "number":
			if raw == "" {
				continue
			}
			if n, err := strconv.ParseFloat(raw, 64); err == nil {
				inputs[f.Name] = n
			} else {
				inputs[f.Name] = raw
			}
		case "string":
			if raw != "" || f.Name == "iin" {
				inputs[f.Name] = raw
			}
		}
	}
	return inputs
}

func (p *Portal) apply(w http.ResponseWriter, r *http.Request, v *Page) (string, int, error) {
	serviceID := r.PathValue("service")
	if v.Who == nil {
		http.Redirect(w, r, "/login?next=/", http.StatusSeeOther)
		return "", 0, nil
	}
	if v.Who.Kind != identity.Citizen {
		return "", 0, apierr.New(apierr.Forbidden)
	}
	key := r.PostFormValue("idempotency_key")
	if !process.ValidIdempotencyKey(key) {
		key = newKey()
	}
	def, err := p.deps.Services.Current(r.Context(), serviceID)
	if errors.Is(err, service.ErrNotFound) {
		return "", 0, apierr.New(apierr.ServiceNotFound)
	}
	if err != nil {
		return "", 0, err
	}
	plan, err := p.deps.Services.Plan(r.Context(), def.ID, def.Version)
	if err != nil {
		return "", 0, err
	}
	inputs := formInputs(r, plan)
	inputs["iin"] = v.Who.Subject // the signed-in citizen applies for themselves
	app, _, err := p.deps.Engine.Submit(r.Context(), process.SubmitRequest{
		ServiceID: serviceID, Inputs: inputs,
		IdempotencyKey: key, RequestID: web.RequestID(r.Context()),
	})
	var e *apierr.Error
	if errors.As(err, &e) && e.Code == apierr.Validation && len(e.Fields) > 0 {
		// Show the form again, the values kept and each error next to its field.
		cards, cerr := p.cards(r.Context(), v.Who)
		if cerr != nil {
			return "", 0, cerr
		}
		for i := range cards {
			if cards[i].Def.ID != serviceID {
				continue
			}
			cards[i].IdempotencyKey = key
			for j := range cards[i].Fields {
				f := &cards[i].Fields[j]
				if !f.ReadOnly {
					f.Value = r.PostFormValue(f.Name)
				}
				f.Checked = f.Value == "on"
				for _, fe := range e.Fields {
					if fe.Path == "/inputs/"+f.Name && f.Error == "" {
						f.Error = web.ErrorMessage(v.Lang, fe.Code)
					}
				}
			}
		}
		v.Title = i18n.T(v.Lang, "portal.home.title")
		v.Data = homeData{Services: cards}
		return "home", http.StatusUnprocessableEntity, nil
	}
	if err != nil {
		return "", 0, err
	}
	http.Redirect(w, r, "/applications/"+app.ID.String(), http.StatusSeeOther)
	return "", 0, nil
}

func (p *Portal) application(w http.ResponseWriter, r *http.Request, v *Page) (string, int, error) {
	if v.Who == nil {
		return ToLogin(w, r)
	}
	if err := p.canRead(r, v, "application"); err != nil {
		return "", 0, err
	}
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return "", 0, apierr.New(apierr.ApplicationNotFound)
	}
	app, err := p.deps.Engine.View(r.Context(), id, v.Lang)
	if errors.Is(err, process.ErrNotFound) {
		return "", 0, apierr.New(apierr.ApplicationNotFound)
	}
	if err != nil {
		return "", 0, err
	}
	if app.Status == process.StatusSubmitted {
		v.Refresh = 1
	}
	v.Title = app.Service.Title
	v.Data = app
	return "application", http.StatusOK, nil
}

type documentData struct {
	View   document.View
	Fields map[string]any
}

func (p *Portal) document(w http.ResponseWriter, r *http.Request, v *Page) (string, int, error) {
	if v.Who == nil {
		return ToLogin(w, r)
	}
	if err := p.canRead(r, v, "document"); err != nil {
		return "", 0, err
	}
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		return "", 0, apierr.New(apierr.DocumentNotFound)
	}
	d, err := p.deps.Documents.Read(r.Context(), id, v.Who.Actor(), web.RequestID(r.Context()))
	if errors.Is(err, document.ErrNotFound) {
		return "", 0, apierr.New(apierr.DocumentNotFound)
	}
	if err != nil {
		return "", 0, err
	}
	var fields map[string]any
	if err := json.Unmarshal(d.Fields, &fields); err != nil {
		return "", 0, err
	}
	v.Title = i18n.T(v.Lang, "portal.document.title")
	v.Data = documentData{View: document.ViewOf(d), Fields: fields}
	return "document", http.StatusOK, nil
}

type verifyData struct {
	JWS    string
	Result *document.Verification
	Fields map[string]any
}

func (p *Portal) verifyForm(w http.ResponseWriter, r *http.Request, v *Page) (string, int, error) {
	v.Title = i18n.T(v.Lang, "portal.verify.title")
	v.Data = verifyData{}
	return "verify", http.StatusOK, nil
}

func (p *Portal) verify(w http.ResponseWriter, r *http.Request, v *Page) (string, int, error) {
	jws := strings.TrimSpace(r.PostFormValue("jws"))
	res, err := p.deps.Documents.Verify(r.Context(), jws)
	if err != nil {
		return "", 0, err
	}
	data := verifyData{JWS: jws, Result: &res}
	if res.Document != nil {
		_ = json.Unmarshal(res.Document.Fields, &data.Fields)
	}
	v.Title = i18n.T(v.Lang, "portal.verify.title")
	v.Data = data
	return "verify", http.StatusOK, nil
}
