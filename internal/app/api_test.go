package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/apptest"
	"github.com/ortaq/ortaq/internal/demo"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m, app.Schemas()...) }

func platform(t *testing.T) (*httptest.Server, demo.Result) {
	t.Helper()
	r := apptest.Start(t, 4, 300)
	return r.Server, r.Sample
}

// bearer issues an access token for p and returns its header.
func bearer(t *testing.T, r *apptest.Running, p identity.Principal) []string {
	t.Helper()
	tok, _, err := r.Tokens.Issue(context.Background(), p, time.Hour, "test")
	if err != nil {
		t.Fatal(err)
	}
	return []string{"Authorization", "Bearer " + tok}
}

func citizen(iin fmt.Stringer) identity.Principal {
	return identity.Principal{Kind: identity.Citizen, Subject: iin.String()}
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func call(t *testing.T, method, url, body string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := response{status: res.StatusCode, header: res.Header, raw: string(b)}
	_ = json.Unmarshal(b, &r.body)
	return r
}

func str(v any) string { s, _ := v.(string); return s }

// waitDecided polls an application until it is decided, as the caller of
// headers (the applicant's token).
func waitDecided(t *testing.T, url string, headers ...string) response {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		r := call(t, "GET", url, "", headers...)
		if r.status != 200 {
			t.Fatalf("GET %s = %d %s", url, r.status, r.raw)
		}
		if str(r.body["status"]) != "submitted" {
			return r
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%s not decided within 30s", url)
		}
	}
}

func TestApplyGetVerifyTamper(t *testing.T) {
	t.Parallel()
	run := apptest.Start(t, 4, 300)
	srv, sample := run.Server, run.Sample
	owner := bearer(t, run, citizen(sample.WithAddress))
	body := `{"service":"address-certificate","inputs":{"iin":"` + sample.WithAddress.String() + `"}}`
	anonymous := call(t, "POST", srv.URL+"/api/v1/applications", body, "Idempotency-Key", "demo-0")
	other := call(t, "POST", srv.URL+"/api/v1/applications", body, append([]string{"Idempotency-Key", "demo-0"}, bearer(t, run, citizen(sample.WithoutAddress))...)...)
	if anonymous.status != 401 || other.status != 403 {
		t.Fatalf("applying anonymously = %d, for someone else = %d; want 401 and 403", anonymous.status, other.status)
	}
	r := call(t, "POST", srv.URL+"/api/v1/applications", body, append([]string{"Idempotency-Key", "demo-1", "Accept-Language", "ru"}, owner...)...)
	if r.status != http.StatusAccepted {
		t.Fatalf("submit = %d %s; want 202", r.status, r.raw)
	}
	loc := r.header.Get("Location")
	if loc == "" || str(r.body["status"]) != "submitted" {
		t.Fatalf("submit answered Location %q status %v", loc, r.body["status"])
	}
	again := call(t, "POST", srv.URL+"/api/v1/applications", body, append([]string{"Idempotency-Key", "demo-1"}, owner...)...)
	if again.status != http.StatusAccepted || again.header.Get("Idempotent-Replayed") != "true" || again.body["id"] != r.body["id"] {
		t.Errorf("retry with the same key = %d %v; want the same application, replayed", again.status, again.body["id"])
	}

	if r := call(t, "GET", srv.URL+loc, ""); r.status != 401 {
		t.Errorf("anonymous GET of an application = %d; want 401", r.status)
	}
	app := waitDecided(t, srv.URL+loc, owner...)
	if str(app.body["status"]) != "completed" {
		t.Fatalf("application = %s; want completed", app.raw)
	}
	timeline, _ := app.body["timeline"].([]any)
	if len(timeline) < 4 {
		t.Errorf("timeline has %d steps; want at least 4", len(timeline))
	}
	doc := call(t, "GET", srv.URL+"/api/v1/documents/"+str(app.body["document_id"]), "", owner...)
	if doc.status != 200 || str(doc.body["jws"]) == "" {
		t.Fatalf("document = %d %s", doc.status, doc.raw)
	}
	jws := str(doc.body["jws"])
	v := call(t, "POST", srv.URL+"/api/v1/documents/verify", `{"jws":"`+jws+`"}`)
	if v.status != 200 || v.body["valid"] != true || v.body["registered"] != true {
		t.Fatalf("verify(genuine) = %d %s; want valid and registered", v.status, v.raw)
	}

	// Tamper: change one character of the payload.
	parts := strings.Split(jws, ".")
	p := []byte(parts[1])
	p[len(p)/2] ^= 0x01
	if p[len(p)/2] == '.' || p[len(p)/2] == '=' {
		p[len(p)/2] = 'A'
	}
	tampered := parts[0] + "." + string(p) + "." + parts[2]
	v = call(t, "POST", srv.URL+"/api/v1/documents/verify", `{"jws":"`+tampered+`"}`)
	if v.status != 200 || v.body["valid"] != false {
		t.Fatalf("verify(tampered) = %d %s; want valid=false", v.status, v.raw)
	}
	if c := str(v.body["code"]); c != "document.signature_invalid" && c != "document.malformed" {
		t.Errorf("verify(tampered) code = %q", c)
	}
	keys := call(t, "GET", srv.URL+"/api/v1/keys", "")
	if ks, _ := keys.body["keys"].([]any); keys.status != 200 || len(ks) == 0 {
		t.Errorf("keys = %d %s", keys.status, keys.raw)
	}
}

