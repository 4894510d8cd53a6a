package admin_test

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/apptest"
	"github.com/ortaq/ortaq/internal/demo"
	"github.com/ortaq/ortaq/internal/pgtest"
	"github.com/ortaq/ortaq/internal/portal/portaltest"
)

func TestMain(m *testing.M) { pgtest.Main(m, app.Schemas()...) }

var admin = []string{"platform-administrator"}

func upload(t *testing.T, b *portaltest.Browser, form url.Values, action, name string, content []byte) portaltest.Page {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for k := range form {
		_ = w.WriteField(k, form.Get(k))
	}
	_ = w.WriteField("action", action)
	fw, _ := w.CreateFormFile("file", name)
	_, _ = fw.Write(content)
	_ = w.Close()
	res, err := b.Client.Post(b.Base+"/admin/publish", w.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return portaltest.Page{Status: res.StatusCode, URL: res.Request.URL.Path, Body: string(raw)}
}

// TestAdministratorPublishes: the administrator sees the services, a
// broken definition is shown with each problem's line, column and code and
// the source kept, a check publishes nothing, and a valid new version is
// published; other people are kept out.
func TestAdministratorPublishes(t *testing.T) {
	t.Parallel()
	r := apptest.Start(t, 2, 50)
	b := portaltest.New(t, r)
	list := b.SignInOfficer("mdai-admin-1", "mdai", admin, "/admin/services")
	for _, want := range []string{`href="/admin/services/address-certificate"`, `href="/admin/publish"`, `href="/admin/catalogue"`} {
		if !strings.Contains(list.Body, want) {
			t.Errorf("the services page lacks %s", want)
		}
	}
	if p := b.Get("/admin/services/address-certificate"); p.Status != 200 || !strings.Contains(p.Body, `id="service-version-`) {
		t.Errorf("versions page = %d", p.Status)
	}
	if p := b.Get("/admin/services/nope"); p.Status != 404 {
		t.Errorf("unknown service = %d; want 404", p.Status)
	}

	form := portaltest.Form(t, b.Get("/admin/publish"))
	broken := "id: broken-service\nversion: 1\nowner: nobody\nsteps:\n  - id: x\n    type: nonsense\n"
	form.Set("source", broken)
	form.Set("action", "publish")
	p := b.Post("/admin/publish", form)
	if p.Status != 422 || !strings.Contains(p.Body, `id="problems"`) || !strings.Contains(p.Body, `<tr class="problem"><td>`) ||
		!strings.Contains(p.Body, "owner: nobody") {
		t.Fatalf("broken definition = %d:\n%.3000s", p.Status, p.Body)
	}
	if !regexp.MustCompile(`<tr class="problem"><td>[1-9][0-9]*</td><td>[0-9]+</td><td><code>[a-z_.]+</code>`).MatchString(p.Body) {
		t.Errorf("problems without line, column and code:\n%.3000s", p.Body)
	}
	if p := b.Get("/admin/services/broken-service"); p.Status != 404 {
		t.Errorf("a broken definition was published")
	}

	// A new version of a demo service: checked first, then published.
	src, err := os.ReadFile("../../../services/address-certificate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	form.Del("action")
	next := regexp.MustCompile(`(?m)^version: [0-9]+$`).ReplaceAll(src, []byte("version: 99"))
	checked := upload(t, b, form, "check", "address-certificate.yaml", next)
	if checked.Status != 200 || !strings.Contains(checked.Body, `id="check-result"`) {
		t.Fatalf("check = %d:\n%.3000s", checked.Status, checked.Body)
	}
	if p := b.Get("/admin/services/address-certificate"); strings.Contains(p.Body, `id="service-version-99"`) {
		t.Errorf("a check published the version")
	}
	published := upload(t, b, form, "publish", "address-certificate.yaml", next)
	if published.Status != 200 || !strings.Contains(published.Body, `id="publish-result"`) {
		t.Fatalf("publish = %d:\n%.3000s", published.Status, published.Body)
	}
	if p := b.Get("/admin/services/address-certificate"); !strings.Contains(p.Body, `id="service-version-99"`) {
		t.Errorf("the published version is not listed")
	}
	// Too large a text is refused.
	form.Set("source", strings.Repeat("#", 1<<20+1))
	if p := b.Post("/admin/publish", form); p.Status != 413 {
		t.Errorf("a 1 MiB+ definition = %d; want 413", p.Status)
	}

	// Others: a citizen and an officer who is no administrator.
	officer := b.Another()
	officer.SignInOfficer("gpo-admin-1", "gpo", []string{"special-records-officer"}, "/officer")
	citizen := b.Another()
	citizen.SignIn(r.Sample.WithAddress.String(), "/")
	for _, path := range []string{"/admin/services", "/admin/publish", "/admin/services/address-certificate"} {
		if p := officer.Get(path); p.Status != 403 {
			t.Errorf("a non-administrator officer on %s = %d; want 403", path, p.Status)
		}
		if p := citizen.Get(path); p.Status != 403 {
			t.Errorf("a citizen on %s = %d; want 403", path, p.Status)
		}
		if p := b.Another().Get(path); p.URL != "/login" {
			t.Errorf("anonymous on %s landed on %s; want /login", path, p.URL)
		}
	}
	if strings.Contains(officer.Get("/officer").Body, `href="/admin/publish"`) {
		t.Errorf("a non-administrator sees the publish menu item")
	}
}

// TestRegistryPages: a reader of the population registry searches it with
// a purpose and opens a record's history, each read audited; the
// administrator sees the registries and the catalogue but no records; the
// catalogue answers where a fact is mastered.
func TestRegistryPages(t *testing.T) {
	t.Parallel()
	r := apptest.Start(t, 2, 30)
	ctx := context.Background()
	if err := r.InstallRegistries(ctx); err != nil {
		t.Fatal(err)
	}
	if err := demo.LoadRegistries(ctx, r.Registries, demo.Population(30, demo.PopulationSeed), io.Discard); err != nil {
		t.Fatal(err)
	}
	reader := portaltest.New(t, r)
	list := reader.SignInOfficer("mia-reader-1", "mia", []string{"migration-officer"}, "/admin/registries")
	if !strings.Contains(list.Body, `href="/admin/registries/population"`) {
		t.Fatalf("registries list:\n%.2000s", list.Body)
	}
	if p := reader.Get("/admin/registries/population?purpose="); p.Status != 422 || !strings.Contains(p.Body, `id="search-purpose-error"`) {
		t.Errorf("search without purpose = %d; want 422 next to the field", p.Status)
	}
	iin := r.Sample.WithAddress.String()
	found := reader.Get("/admin/registries/population?purpose=" + url.QueryEscape("portal test") + "&f.iin=" + iin)
	link := regexp.MustCompile(`href="(/admin/registries/population/` + iin + `\?purpose=[^"]+)"`).FindStringSubmatch(found.Body)
	if found.Status != 200 || link == nil {
		t.Fatalf("search = %d:\n%s", found.Status, found.Body[strings.Index(found.Body, "search-submit"):])
	}
	rec := reader.Get(strings.ReplaceAll(link[1], "&amp;", "&"))
	if rec.Status != 200 || !strings.Contains(rec.Body, `id="version-1"`) {
		t.Fatalf("record = %d:\n%.3000s", rec.Status, rec.Body)
	}
	for _, action := range []string{"registry.population.search", "registry.population.history"} {
		var n int
		if err := r.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_event WHERE action = $1 AND actor = 'officer:mia-reader-1' AND subject_iin = $2`,
			action, iin).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("%d %s audit events; want 1", n, action)
		}
	}
	if p := reader.Get("/admin/registries/population/000000000000?purpose=x"); p.Status != 404 {
		t.Errorf("unknown record = %d; want 404", p.Status)
	}
	if p := reader.Get("/admin/registries/nope"); p.Status != 404 {
		t.Errorf("unknown registry = %d; want 404", p.Status)
	}

	// The administrator browses, but the registry's rules give no reads.
	adm := reader.Another()
	adm.SignInOfficer("mdai-admin-2", "mdai", admin, "/admin/registries")
	if p := adm.Get("/admin/registries/population"); p.Status != 200 || !strings.Contains(p.Body, `id="registry-no-access"`) {
		t.Errorf("administrator on the registry = %d", p.Status)
	}
	if p := adm.Get("/admin/registries/population?purpose=x"); p.Status != 403 {
		t.Errorf("administrator's search = %d; want 403", p.Status)
	}
	if p := adm.Get("/admin/registries/population/" + iin + "?purpose=x"); p.Status != 403 {
		t.Errorf("administrator's record read = %d; want 403", p.Status)
	}
	cat := adm.Get("/admin/catalogue?q=address")
	if cat.Status != 200 || !strings.Contains(cat.Body, "addresses.") || !strings.Contains(cat.Body, `id="duplicates"`) {
		t.Errorf("catalogue = %d:\n%.2000s", cat.Status, cat.Body)
	}
	// A citizen: 403 (almost every demo officer role reads the population,
	// so each of them is an analyst here).
	citizen := reader.Another()
	citizen.SignIn(iin, "/")
	for _, path := range []string{"/admin/registries", "/admin/catalogue", "/admin/registries/population/" + iin + "?purpose=x"} {
		if p := citizen.Get(path); p.Status != 403 {
			t.Errorf("a citizen on %s = %d; want 403", path, p.Status)
		}
	}
}
