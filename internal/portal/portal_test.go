package portal_test

import (
	"bytes"
	"context"
	"html"
	"mime/multipart"
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
	"github.com/ortaq/ortaq/internal/portal"
	"github.com/ortaq/ortaq/internal/portal/portaltest"
)

func TestMain(m *testing.M) { pgtest.Main(m, app.Schemas()...) }

func newBrowser(t *testing.T) (*portaltest.Browser, demo.Result) {
	t.Helper()
	r := apptest.Start(t, 2, 200)
	return portaltest.New(t, r), r.Sample
}

// TestSignInToARelyingParty: a relying party sends a citizen to
// /oidc/authorize; not signed in, they sign in on the portal's /login and
// are taken back (by a page that moves on: the CSP's form-action forbids a
// redirect to another site after a form post), and the relying party gets
// its code.
func TestSignInToARelyingParty(t *testing.T) {
	t.Parallel()
	b, sample := newBrowser(t)
	ctx := context.Background()
	if _, err := b.R.Accounts.SetClient(ctx, identity.Principal{Kind: identity.System, Subject: "rp"}); err != nil {
		t.Fatal(err)
	}
	if err := b.R.Accounts.SetRedirectURIs(ctx, "rp", []string{"https://rp.example/cb"}); err != nil {
		t.Fatal(err)
	}
	authorize := "/oidc/authorize?response_type=code&client_id=rp&redirect_uri=https%3A%2F%2Frp.example%2Fcb&scope=openid&state=s1" +
		"&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
	b.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := b.Client.Get(b.Base + authorize)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusSeeOther || loc.Path != "/login" || !strings.HasPrefix(loc.Query().Get("next"), "/oidc/authorize?") {
		t.Fatalf("anonymous authorize = %d %s", res.StatusCode, loc)
	}
	b.Client.CheckRedirect = nil
	done := b.SignInTo(sample.WithAddress.String(), b.Citizen(sample.WithAddress.String()), false, loc.Query().Get("next"))
	if done.Status != 200 || !strings.Contains(done.Body, `http-equiv="refresh" content="0; url=/oidc/authorize?`) {
		t.Fatalf("after signing in: %d %s\n%.2000s", done.Status, done.URL, done.Body)
	}
	b.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err = b.Client.Get(b.Base + authorize)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	back, _ := url.Parse(res.Header.Get("Location"))
	if back.Host != "rp.example" || back.Query().Get("code") == "" || back.Query().Get("state") != "s1" {
		t.Errorf("signed in, authorize = %d %s", res.StatusCode, back)
	}
}

func TestCitizenGetsCertificate(t *testing.T) {
	t.Parallel()
	b, sample := newBrowser(t)
	home := b.Get("/")
	if home.Status != 200 || !strings.Contains(home.Body, `<html lang="kk">`) {
		t.Fatalf("home = %d, want Kazakh by default:\n%.500s", home.Status, home.Body)
	}
	// Applying (internal/portal/citizen) needs a signed-in citizen.
	page := b.SignIn(sample.WithAddress.String(), "/services/address-certificate")
	p := b.Post("/services/address-certificate/apply", portaltest.Form(t, page))
	if p.Status != 200 || !strings.HasPrefix(p.URL, "/applications/") {
		t.Fatalf("apply landed on %s with %d", p.URL, p.Status)
	}
	deadline := time.Now().Add(30 * time.Second)
	for strings.Contains(p.Body, `id="app-refresh"`) {
		if time.Now().After(deadline) {
			t.Fatalf("application page still refreshing after 30s")
		}
		<-time.After(50 * time.Millisecond)
		p = b.Get(p.URL)
	}
	link := regexp.MustCompile(`href="(/documents/[^"]+)"`).FindStringSubmatch(p.Body)
	if link == nil {
		t.Fatalf("decided application page has no document link:\n%s", p.Body)
	}
	// Another citizen learns nothing of it; anonymous visitors are sent to sign in.
	other := b.Another()
	other.SignIn(sample.WithoutAddress.String(), "/")
	if o := other.Get(p.URL); o.Status != 404 {
		t.Errorf("another citizen's view of the application = %d; want 404", o.Status)
	}
	if o := other.Get(link[1]); o.Status != 404 {
		t.Errorf("another citizen's view of the document = %d; want 404", o.Status)
	}
	if o := b.Another().Get(p.URL); o.URL != "/login" {
		t.Errorf("anonymous view of the application landed on %s; want /login", o.URL)
	}
	doc := b.Get(link[1])
	if doc.Status != 200 || !strings.Contains(doc.Body, "<textarea") || !strings.Contains(doc.Body, "Тіркелген мекенжайы") {
		t.Fatalf("document page = %d:\n%.2000s", doc.Status, doc.Body)
	}
	jws := regexp.MustCompile(`(?s)<textarea id="jws" readonly rows="6">(.*?)</textarea>`).FindStringSubmatch(doc.Body)
	if jws == nil {
		t.Fatal("document page shows no JWS")
	}
	verify := b.Get("/verify")
	vf := portaltest.Form(t, verify)
	vf.Set("jws", html.UnescapeString(jws[1]))
	if v := b.Post("/verify", vf); !strings.Contains(v.Body, "status-completed") {
		t.Errorf("verifying the genuine document failed:\n%.2000s", v.Body)
	}
	vf.Set("jws", strings.Replace(html.UnescapeString(jws[1]), ".ey", ".ez", 1))
	if v := b.Post("/verify", vf); !strings.Contains(v.Body, "status-refused") {
		t.Errorf("a tampered document verified:\n%.2000s", v.Body)
	}
}

