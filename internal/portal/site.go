package portal

import (
	"bytes"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"strings"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/web"
)

// Page is what every page template receives: the layout reads the fields,
// the page's own template reads Data.
type Page struct {
	Lang  i18n.Lang
	Path  string
	CSRF  string
	Title string
	// RefreshURL moves the browser on at once (a local path), where a
	// redirect would break the Content-Security-Policy's form-action.
	RefreshURL string
	// Who is the signed-in person, nil for anonymous visitors.
	Who *identity.Principal
	// Nav is the menu for Who, built by the site from every area's items.
	Nav  []NavItem
	Data any
}

// NavItem is one entry of the menu in the page header.
type NavItem struct {
	Href    string
	Label   string
	Current bool
}

// Handler renders one page: it fills pg and names the template, or answers
// itself (a redirect) and returns "" as the template.
type Handler func(w http.ResponseWriter, r *http.Request, pg *Page) (template string, status int, err error)

// Templates are an area's page templates, each parsed with the layout.
type Templates map[string]*template.Template

// ParseTemplates parses templates/<name>.html of fsys for each name, each
// with the layout and the site's functions (plus extra, which may be nil).
// A template error is a programming error and panics.
func ParseTemplates(fsys fs.FS, extra template.FuncMap, names ...string) Templates {
	fm := maps.Clone(funcs)
	maps.Copy(fm, extra)
	out := Templates{}
	for _, name := range names {
		t := template.Must(template.New("layout.html").Funcs(fm).ParseFS(templateFS, "templates/layout.html"))
		out[name] = template.Must(t.ParseFS(fsys, "templates/"+name+".html"))
	}
	return out
}

// MaxFormBytes caps every form post to the portal, uploads included (an
// officer's decision carries up to three 2 MiB attachments); a page may
// check a smaller limit of its own.
const MaxFormBytes = 8 << 20

// formMemory is how much of a multipart form is held in memory; larger
// files go to temporary files until the handler is done.
const formMemory = 1 << 20

// Site is the portal's frame that every area (citizen, officer, admin)
// mounts its pages on: the layout and menu, the visitor's language, the
// signed-in person, CSRF checks on every form post, and error pages in the
// visitor's language that never show internal error text.
type Site struct {
	server *web.Server
	log    *slog.Logger
	errors Templates
	nav    []navEntry
}

type navEntry struct {
	href, key string
	visible   func(identity.Principal) bool
}

// NewSite makes the frame on server.
func NewSite(server *web.Server) *Site {
	return &Site{server: server, log: server.Logger(), errors: ParseTemplates(templateFS, nil, "error")}
}

// AddNav adds a menu item (an i18n key) shown to signed-in people for whom
// visible says so; items appear in the order they are added.
func (s *Site) AddNav(href, key string, visible func(identity.Principal) bool) {
	s.nav = append(s.nav, navEntry{href: href, key: key, visible: visible})
}

// Handle mounts a page handler; its templates come from t.
func (s *Site) Handle(pattern string, t Templates, h Handler) {
	s.server.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pg := s.newPage(w, r)
		if r.Method == http.MethodPost {
			// Cap the body before anything parses it: the CSRF check reads
			// the form, and a multipart form would otherwise be taken whole
			// (to memory up to 32 MB, then to disk) before a page's own
			// limit is checked.
			r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
			var err error
			if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
				err = r.ParseMultipartForm(formMemory)
			} else {
				err = r.ParseForm()
			}
			if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
				s.RenderError(w, r, pg, apierr.New(apierr.BodyTooLarge))
				return
			}
			if err := web.CheckCSRF(r); err != nil {
				s.RenderError(w, r, pg, err)
				return
			}
		}
		name, status, err := h(w, r, pg)
		if err != nil {
			s.RenderError(w, r, pg, err)
			return
		}
		if name == "" { // the handler answered itself (a redirect)
			return
		}
		tmpl, ok := t[name]
		if !ok {
			s.log.ErrorContext(r.Context(), "page has no template", "template", name, "path", r.URL.Path)
			s.RenderError(w, r, pg, apierr.New(apierr.Internal))
			return
		}
		s.render(w, r, tmpl, status, pg)
	}))
}

func (s *Site) newPage(w http.ResponseWriter, r *http.Request) *Page {
	pg := &Page{Lang: web.Lang(r), Path: r.URL.Path, CSRF: web.CSRFToken(w, r)}
	if who, ok := identity.FromContext(r.Context()); ok {
		pg.Who = &who
		for _, n := range s.nav {
			if n.visible(who) {
				current := r.URL.Path == n.href || (n.href != "/" && strings.HasPrefix(r.URL.Path, n.href+"/"))
				pg.Nav = append(pg.Nav, NavItem{Href: n.href, Label: i18n.T(pg.Lang, n.key), Current: current})
			}
		}
	}
	return pg
}

func (s *Site) render(w http.ResponseWriter, r *http.Request, t *template.Template, status int, pg *Page) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, pg); err != nil {
		s.log.ErrorContext(r.Context(), "render page", "page", r.URL.Path, "error", err, "request_id", web.RequestID(r.Context()))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", string(pg.Lang))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type errorData struct {
	Code      apierr.Code
	Message   string
	RequestID string
}

// RenderError shows err as a page in the visitor's language: its stable
// code's message and the request id, never the error's own text.
func (s *Site) RenderError(w http.ResponseWriter, r *http.Request, pg *Page, err error) {
	e := apierr.From(err)
	if e.Status() >= 500 {
		s.log.ErrorContext(r.Context(), "page failed", "error", err, "request_id", web.RequestID(r.Context()), "path", r.URL.Path)
	}
	pg.Title = i18n.T(pg.Lang, "portal.error.title")
	pg.Data = errorData{Code: e.Code, Message: web.ErrorMessage(pg.Lang, e.Code), RequestID: web.RequestID(r.Context())}
	s.render(w, r, s.errors["error"], e.Status(), pg)
}

// SafeNext keeps only local paths: never an open redirect.
func SafeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") || strings.HasPrefix(next, "/login") {
		return "/"
	}
	return next
}

// ToLogin sends an anonymous visitor to sign in, and back here afterwards.
// Handlers return its result: ToLogin(w, r).
func ToLogin(w http.ResponseWriter, r *http.Request) (string, int, error) {
	next := r.URL.Path
	if r.Method != http.MethodGet {
		next = "/"
	}
	http.Redirect(w, r, "/login?next="+url.QueryEscape(next), http.StatusSeeOther)
	return "", 0, nil
}

// Redirect answers a form post with 303 See Other to a local path.
func Redirect(w http.ResponseWriter, r *http.Request, path string) (string, int, error) {
	http.Redirect(w, r, SafeNext(path), http.StatusSeeOther)
	return "", 0, nil
}

// IsCitizen reports whether p is a citizen (a menu item's visibility).
func IsCitizen(p identity.Principal) bool { return p.Kind == identity.Citizen }

// IsOfficer reports whether p is an officer of any agency.
func IsOfficer(p identity.Principal) bool { return p.Kind == identity.Officer }
