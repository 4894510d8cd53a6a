package e2e_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/ortaq/ortaq/internal/apptest"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/portal/portaltest"
	"github.com/ortaq/ortaq/internal/process"
)

// notPages are mounted GET routes that are not pages: APIs, protocol
// endpoints, files and redirects.
var notPages = regexp.MustCompile(`^GET (/api/|/gs/|/oidc/|/\.well-known/|/static/|/lang/|/metrics|/healthz|/readyz|/r1/|/login/external)|/(jws|json)$|/attachments/`)

// pageVisit is one page of the portal as the person it is for.
type pageVisit struct {
	route string // the mounted pattern
	path  string
	as    string // anonymous, citizen, officer, admin, reader
}

// TestEveryPageAccessibleAndTranslated opens every page of the portal as
// the person it is for, in Kazakh, then switches to Russian and to English
// with the language switch on the page. axe-core checks each page in each
// language (WCAG 2.1 A/AA) and its weight is held to 100 KB; and the
// language switch must change every visible text: a text that is the same
// in two languages and different in the third is a text someone forgot
// to translate, and Cyrillic on an English page is one too. The test
// fails when a page is mounted that it does not visit.
func TestEveryPageAccessibleAndTranslated(t *testing.T) {
	r := apptest.Start(t, 2, 50)
	fx := pageFixtures(t, r)
	visits := []pageVisit{
		{"GET /{$}", "/", "anonymous"},
		{"GET /login", "/login", "anonymous"},
		{"GET /verify", "/verify", "anonymous"},
		{"GET /verify/{id}", "/verify/" + fx.document, "anonymous"},
		{"GET /services/{id}", "/services/criminal-record-certificate", "citizen"},
		{"GET /applications", "/applications", "citizen"},
		{"GET /applications/{id}", "/applications/" + fx.done, "citizen"},
		{"GET /documents", "/documents", "citizen"},
		{"GET /documents/{id}", "/documents/" + fx.document, "citizen"},
		{"GET /notifications", "/notifications", "citizen"},
		{"GET /consents", "/consents", "citizen"},
		{"GET /my-data", "/my-data", "citizen"},
		{"GET /officer", "/officer", "officer"},
		{"GET /officer/tasks/{id}", "/officer/tasks/" + fx.task, "officer"},
		{"GET /admin/services", "/admin/services", "admin"},
		{"GET /admin/services/{id}", "/admin/services/address-certificate", "admin"},
		{"GET /admin/publish", "/admin/publish", "admin"},
		{"GET /admin/catalogue", "/admin/catalogue", "admin"},
		{"GET /admin/registries", "/admin/registries", "reader"},
		{"GET /admin/registries/{name}", "/admin/registries/population?purpose=checking+a+record&f.iin=" + fx.applicant, "reader"},
		{"GET /admin/registries/{name}/{key}", "/admin/registries/population/" + fx.applicant + "?purpose=checking+a+record", "reader"},
	}
	var missing []string
	for _, route := range r.Web.Routes() {
		if strings.HasPrefix(route, "GET ") && !notPages.MatchString(route) && !slices.ContainsFunc(visits, func(v pageVisit) bool { return v.route == route }) {
			missing = append(missing, route)
		}
	}
	if len(missing) > 0 {
		t.Errorf("pages this test does not visit (add them): %v", missing)
	}

	pt := portaltest.New(t, r)
	people := map[string]func(b *browser){
		"anonymous": func(*browser) {},
		"citizen": func(b *browser) {
			b.signIn(fx.applicant, portaltest.Password, pt.Citizen(fx.applicant), false)
		},
		"officer": func(b *browser) {
			b.signIn("gpo-pages-1", portaltest.Password, pt.Officer("gpo-pages-1", "gpo", "special-records-officer"), true)
		},
		"admin": func(b *browser) {
			b.signIn("mdai-pages-1", portaltest.Password, pt.Officer("mdai-pages-1", "mdai", "platform-administrator"), true)
		},
		"reader": func(b *browser) {
			b.signIn("mia-pages-1", portaltest.Password, pt.Officer("mia-pages-1", "mia", "migration-officer"), true)
		},
	}
	for _, as := range []string{"anonymous", "citizen", "officer", "admin", "reader"} {
		t.Run(as, func(t *testing.T) {
			b := newBrowser(t, r)
			people[as](b)
			for _, v := range visits {
				if v.as != as {
					continue
				}
				texts := map[i18n.Lang][]string{}
				if status := b.visit(v.path); status != 200 {
					t.Errorf("%s as %s = %d", v.path, as, status)
					continue
				}
				for _, lang := range []i18n.Lang{i18n.KK, i18n.RU, i18n.EN} {
					if b.attr("html", "lang") != string(lang) {
						b.click(fmt.Sprintf(`nav.langs a[hreflang="%s"]`, lang))
					}
					if got := b.attr("html", "lang"); got != string(lang) {
						t.Errorf("%s: the switch to %s gave a page in %q", v.path, lang, got)
					}
					texts[lang] = b.visibleTexts()
				}
				for _, problem := range untranslated(texts) {
					t.Errorf("%s: %s", v.path, problem)
				}
			}
		})
	}
}

