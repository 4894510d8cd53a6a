package portal_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/apptest"
	"github.com/ortaq/ortaq/internal/demo"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/notify"
	"github.com/ortaq/ortaq/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m, app.Schemas()...) }

type browser struct {
	t      *testing.T
	base   string
	client *http.Client
	r      *apptest.Running
}

func newBrowser(t *testing.T) (*browser, demo.Result) {
	t.Helper()
	r := apptest.Start(t, 2, 200)
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: r.Server.URL, client: &http.Client{Jar: jar}, r: r}, r.Sample
}

// another is a second browser (its own cookies) on the same platform.
func (b *browser) another() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: b.t, base: b.base, client: &http.Client{Jar: jar}, r: b.r}
}

const password = "test password 1"

// account creates a citizen's account with a phone of its own.
func (b *browser) account(who iin.IIN) string {
	b.t.Helper()
	phone := "+7701" + who.String()[5:12]
	if err := b.r.Accounts.SetPerson(context.Background(), identity.Principal{Kind: identity.Citizen, Subject: who.String(), Name: "Test " + who.String()[8:]}, phone, password); err != nil {
		b.t.Fatal(err)
	}
	return phone
}

var challenge = regexp.MustCompile(`name="challenge" value="([^"]+)"`)

// signIn signs in as the citizen: the password, then the code from the
// SMS in the dev outbox.
func (b *browser) signIn(who iin.IIN) page {
	b.t.Helper()
	home := b.signInTo(who, "/")
	if home.status != 200 || home.url != "/" || !strings.Contains(home.body, `action="/logout"`) {
		b.t.Fatalf("code step landed on %s with %d:\n%.1500s", home.url, home.status, home.body)
	}
	return home
}

// signInTo signs in from /login?next=next and returns the page it lands on.
func (b *browser) signInTo(who iin.IIN, next string) page {
	b.t.Helper()
	phone := b.account(who)
	login := b.get("/login?next=" + url.QueryEscape(next))
	form := formValues(b.t, login)
	form.Set("subject", who.String())
	form.Set("password", password)
	form.Set("next", html.UnescapeString(regexp.MustCompile(`name="next" value="([^"]*)"`).FindStringSubmatch(login.body)[1]))
	step := b.post("/login", form)
	ch := challenge.FindStringSubmatch(step.body)
	if step.status != 200 || ch == nil {
		b.t.Fatalf("password step = %d:\n%.2000s", step.status, step.body)
	}
	sent, err := notify.DevOutbox(context.Background(), b.r.DB.Pool, notify.OutboxFilter{To: phone, Channel: notify.SMS, Limit: 1})
	if err != nil || len(sent) != 1 {
		b.t.Fatalf("no SMS for %s: %v", phone, err)
	}
	code := regexp.MustCompile(`[0-9]{6}`).FindString(sent[0].Body)
	form = formValues(b.t, step)
	form.Set("challenge", html.UnescapeString(ch[1]))
	form.Set("code", code)
	form.Set("next", html.UnescapeString(regexp.MustCompile(`name="next" value="([^"]*)"`).FindStringSubmatch(step.body)[1]))
	return b.post("/login/code", form)
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
	if _, err := b.r.Accounts.SetClient(ctx, identity.Principal{Kind: identity.System, Subject: "rp"}); err != nil {
		t.Fatal(err)
	}
	if err := b.r.Accounts.SetRedirectURIs(ctx, "rp", []string{"https://rp.example/cb"}); err != nil {
		t.Fatal(err)
	}
	authorize := "/oidc/authorize?response_type=code&client_id=rp&redirect_uri=https%3A%2F%2Frp.example%2Fcb&scope=openid&state=s1" +
		"&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
	b.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := b.client.Get(b.base + authorize)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusSeeOther || loc.Path != "/login" || !strings.HasPrefix(loc.Query().Get("next"), "/oidc/authorize?") {
		t.Fatalf("anonymous authorize = %d %s", res.StatusCode, loc)
	}
	b.client.CheckRedirect = nil
	done := b.signInTo(sample.WithAddress, loc.Query().Get("next"))
	if done.status != 200 || !strings.Contains(done.body, `http-equiv="refresh" content="0; url=/oidc/authorize?`) {
		t.Fatalf("after signing in: %d %s\n%.2000s", done.status, done.url, done.body)
	}
	b.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err = b.client.Get(b.base + authorize)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	back, _ := url.Parse(res.Header.Get("Location"))
	if back.Host != "rp.example" || back.Query().Get("code") == "" || back.Query().Get("state") != "s1" {
		t.Errorf("signed in, authorize = %d %s", res.StatusCode, back)
	}
}

