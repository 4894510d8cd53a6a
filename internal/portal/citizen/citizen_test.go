package citizen_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/apptest"
	"github.com/ortaq/ortaq/internal/demo"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/pgtest"
	"github.com/ortaq/ortaq/internal/portal/portaltest"
	"github.com/ortaq/ortaq/internal/process"
)

func TestMain(m *testing.M) { pgtest.Main(m, app.Schemas()...) }

func newBrowser(t *testing.T) (*portaltest.Browser, demo.Result) {
	t.Helper()
	r := apptest.Start(t, 2, 200)
	return portaltest.New(t, r), r.Sample
}

var appLink = regexp.MustCompile(`^/applications/[0-9a-f-]{36}$`)

// waitWhileWorking reloads an application page while the engine still works on it.
func waitWhileWorking(t *testing.T, b *portaltest.Browser, p portaltest.Page) portaltest.Page {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Contains(p.Body, `id="app-refresh"`) {
		if time.Now().After(deadline) {
			t.Fatalf("application page still refreshing after 30s")
		}
		<-time.After(50 * time.Millisecond)
		p = b.Get(p.URL)
	}
	return p
}

// TestAnonymousBrowseSearchAndServicePage: anyone sees the catalogue by
// life situation, searches it in their language, and reads a service's
// page, which offers signing in to apply.
func TestAnonymousBrowseSearchAndServicePage(t *testing.T) {
	t.Parallel()
	b, _ := newBrowser(t)
	home := b.Get("/")
	if home.Status != 200 || !strings.Contains(home.Body, `name="q"`) || !strings.Contains(home.Body, `id="cat-housing"`) ||
		!strings.Contains(home.Body, `href="/services/address-certificate"`) || !strings.Contains(home.Body, "Тұрғын үй және тіркеу") {
		t.Fatalf("catalogue = %d:\n%.3000s", home.Status, home.Body)
	}
	b.Get("/lang/en?next=/")
	found := b.Get("/?q=" + url.QueryEscape("registered ADDRESS"))
	if !strings.Contains(found.Body, `href="/services/address-certificate"`) || strings.Contains(found.Body, `href="/services/old-age-pension"`) ||
		!strings.Contains(found.Body, `id="search-result"`) {
		t.Errorf("search for an English title:\n%.3000s", found.Body)
	}
	if byID := b.Get("/?q=pension"); !strings.Contains(byID.Body, `href="/services/old-age-pension"`) {
		t.Errorf("search by id finds nothing")
	}
	none := b.Get("/?q=" + url.QueryEscape(strings.Repeat("я", 5000)))
	if none.Status != 200 || strings.Contains(none.Body, `class="service card"`) {
		t.Errorf("a long search that matches nothing = %d", none.Status)
	}
	svc := b.Get("/services/lost-identity-document")
	for _, want := range []string{"What you get", "How long it takes", "legal deadline", "What it costs", "What you need",
		`href="/login?next=/services/lost-identity-document"`, "Date lost, stolen or damaged"} {
		if !strings.Contains(svc.Body, want) {
			t.Errorf("service page lacks %q", want)
		}
	}
	if strings.Contains(svc.Body, `action="/services/lost-identity-document/apply"`) {
		t.Errorf("an anonymous visitor is offered the form")
	}
	if p := b.Get("/services/nope"); p.Status != 404 || !strings.Contains(p.Body, "<html") {
		t.Errorf("unknown service = %d", p.Status)
	}
}