// visibleTexts are the page's texts in its own language: text nodes,
// labels for assistive technology (aria-label, alt, title, placeholder)
// and the title, without code, data fields and snippets marked as another
// language (the language switch names each language in itself).
func (b *browser) visibleTexts() []string {
	b.t.Helper()
	texts, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`(() => {
		const page = document.documentElement.lang, out = [];
		const add = (t, el) => {
			t = (t || '').replace(/\s+/g, ' ').trim();
			if (!/\p{L}{2}/u.test(t)) return;
			const l = el.closest('[lang]');
			if (l && l.getAttribute('lang') !== page) return;
			out.push(t);
		};
		const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
		for (let n; (n = walk.nextNode());) {
			const el = n.parentElement;
			if (el.closest('script, style, textarea, code, pre, [hidden], [translate="no"], .data')) continue;
			add(n.textContent, el);
		}
		document.querySelectorAll('[aria-label], [alt], [title], [placeholder]').forEach(el => {
			for (const a of ['aria-label', 'alt', 'title', 'placeholder']) if (el.hasAttribute(a)) add(el.getAttribute(a), el);
		});
		add(document.title, document.documentElement);
		return out;
	})()`))
	if err != nil {
		b.t.Fatalf("reading the page's texts: %v", err)
	}
	return texts
}

var cyrillic = regexp.MustCompile(`\p{Cyrillic}`)

// untranslated compares one page's texts in the three languages.
func untranslated(texts map[i18n.Lang][]string) []string {
	count := func(lang i18n.Lang) map[string]int {
		m := map[string]int{}
		for _, t := range texts[lang] {
			m[t]++
		}
		return m
	}
	kk, ru, en := count(i18n.KK), count(i18n.RU), count(i18n.EN)
	var out []string
	seen := map[string]bool{}
	for _, pair := range []struct {
		a, b   map[string]int
		c      map[string]int
		names  string
		absent string
	}{{kk, ru, en, "kk and ru", "en"}, {kk, en, ru, "kk and en", "ru"}, {ru, en, kk, "ru and en", "kk"}} {
		for text := range pair.a {
			if pair.b[text] > 0 && pair.c[text] == 0 && !seen[text] && !sameInKazakhAndRussian[text] {
				seen[text] = true
				out = append(out, fmt.Sprintf("%q is the same in %s but not in %s: untranslated?", text, pair.names, pair.absent))
			}
		}
	}
	for text := range en {
		if cyrillic.MatchString(text) && kk[text] == 0 && ru[text] == 0 {
			out = append(out, fmt.Sprintf("%q on the English page is in Cyrillic", text))
		}
	}
	slices.Sort(out)
	return out
}

// sameInKazakhAndRussian are words Kazakh writes as Russian does.
var sameInKazakhAndRussian = map[string]bool{"Атрибут": true}

// fixtures is what the pages show: a completed application with its
// document and one in review with its officer's task.
type fixtures struct {
	applicant            string
	done, document, task string
}

func pageFixtures(t *testing.T, r *apptest.Running) fixtures {
	t.Helper()
	ctx := context.Background()
	if err := r.InstallRegistries(ctx); err != nil {
		t.Fatal(err)
	}
	fx := fixtures{applicant: r.Sample.WithAddress.String()}
	submit := func(service string, inputs map[string]any) uuid.UUID {
		app, _, err := r.Engine.Submit(ctx, process.SubmitRequest{ServiceID: service, Inputs: inputs, IdempotencyKey: "e2e-" + service, RequestID: "e2e"})
		if err != nil {
			t.Fatal(err)
		}
		return app.ID
	}
	done := submit("address-certificate", map[string]any{"iin": fx.applicant})
	review := submit("criminal-record-certificate", map[string]any{"iin": fx.applicant, "purpose": "employment", "name_changed": false})
	officer := identity.Principal{Kind: identity.Officer, Subject: "gpo-pages-1", Agency: "gpo", Roles: []string{"special-records-officer"}}
	for deadline := time.Now().Add(30 * time.Second); ; {
		app, err := r.Engine.Get(ctx, done)
		if err != nil {
			t.Fatal(err)
		}
		tasks, err := r.Engine.Inbox(ctx, officer, process.InboxFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			if task.ApplicationID == review {
				fx.task = task.ID.String()
			}
		}
		if app.DocumentID != nil && fx.task != "" {
			fx.done, fx.document = done.String(), app.DocumentID.String()
			return fx
		}
		if time.Now().After(deadline) {
			t.Fatal("the fixture applications did not reach their document and task in 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