type page struct {
	status int
	url    string
	body   string
}

func (b *browser) get(path string) page {
	b.t.Helper()
	res, err := b.client.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	return read(b.t, res)
}

func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	res, err := b.client.PostForm(b.base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	return read(b.t, res)
}

func read(t *testing.T, res *http.Response) page {
	t.Helper()
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, url: res.Request.URL.Path, body: string(body)}
}

var hidden = regexp.MustCompile(`name="(csrf|idempotency_key)" value="([^"]+)"`)

func formValues(t *testing.T, p page) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range hidden.FindAllStringSubmatch(p.body, -1) {
		v.Set(m[1], m[2])
	}
	if v.Get("csrf") == "" {
		t.Fatalf("page has no CSRF token:\n%.1500s", p.body)
	}
	return v
}

func TestCitizenGetsCertificate(t *testing.T) {
	t.Parallel()
	b, sample := newBrowser(t)
	home := b.get("/")
	if home.status != 200 || !strings.Contains(home.body, `<html lang="kk">`) {
		t.Fatalf("home = %d, want Kazakh by default:\n%.500s", home.status, home.body)
	}
	// Applying needs a signed-in citizen.
	form := formValues(t, home)
	form.Set("iin", sample.WithAddress.String())
	if p := b.post("/apply/address-certificate", form); p.url != "/login" {
		t.Fatalf("anonymous apply landed on %s; want /login", p.url)
	}
	home = b.signIn(sample.WithAddress)
	if !strings.Contains(home.body, `value="`+sample.WithAddress.String()+`" readonly`) {
		t.Errorf("the form does not show the signed-in citizen's IIN, read-only")
	}
	form = formValues(t, home)
	p := b.post("/apply/address-certificate", form)
	if p.status != 200 || !strings.HasPrefix(p.url, "/applications/") {
		t.Fatalf("apply landed on %s with %d", p.url, p.status)
	}
	deadline := time.Now().Add(30 * time.Second)
	for strings.Contains(p.body, `http-equiv="refresh"`) {
		if time.Now().After(deadline) {
			t.Fatalf("application page still refreshing after 30s")
		}
		<-time.After(50 * time.Millisecond)
		p = b.get(p.url)
	}
	link := regexp.MustCompile(`href="(/documents/[^"]+)"`).FindStringSubmatch(p.body)
	if link == nil {
		t.Fatalf("decided application page has no document link:\n%s", p.body)
	}
	// Another citizen learns nothing of it; anonymous visitors are sent to sign in.
	other := b.another()
	other.signIn(sample.WithoutAddress)
	if o := other.get(p.url); o.status != 404 {
		t.Errorf("another citizen's view of the application = %d; want 404", o.status)
	}
	if o := other.get(link[1]); o.status != 404 {
		t.Errorf("another citizen's view of the document = %d; want 404", o.status)
	}
	if o := b.another().get(p.url); o.url != "/login" {
		t.Errorf("anonymous view of the application landed on %s; want /login", o.url)
	}
	doc := b.get(link[1])
	if doc.status != 200 || !strings.Contains(doc.body, "<textarea") || !strings.Contains(doc.body, "Тіркелген мекенжайы") {
		t.Fatalf("document page = %d:\n%.2000s", doc.status, doc.body)
	}
	jws := regexp.MustCompile(`(?s)<textarea id="jws" readonly rows="6">(.*?)</textarea>`).FindStringSubmatch(doc.body)
	if jws == nil {
		t.Fatal("document page shows no JWS")
	}
	verify := b.get("/verify")
	vf := formValues(t, verify)
	vf.Set("jws", html.UnescapeString(jws[1]))
	if v := b.post("/verify", vf); !strings.Contains(v.body, "status-completed") {
		t.Errorf("verifying the genuine document failed:\n%.2000s", v.body)
	}
	vf.Set("jws", strings.Replace(html.UnescapeString(jws[1]), ".ey", ".ez", 1))
	if v := b.post("/verify", vf); !strings.Contains(v.body, "status-refused") {
		t.Errorf("a tampered document verified:\n%.2000s", v.body)
	}
}

