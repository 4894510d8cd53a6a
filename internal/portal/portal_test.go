package portal_test

import (
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
	"github.com/ortaq/ortaq/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m, app.Schemas()...) }

type browser struct {
	t      *testing.T
	base   string
	client *http.Client
}

func newBrowser(t *testing.T) (*browser, demo.Result) {
	t.Helper()
	r := apptest.Start(t, 2, 200)
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: r.Server.URL, client: &http.Client{Jar: jar}}, r.Sample
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
	form := formValues(t, home)
	form.Set("iin", sample.WithAddress.String())
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

func TestInvalidIINShownNextToField(t *testing.T) {
	t.Parallel()
	b, _ := newBrowser(t)
	b.get("/lang/ru?next=/")
	form := formValues(t, b.get("/"))
	form.Set("iin", "900101300018")
	p := b.post("/apply/address-certificate", form)
	if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, `aria-invalid="true"`) ||
		!strings.Contains(p.body, "контрольная цифра") || !strings.Contains(p.body, `value="900101300018"`) {
		t.Errorf("invalid IIN: %d, want 422 with a Russian error next to the kept value:\n%.3000s", p.status, p.body)
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
	b, _ := newBrowser(t)
	p := b.get("/applications/not-a-uuid")
	if p.status != 404 || !strings.Contains(p.body, "<html") || strings.Contains(p.body, `"code"`) {
		t.Errorf("unknown application = %d:\n%.500s", p.status, p.body)
	}
}