// TestApplyForCertificateAndList: a citizen applies for the automatic
// address certificate, watches it complete, opens the document; a double
// click makes one application; another citizen sees none of it.
func TestApplyForCertificateAndList(t *testing.T) {
	t.Parallel()
	b, sample := newBrowser(t)
	if p := b.Post("/services/address-certificate/apply", url.Values{}); p.Status != http.StatusForbidden {
		t.Errorf("anonymous post without a token = %d", p.Status)
	}
	page := b.SignIn(sample.WithAddress.String(), "/services/address-certificate")
	if !strings.Contains(page.Body, `value="`+sample.WithAddress.String()+`" readonly`) || !strings.Contains(page.Body, `action="/services/address-certificate/apply"`) {
		t.Fatalf("the form lacks the citizen's read-only IIN:\n%.3000s", page.Body)
	}
	form := portaltest.Form(t, page)
	form.Set("iin", sample.WithoutAddress.String()) // ignored: the applicant is who signed in
	p := b.Post("/services/address-certificate/apply", form)
	again := b.Post("/services/address-certificate/apply", form) // a double click
	if !appLink.MatchString(p.URL) || again.URL != p.URL {
		t.Fatalf("apply landed on %s, again on %s", p.URL, again.URL)
	}
	p = waitWhileWorking(t, b, p)
	if !strings.Contains(p.Body, `data-status="completed"`) || !regexp.MustCompile(`id="document-link" href="/documents/[0-9a-f-]{36}"`).MatchString(p.Body) ||
		!strings.Contains(p.Body, `id="timeline"`) || strings.Contains(p.Body, "/withdraw") {
		t.Fatalf("completed application page:\n%.4000s", p.Body)
	}
	list := b.Get("/applications")
	if list.Status != 200 || strings.Count(list.Body, `href="/applications/`) != 1 || !strings.Contains(list.Body, `href="`+p.URL+`"`) {
		t.Errorf("my applications:\n%.3000s", list.Body)
	}
	if bad := b.Get("/applications?before=yesterday"); bad.Status != 422 {
		t.Errorf("a malformed page cursor = %d", bad.Status)
	}
	other := b.Another()
	other.SignIn(sample.WithoutAddress.String(), "/")
	if o := other.Get(p.URL); o.Status != 404 {
		t.Errorf("another citizen's view = %d; want 404", o.Status)
	}
	if o := other.Get("/applications"); strings.Contains(o.Body, p.URL) {
		t.Errorf("another citizen's list shows my application")
	}
	if o := other.Post(p.URL+"/withdraw", portaltest.Form(t, other.Get("/"))); o.Status != 404 {
		t.Errorf("another citizen withdrawing = %d; want 404", o.Status)
	}
	if o := b.Get("/applications/not-a-uuid"); o.Status != 404 {
		t.Errorf("malformed id = %d", o.Status)
	}
	// The older form action still applies.
	if old := b.Post("/apply/address-certificate", portaltest.Form(t, b.Get("/services/address-certificate"))); !appLink.MatchString(old.URL) {
		t.Errorf("POST /apply/{id} landed on %s", old.URL)
	}
}

// TestFieldErrorsDraftAndPrefill: errors are named next to their fields in
// the visitor's language with the answers kept; a draft is kept, shown
// again, refused when oversize, and deleted by applying; the pick-up place
// is pre-filled from the citizen's registered address.
func TestFieldErrorsDraftAndPrefill(t *testing.T) {
	t.Parallel()
	b, sample := newBrowser(t)
	ctx := context.Background()
	if err := b.R.InstallRegistries(ctx); err != nil {
		t.Fatal(err)
	}
	if err := demo.LoadRegistries(ctx, b.R.Registries, demo.Population(200, demo.PopulationSeed), io.Discard); err != nil {
		t.Fatal(err)
	}
	b.Get("/lang/ru?next=/")
	const svc = "/services/lost-identity-document"
	page := b.SignIn(sample.WithAddress.String(), svc)
	if !strings.Contains(page.Body, `id="f-pickup_kato-source"`) || !regexp.MustCompile(`id="f-pickup_kato" name="pickup_kato" type="text" autocomplete="off" value="[0-9]{9}"`).MatchString(page.Body) {
		t.Errorf("pick-up place not pre-filled from the addresses registry:\n%.6000s", page.Body)
	}
	form := portaltest.Form(t, page)
	form.Set("circumstances", "Потерял в автобусе")
	form.Set("loss_date", "not a date")
	p := b.Post(svc+"/apply", form)
	if p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, `id="f-document_type-error"`) ||
		!strings.Contains(p.Body, `aria-invalid="true"`) || !strings.Contains(p.Body, "Потерял в автобусе") || !strings.Contains(p.Body, `<html lang="ru">`) {
		t.Errorf("errors: %d\n%.5000s", p.Status, p.Body)
	}

	form = portaltest.Form(t, page)
	form.Set("circumstances", "Черновик: потерял в автобусе")
	saved := b.Post(svc+"/draft", form)
	if saved.URL != svc || !strings.Contains(saved.Body, `id="draft-saved"`) || !strings.Contains(saved.Body, "Черновик: потерял в автобусе") || !strings.Contains(saved.Body, `id="draft-note"`) {
		t.Errorf("after saving a draft: %s\n%.4000s", saved.URL, saved.Body)
	}
	if reopened := b.Get(svc); !strings.Contains(reopened.Body, "Черновик: потерял в автобусе") {
		t.Errorf("the draft is not restored")
	}
	form.Set("circumstances", strings.Repeat("x", 20_000))
	if big := b.Post(svc+"/draft", form); big.Status != http.StatusRequestEntityTooLarge || !strings.Contains(big.Body, `id="form-error"`) {
		t.Errorf("oversize draft = %d", big.Status)
	}
	form = portaltest.Form(t, b.Get(svc))
	for k, v := range map[string]string{"document_type": "id_card", "reason": "lost", "loss_date": "2026-01-10", "pickup_kato": "751110000"} {
		form.Set(k, v)
	}
	done := b.Post(svc+"/apply", form)
	if !appLink.MatchString(done.URL) {
		t.Fatalf("apply landed on %s:\n%.3000s", done.URL, done.Body)
	}
	if after := b.Get(svc); strings.Contains(after.Body, "Черновик: потерял в автобусе") || strings.Contains(after.Body, `id="draft-note"`) {
		t.Errorf("the draft outlived the application")
	}
}