// TestFieldErrorShownNextToField: a missing answer is named next to its
// field, in the visitor's language, and the applicant stays the signed-in
// citizen whatever IIN the form posts.
func TestFieldErrorShownNextToField(t *testing.T) {
	t.Parallel()
	b, sample := newBrowser(t)
	b.get("/lang/ru?next=/")
	form := formValues(t, b.signIn(sample.WithAddress))
	form.Set("iin", "900101300018")
	p := b.post("/apply/lost-identity-document", form)
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, `aria-invalid="true"`) ||
		!strings.Contains(p.body, `value="`+sample.WithAddress.String()+`" readonly`) || strings.Contains(p.body, "900101300018") {
		t.Errorf("missing fields: %d, want 422 with errors next to the fields and the citizen's own IIN:\n%.3000s", p.status, p.body)
	}
}

// TestSignInFailuresAndSignOut: a wrong password is refused without saying
// whether the account exists, a wrong code is named next to its field, and
// signing out ends the session.
func TestSignInFailuresAndSignOut(t *testing.T) {
	t.Parallel()
	b, sample := newBrowser(t)
	b.account(sample.WithAddress)
	b.get("/lang/en?next=/")
	for _, subject := range []string{sample.WithAddress.String(), sample.WithoutAddress.String()} {
		form := formValues(t, b.get("/login"))
		form.Set("subject", subject)
		form.Set("password", "wrong password")
		p := b.post("/login", form)
		if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "the IIN (or officer id) or the password is wrong") {
			t.Errorf("wrong password for %s: %d\n%.1500s", subject, p.status, p.body)
		}
	}
	form := formValues(t, b.get("/login"))
	form.Set("subject", "12")
	p := b.post("/login", form)
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, `id="subject-error"`) || !strings.Contains(p.body, `id="password-error"`) {
		t.Errorf("malformed sign-in: %d\n%.2000s", p.status, p.body)
	}
	form = formValues(t, b.get("/login"))
	form.Set("subject", sample.WithAddress.String())
	form.Set("password", password)
	step := b.post("/login", form)
	code := formValues(t, step)
	code.Set("challenge", html.UnescapeString(challenge.FindStringSubmatch(step.body)[1]))
	code.Set("code", "12345x")
	if p := b.post("/login/code", code); p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, `id="code-error"`) {
		t.Errorf("malformed code: %d\n%.2000s", p.status, p.body)
	}

	home := b.signIn(sample.WithAddress)
	out := b.post("/logout", formValues(t, home))
	if out.url != "/" || strings.Contains(out.body, `action="/logout"`) || !strings.Contains(out.body, `href="/login?next=/"`) {
		t.Errorf("after signing out: %s\n%.1500s", out.url, out.body)
	}
	if p := b.post("/logout", url.Values{}); p.status != http.StatusForbidden {
		t.Errorf("sign-out without the form token = %d; want 403", p.status)
	}
}

func TestLanguageSwitchChangesEveryText(t *testing.T) {
	t.Parallel()
	b, _ := newBrowser(t)
	kk := b.get("/")
	for _, tt := range []struct{ lang, title string }{
		{"ru", "Государственные услуги"}, {"en", "Public services"}, {"kk", "Мемлекеттік қызметтер"},
	} {
		p := b.get("/lang/" + tt.lang + "?next=/")
		if !strings.Contains(p.body, `<html lang="`+tt.lang+`">`) || !strings.Contains(p.body, "<h1>"+tt.title+"</h1>") {
			t.Errorf("after switching to %s:\n%.800s", tt.lang, p.body)
		}
		if tt.lang != "kk" && strings.Contains(p.body, "Өтініш беру") {
			t.Errorf("%s page still shows the Kazakh button text", tt.lang)
		}
	}
	_ = kk
}

func TestFormWithoutCSRFTokenRefused(t *testing.T) {
	t.Parallel()
	b, sample := newBrowser(t)
	b.get("/")
	p := b.post("/apply/address-certificate", url.Values{"iin": {sample.WithAddress.String()}})
	if p.status != http.StatusForbidden || !strings.Contains(p.body, "<html") {
		t.Errorf("POST without token = %d; want a 403 page:\n%.500s", p.status, p.body)
	}
}

func TestNoOpenRedirect(t *testing.T) {
	t.Parallel()
	b, _ := newBrowser(t)
	b.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, next := range []string{"//evil.example/", "https://evil.example/", `/\evil.example`} {
		res, err := b.client.Get(b.base + "/lang/en?next=" + url.QueryEscape(next))
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
	b.signIn(sample.WithAddress)
	p := b.get("/applications/not-a-uuid")
	if p.status != 404 || !strings.Contains(p.body, "<html") || strings.Contains(p.body, `"code"`) {
		t.Errorf("unknown application = %d:\n%.500s", p.status, p.body)
	}
}