func TestInvalidIINIsAFieldError(t *testing.T) {
	t.Parallel()
	run := apptest.Start(t, 4, 300)
	srv := run.Server
	signedIn := bearer(t, run, citizen(run.Sample.WithAddress))
	for i, iin := range []string{"900101300018", "12345", "abcdefghijkl", "", "９００１０１３０００１７", "<script>"} {
		r := call(t, "POST", srv.URL+"/api/v1/applications", `{"service":"address-certificate","inputs":{"iin":"`+iin+`"}}`, append([]string{"Idempotency-Key", fmt.Sprint("k-", i)}, signedIn...)...)
		fields, _ := r.body["fields"].([]any)
		if r.status != 422 || str(r.body["code"]) != "request.validation" || len(fields) != 1 {
			t.Errorf("iin %q: %d %s; want 422 request.validation with one field", iin, r.status, r.raw)
			continue
		}
		f, _ := fields[0].(map[string]any)
		if str(f["path"]) != "/inputs/iin" || !strings.HasPrefix(str(f["code"]), "iin.") || str(f["message"]) == "" {
			t.Errorf("iin %q: field error %v; want /inputs/iin iin.* with a message", iin, f)
		}
	}
}

func TestBadRequestsNever500(t *testing.T) {
	t.Parallel()
	run := apptest.Start(t, 4, 300)
	srv, sample := run.Server, run.Sample
	signedIn := bearer(t, run, citizen(sample.WithAddress))
	valid := `{"service":"address-certificate","inputs":{"iin":"` + sample.WithAddress.String() + `"}}`
	for _, tt := range []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		code                     string
	}{
		{"anonymous", "POST", "/api/v1/applications", valid, []string{"Idempotency-Key", "a"}, 401, "auth.unauthorized"},
		{"no key", "POST", "/api/v1/applications", valid, signedIn, 400, "idempotency.key_missing"},
		{"bad key", "POST", "/api/v1/applications", valid, append([]string{"Idempotency-Key", strings.Repeat("k", 201)}, signedIn...), 400, "idempotency.key_invalid"},
		{"not json", "POST", "/api/v1/applications", `{"service":`, append([]string{"Idempotency-Key", "a"}, signedIn...), 400, "request.invalid_json"},
		{"array", "POST", "/api/v1/applications", `[]`, append([]string{"Idempotency-Key", "a"}, signedIn...), 422, "request.validation"},
		{"unknown field", "POST", "/api/v1/applications", `{"service":"address-certificate","inputs":{"iin":"1","x":1}}`, append([]string{"Idempotency-Key", "a"}, signedIn...), 422, "request.validation"},
		{"iin as number", "POST", "/api/v1/applications", `{"service":"address-certificate","inputs":{"iin":900101300017}}`, append([]string{"Idempotency-Key", "a"}, signedIn...), 422, "request.validation"},
		{"no service", "POST", "/api/v1/applications", `{"inputs":{"iin":"` + sample.WithAddress.String() + `"}}`, append([]string{"Idempotency-Key", "a"}, signedIn...), 422, "request.validation"},
		{"unknown service", "POST", "/api/v1/applications", `{"service":"nope","inputs":{"iin":"` + sample.WithAddress.String() + `"}}`, append([]string{"Idempotency-Key", "a"}, signedIn...), 404, "service.not_found"},
		{"someone else's IIN", "POST", "/api/v1/applications", `{"service":"address-certificate","inputs":{"iin":"900101300017"}}`, append([]string{"Idempotency-Key", "a"}, signedIn...), 403, "auth.forbidden"},
		// Anonymous readers are refused before any lookup (the authorisation
		// matrix covers the signed-in ones).
		{"application not uuid", "GET", "/api/v1/applications/123", "", nil, 401, "auth.unauthorized"},
		{"application unknown", "GET", "/api/v1/applications/0190f7b4-0000-7000-8000-000000000000", "", nil, 401, "auth.unauthorized"},
		{"document not uuid", "GET", "/api/v1/documents/../../etc", "", nil, 404, ""},
		{"verify garbage", "POST", "/api/v1/documents/verify", `{"jws":"a.b.c"}`, nil, 200, ""},
		{"verify empty", "POST", "/api/v1/documents/verify", `{"jws":""}`, nil, 422, "request.validation"},
		{"service unknown", "GET", "/api/v1/services/nope", "", nil, 404, "service.not_found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, tt.method, srv.URL+tt.path, tt.body, tt.headers...)
			if r.status != tt.status || (tt.code != "" && str(r.body["code"]) != tt.code) {
				t.Errorf("%s %s = %d %s; want %d %s", tt.method, tt.path, r.status, r.raw, tt.status, tt.code)
			}
		})
	}
}