// TestWithdrawAndCorrection: the applicant withdraws an undecided
// application; an officer returns another one, the citizen sees why,
// corrects it, and the process resumes.
func TestWithdrawAndCorrection(t *testing.T) {
	t.Parallel()
	b, sample := newBrowser(t)
	ctx := context.Background()
	const svc = "/services/criminal-record-certificate"
	apply := func() portaltest.Page {
		form := portaltest.Form(t, b.Get(svc))
		form.Set("purpose", "employment")
		p := b.Post(svc+"/apply", form)
		if !appLink.MatchString(p.URL) {
			t.Fatalf("apply landed on %s:\n%.3000s", p.URL, p.Body)
		}
		return waitWhileWorking(t, b, p)
	}
	b.SignIn(sample.WithAddress.String(), svc)
	first := apply()
	if !strings.Contains(first.Body, `action="`+first.URL+`/withdraw"`) {
		t.Fatalf("undecided application offers no withdrawal:\n%.4000s", first.Body)
	}
	w := b.Post(first.URL+"/withdraw", portaltest.Form(t, first))
	if w.URL != first.URL || !strings.Contains(w.Body, `data-status="withdrawn"`) || strings.Contains(w.Body, "/withdraw\"") {
		t.Errorf("after withdrawing: %s\n%.3000s", w.URL, w.Body)
	}

	second := apply()
	officer := identity.Principal{Kind: identity.Officer, Subject: "gpo-officer-1", Agency: "gpo", Roles: []string{"special-records-officer"}}
	tasks, err := b.R.Engine.Inbox(ctx, officer, process.InboxFilter{})
	if err != nil || len(tasks) == 0 {
		t.Fatalf("inbox: %v %v", tasks, err)
	}
	task := tasks[0]
	if _, err := b.R.Engine.Claim(ctx, officer, task.ID, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := b.R.Engine.Decide(ctx, officer, task.ID, process.DecideRequest{Decision: "return", Comment: "Укажите прежние фамилии"}); err != nil {
		t.Fatal(err)
	}
	returned := b.Get(second.URL)
	if !strings.Contains(returned.Body, `id="correction-reason"`) || !strings.Contains(returned.Body, "Укажите прежние фамилии") ||
		!strings.Contains(returned.Body, `action="`+second.URL+`/correct"`) || !strings.Contains(returned.Body, `<option value="employment" selected>`) {
		t.Fatalf("returned application page:\n%.5000s", returned.Body)
	}
	form := portaltest.Form(t, returned)
	form.Set("purpose", "employment")
	form.Set("name_changed", "on")
	form["previous_names"] = []string{"Иванова Анна", "", "x"} // "x" is too short
	bad := b.Post(second.URL+"/correct", form)
	if bad.Status != http.StatusUnprocessableEntity || !strings.Contains(bad.Body, `id="f-previous_names-error"`) {
		t.Errorf("a wrong correction: %d\n%.5000s", bad.Status, bad.Body)
	}
	form["previous_names"] = []string{"Иванова Анна"}
	fixed := b.Post(second.URL+"/correct", form)
	if fixed.URL != second.URL {
		t.Fatalf("correction landed on %s", fixed.URL)
	}
	fixed = waitWhileWorking(t, b, fixed)
	if !strings.Contains(fixed.Body, `data-status="in_review"`) || strings.Contains(fixed.Body, `id="correction-reason"`) {
		t.Errorf("after the correction:\n%.4000s", fixed.Body)
	}
	if o := b.Post(second.URL+"/correct", form); o.Status != http.StatusConflict {
		t.Errorf("correcting again = %d; want 409", o.Status)
	}
}
