package app_test

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/apptest"
	"github.com/ortaq/ortaq/internal/cli"
	"github.com/ortaq/ortaq/services"
)

func yamlCall(t *testing.T, url, body string, headers ...string) response {
	t.Helper()
	return call(t, "POST", url, body, append([]string{"Content-Type", "application/yaml"}, headers...)...)
}

func TestPublishNewVersionGoesLive(t *testing.T) {
	t.Parallel()
	r := apptest.StartConfig(t, app.Config{Workers: 2, AdminToken: "s3cret-token"}, 100)
	src, err := fs.ReadFile(services.Files, "address-certificate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	url := r.Server.URL + "/api/v1/services"
	applicant := bearer(t, r, citizen(r.Sample.WithAddress))
	v1app := call(t, "POST", r.Server.URL+"/api/v1/applications",
		`{"service":"address-certificate","inputs":{"iin":"`+r.Sample.WithAddress.String()+`"}}`, append([]string{"Idempotency-Key", "before"}, applicant...)...)

	v2 := strings.Replace(strings.Replace(string(src), "version: 1", "version: 2", 1),
		"en: Certificate of registered address\n", "en: Certificate of registered address (v2)\n", 1)

	for _, tt := range []struct {
		name    string
		headers []string
		status  int
		code    string
	}{
		{"no token", nil, 401, "auth.unauthorized"},
		{"wrong token", []string{"Authorization", "Bearer guess"}, 401, "auth.unauthorized"},
		{"not bearer", []string{"Authorization", "s3cret-token"}, 401, "auth.unauthorized"},
	} {
		if res := yamlCall(t, url, v2, tt.headers...); res.status != tt.status || str(res.body["code"]) != tt.code {
			t.Errorf("%s: %d %s; want %d %s", tt.name, res.status, res.raw, tt.status, tt.code)
		}
	}
	auth := []string{"Authorization", "Bearer s3cret-token"}
	if res := call(t, "POST", url, v2, append([]string{"Content-Type", "application/json"}, auth...)...); res.status != 415 {
		t.Errorf("publishing JSON: %d; want 415", res.status)
	}
	bad := strings.Replace(v2, "expr: has(data.person.address)", "expr: has(data.person.adress)", 1)
	res := yamlCall(t, url, bad, auth...)
	problems, _ := res.body["details"].(map[string]any)["problems"].([]any)
	if res.status != 422 || str(res.body["code"]) != "service.invalid" || len(problems) != 1 {
		t.Fatalf("publishing a broken definition: %d %s; want 422 with one problem", res.status, res.raw)
	}
	if p, _ := problems[0].(map[string]any); !strings.Contains(str(p["message"]), "adress") {
		t.Errorf("the problem does not name the bad field: %v", p)
	}

	res = yamlCall(t, url, v2, auth...)
	if res.status != 201 || res.body["version"] != float64(2) {
		t.Fatalf("publish v2: %d %s", res.status, res.raw)
	}
	// The very next application runs on v2; the earlier one stays on v1.
	next := call(t, "POST", r.Server.URL+"/api/v1/applications",
		`{"service":"address-certificate","inputs":{"iin":"`+r.Sample.WithAddress.String()+`"}}`, append([]string{"Idempotency-Key", "after", "Accept-Language", "en"}, applicant...)...)
	if svc, _ := next.body["service"].(map[string]any); svc["version"] != float64(2) || svc["title"] != "Certificate of registered address (v2)" {
		t.Errorf("application after publishing runs on %v; want v2", next.body["service"])
	}
	before := waitDecided(t, r.Server.URL+v1app.header.Get("Location"), bearer(t, r, citizen(r.Sample.WithAddress))...)
	if svc, _ := before.body["service"].(map[string]any); svc["version"] != float64(1) || str(before.body["status"]) != "completed" {
		t.Errorf("the earlier application: %v %v; want completed on v1", svc, before.body["status"])
	}
	// Same version, other content: refused.
	changed := strings.Replace(v2, "(v2)", "(v2, changed)", 1)
	if res := yamlCall(t, url, changed, auth...); res.status != 409 || str(res.body["code"]) != "service.version_conflict" {
		t.Errorf("republishing v2 changed: %d %s; want 409", res.status, res.raw)
	}
	versions := call(t, "GET", url+"/address-certificate/versions", "")
	list, _ := versions.body["versions"].([]any)
	if len(list) != 2 {
		t.Fatalf("versions: %s", versions.raw)
	}
	if first, _ := list[0].(map[string]any); first["version"] != float64(2) || first["current"] != true {
		t.Errorf("newest version first and current: %v", first)
	}
}

func TestPublishSwitchedOffWithoutToken(t *testing.T) {
	t.Parallel()
	r := apptest.Start(t, 0, 10)
	res := yamlCall(t, r.Server.URL+"/api/v1/services", "id: x", "Authorization", "Bearer ")
	if res.status != 403 || str(res.body["code"]) != "auth.forbidden" {
		t.Errorf("publish on a node without a token: %d %s; want 403", res.status, res.raw)
	}
}

func TestServicePublishCommand(t *testing.T) {
	t.Parallel()
	r := apptest.StartConfig(t, app.Config{AdminToken: "cli-token"}, 10)
	var out, errOut strings.Builder
	code := cli.Main([]string{"service", "publish", "--url", r.Server.URL, "--admin-token", "cli-token", "../../services/address-certificate.yaml"}, &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), "published address-certificate v1") {
		t.Errorf("publish exited %d:\n%s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	code = cli.Main([]string{"service", "publish", "--url", r.Server.URL, "--admin-token", "cli-token", "../servicedef/testdata/bad-cost.yaml"}, &out, &errOut)
	if code != 1 || !strings.Contains(out.String(), "bad-cost.yaml:17:13: expr.cost") {
		t.Errorf("publishing a bad file exited %d:\n%s%s", code, out.String(), errOut.String())
	}
	code = cli.Main([]string{"service", "publish", "--url", r.Server.URL, "--admin-token", "wrong", "../../services/address-certificate.yaml"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "auth.unauthorized") {
		t.Errorf("publishing with a wrong token exited %d:\n%s", code, errOut.String())
	}
}