func TestCatalogueInEveryLanguage(t *testing.T) {
	t.Parallel()
	srv, _ := platform(t)
	titles := map[string]string{}
	for _, lang := range []string{"kk", "ru", "en"} {
		r := call(t, "GET", srv.URL+"/api/v1/services", "", "Accept-Language", lang)
		services, _ := r.body["services"].([]any)
		var s map[string]any
		for _, x := range services {
			if m, _ := x.(map[string]any); m["id"] == "address-certificate" {
				s = m
			}
		}
		if r.status != 200 || s == nil {
			t.Fatalf("services in %s = %d %s", lang, r.status, r.raw)
		}
		titles[lang] = str(s["title"])
		if s["target_duration"] != "PT5M" || str(s["language"]) != lang {
			t.Errorf("service in %s: %v", lang, s)
		}
	}
	if titles["kk"] == titles["ru"] || titles["ru"] == titles["en"] {
		t.Errorf("titles do not change with the language: %v", titles)
	}
}

// TestOpenAPIDescribesEveryRoute fails when a route is mounted without being
// documented, or documented without being mounted.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	db := pgtest.New(t)
	p, err := app.Build(app.Config{}, db.Pool, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(raw, &spec); err != nil || !strings.HasPrefix(spec.OpenAPI, "3.1") {
		t.Fatalf("openapi.json: %v (version %q)", err, spec.OpenAPI)
	}
	var documented []string
	for path, ops := range spec.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	var mounted []string
	for _, r := range p.Web.Routes() {
		method, path, _ := strings.Cut(r, " ")
		if strings.HasPrefix(path, "/api/") || path == "/healthz" || path == "/readyz" || path == "/metrics" {
			mounted = append(mounted, method+" "+path)
		}
	}
	slices.Sort(documented)
	slices.Sort(mounted)
	if !slices.Equal(documented, mounted) {
		t.Errorf("OpenAPI and routes differ:\n documented %v\n mounted    %v", documented, mounted)
	}
}

// TestPersonalDataReadsAreAudited: the registry read behind a certificate and
// every read of the document leave an audit event naming the person.
func TestPersonalDataReadsAreAudited(t *testing.T) {
	t.Parallel()
	r := apptest.Start(t, 2, 100)
	body := `{"service":"address-certificate","inputs":{"iin":"` + r.Sample.WithAddress.String() + `"}}`
	owner := bearer(t, r, citizen(r.Sample.WithAddress))
	sub := call(t, "POST", r.Server.URL+"/api/v1/applications", body, append([]string{"Idempotency-Key", "audit-1"}, owner...)...)
	app := waitDecided(t, r.Server.URL+sub.header.Get("Location"), owner...)
	for range 2 {
		call(t, "GET", r.Server.URL+"/api/v1/documents/"+str(app.body["document_id"]), "", append([]string{"X-Request-Id", "audit-req"}, owner...)...)
	}
	rows, err := r.DB.Pool.Query(context.Background(), `SELECT action, request_id FROM audit_event WHERE subject_iin = $1 AND action <> 'identity.token.issued' ORDER BY id`, r.Sample.WithAddress.String())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var action, req string
		rows.Scan(&action, &req)
		got = append(got, action+"/"+req)
	}
	if want := "[registry.population.read/ registry.addresses.read/ document.read/audit-req document.read/audit-req]"; fmt.Sprint(got) != want {
		t.Errorf("audit trail = %v; want %s", got, want)
	}
	if _, err := r.DB.Pool.Exec(context.Background(), `DELETE FROM audit_event`); err == nil {
		t.Errorf("the audit trail accepted a DELETE")
	}
}