// TestSignInFailuresAndSignOut: a wrong password is refused without saying
// whether the account exists, a wrong code is named next to its field, and
// signing out ends the session.
func TestSignInFailuresAndSignOut(t *testing.T) {
	t.Parallel()
	b, sample := newBrowser(t)
	b.Citizen(sample.WithAddress.String())
	b.Get("/lang/en?next=/")
	for _, subject := range []string{sample.WithAddress.String(), sample.WithoutAddress.String()} {
		form := portaltest.Form(t, b.Get("/login"))
		form.Set("subject", subject)
		form.Set("password", "wrong password")
		p := b.Post("/login", form)
		if p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, "the IIN (or officer id) or the password is wrong") {
			t.Errorf("wrong password for %s: %d\n%.1500s", subject, p.Status, p.Body)
		}
	}
	form := portaltest.Form(t, b.Get("/login"))
	form.Set("subject", "12")
	p := b.Post("/login", form)
	if p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, `id="subject-error"`) || !strings.Contains(p.Body, `id="password-error"`) {
		t.Errorf("malformed sign-in: %d\n%.2000s", p.Status, p.Body)
	}
	form = portaltest.Form(t, b.Get("/login"))
	form.Set("subject", sample.WithAddress.String())
	form.Set("password", portaltest.Password)
	step := b.Post("/login", form)
	code := portaltest.Form(t, step)
	code.Set("code", "12345x")
	if p := b.Post("/login/code", code); p.Status != http.StatusUnprocessableEntity || !strings.Contains(p.Body, `id="code-error"`) {
		t.Errorf("malformed code: %d\n%.2000s", p.Status, p.Body)
	}

	home := b.SignIn(sample.WithAddress.String(), "/")
	out := b.Post("/logout", portaltest.Form(t, home))
	if out.URL != "/" || strings.Contains(out.Body, `action="/logout"`) || !strings.Contains(out.Body, `href="/login?next=%2f"`) {
		t.Errorf("after signing out: %s\n%.1500s", out.URL, out.Body)
	}
	if p := b.Post("/logout", url.Values{}); p.Status != http.StatusForbidden {
		t.Errorf("sign-out without the form token = %d; want 403", p.Status)
	}
}

func TestLanguageSwitchChangesEveryText(t *testing.T) {
	t.Parallel()
	b, _ := newBrowser(t)
	kk := b.Get("/")
	for _, tt := range []struct{ lang, title string }{
		{"ru", "Государственные услуги"}, {"en", "Public services"}, {"kk", "Мемлекеттік қызметтер"},
	} {
		p := b.Get("/lang/" + tt.lang + "?next=/")
		if !strings.Contains(p.Body, `<html lang="`+tt.lang+`">`) || !strings.Contains(p.Body, "<h1>"+tt.title+"</h1>") {
			t.Errorf("after switching to %s:\n%.800s", tt.lang, p.Body)
		}
		if tt.lang != "kk" && strings.Contains(p.Body, "Өтініш беру") {
			t.Errorf("%s page still shows the Kazakh button text", tt.lang)
		}
	}
	_ = kk
}

func TestFormWithoutCSRFTokenRefused(t *testing.T) {
	t.Parallel()
	b, sample := newBrowser(t)
	b.Get("/")
	p := b.Post("/apply/address-certificate", url.Values{"iin": {sample.WithAddress.String()}})
	if p.Status != http.StatusForbidden || !strings.Contains(p.Body, "<html") {
		t.Errorf("POST without token = %d; want a 403 page:\n%.500s", p.Status, p.Body)
	}
}

func TestNoOpenRedirect(t *testing.T) {
	t.Parallel()
	b, _ := newBrowser(t)
	b.Client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, next := range []string{"//evil.example/", "https://evil.example/", `/\evil.example`} {
		res, err := b.Client.Get(b.Base + "/lang/en?next=" + url.QueryEscape(next))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if loc := res.Header.Get("Location"); loc != "/" {
			t.Errorf("next=%q redirected to %q; want /", next, loc)
		}
	}
}

func TestUnknownApplicationIsAnHTMLPage(t *testing.T) {
	t.Parallel()
	b, sample := newBrowser(t)
	b.SignIn(sample.WithAddress.String(), "/")
	p := b.Get("/applications/not-a-uuid")
	if p.Status != 404 || !strings.Contains(p.Body, "<html") || strings.Contains(p.Body, `"code"`) {
		t.Errorf("unknown application = %d:\n%.500s", p.Status, p.Body)
	}
}

// TestOversizeFormRefusedBeforeParsing: a form post over the portal's cap
// (uploads included) is refused with 413 and the error page, before any
// page reads it.
func TestOversizeFormRefusedBeforeParsing(t *testing.T) {
	t.Parallel()
	b, _ := newBrowser(t)
	form := portaltest.Form(t, b.Get("/login"))
	form.Set("subject", strings.Repeat("x", portal.MaxFormBytes))
	if p := b.Post("/login", form); p.Status != http.StatusRequestEntityTooLarge || !strings.Contains(p.Body, "<html") {
		t.Errorf("oversize url-encoded form = %d; want 413 and the error page", p.Status)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("csrf", form.Get("csrf"))
	fw, _ := mw.CreateFormFile("file", "big.yaml")
	_, _ = fw.Write(bytes.Repeat([]byte("a"), portal.MaxFormBytes+1))
	mw.Close()
	res, err := b.Client.Post(b.Base+"/login", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversize multipart form = %d; want 413", res.StatusCode)
	}
}
