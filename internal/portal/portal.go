// Package portal is the server-rendered web front's frame (Site: layout,
// menu, CSRF, error pages) and its core pages: sign-in, the language
// switch and the static files. The areas (internal/portal/citizen, ...) mount their
// pages on the Site. Every page works without JavaScript, speaks Kazakh
// first (Russian and English one click away) and calls capabilities
// through their Go APIs, never over HTTP.
//
// Sign-in (/login: password, then the one-time code sent by SMS) starts a
// session (internal/identity).
//
// Owns: routes /login, /login/code, /logout, /lang/{lang}, /static/.
// (A document's page and verification are internal/portal/account's.)
//
// May import: internal/web, internal/apierr, internal/i18n, internal/identity.
package portal

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/web"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Deps are what the core pages need.
type Deps struct {
	// Logins and Sessions sign people in; nil switches sign-in off.
	Logins   *identity.Logins
	Sessions *identity.Sessions
	// ExternalLogin offers citizens the external OpenID Connect provider
	// (/login/external, mounted by internal/identity).
	ExternalLogin bool
}

// Portal serves the core pages: sign-in and the language switch.
type Portal struct {
	deps  Deps
	pages Templates
}

// New parses the templates; a template error is a programming error.
func New(d Deps) *Portal {
	return &Portal{deps: d, pages: ParseTemplates(templateFS, nil, "login")}
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
	static, _ := fs.Sub(staticFS, "static")
	site.server.Handle("GET /static/", http.StripPrefix("/static/", cacheStatic(http.FileServerFS(static))))
	site.server.Handle("GET /lang/{lang}", http.HandlerFunc(p.switchLang))
	for pattern, h := range map[string]Handler{
		"GET /login":       p.loginForm,
		"POST /login":      p.login,
		"POST /login/code": p.loginCode,
		"POST /logout":     p.logout,
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
