package exchange_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/exchange"
	"github.com/ortaq/ortaq/internal/exchange/catalogue"
	"github.com/ortaq/ortaq/internal/exchange/xroad"
	"github.com/ortaq/ortaq/internal/pgtest"
	"github.com/ortaq/ortaq/internal/web"
)

func TestMain(m *testing.M) { pgtest.Main(m, audit.Schema(), exchange.Schema()) }

const token = "admin-secret"

type reply struct {
	status int
	raw    []byte
	err    web.ErrorBody
}

func (r reply) fields() string {
	var out []string
	for _, f := range r.err.Fields {
		out = append(out, f.Path+" "+string(f.Code))
	}
	return strings.Join(out, ",")
}

func setup(t *testing.T) (http.Handler, *exchange.Authority) {
	db := pgtest.New(t)
	a := exchange.New(db.Pool, clock.Real{}, "KZ")
	s := web.New(web.Config{Logger: slog.New(slog.DiscardHandler)})
	a.Routes(s, token)
	return s.Handler(), a
}

func do(t *testing.T, h http.Handler, method, path string, body any, auth bool) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept-Language", "en")
	if auth {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	r := reply{status: rec.Code, raw: rec.Body.Bytes()}
	_ = json.Unmarshal(r.raw, &r.err)
	return r
}

func TestCentralAuthority(t *testing.T) {
	h, a := setup(t)
	for _, tc := range []struct {
		name, path string
		body       any
		auth       bool
		status     int
		code       string
		fields     string
	}{
		{"no token", "/api/v1/exchange/members", map[string]any{"class": "GOV", "code": "1", "name": "x"}, false, 401, "auth.unauthorized", ""},
		{"bad class", "/api/v1/exchange/members", map[string]any{"class": "XXX", "code": "1", "name": "x"}, true, 422, "request.validation", "/class one_of"},
		{"bad code", "/api/v1/exchange/members", map[string]any{"class": "GOV", "code": "a/b", "name": "x"}, true, 422, "request.validation", "/code format"},
		{"member", "/api/v1/exchange/members", map[string]any{"class": "GOV", "code": "100", "name": "Ministry"}, true, 201, "", ""},
		{"member again", "/api/v1/exchange/members", map[string]any{"class": "GOV", "code": "100", "name": "Ministry"}, true, 409, "exchange.conflict", ""},
		{"subsystem of nobody", "/api/v1/exchange/subsystems", map[string]any{"id": "KZ/GOV/999/sys", "name": "x"}, true, 404, "exchange.member_not_found", ""},
		{"subsystem other instance", "/api/v1/exchange/subsystems", map[string]any{"id": "EE/GOV/100/sys", "name": "x"}, true, 422, "request.validation", "/id one_of"},
		{"subsystem without subsystem", "/api/v1/exchange/subsystems", map[string]any{"id": "KZ/GOV/100", "name": "x"}, true, 422, "request.validation", "/id format"},
		{"subsystem", "/api/v1/exchange/subsystems", map[string]any{"id": "KZ/GOV/100/sys", "name": "System"}, true, 201, "", ""},
		{"service bad openapi field", "/api/v1/exchange/services", map[string]any{"id": "KZ/GOV/100/sys/persons", "title": "P"}, true, 422, "request.validation", "/url required"},
		{"service", "/api/v1/exchange/services", map[string]any{"id": "KZ/GOV/100/sys/persons", "title": "P", "url": "http://x", "openapi": map[string]any{"openapi": "3.0.0"}}, true, 200, "", ""},
		{"access to unknown service", "/api/v1/exchange/access", map[string]any{"client": "KZ/GOV/100/sys", "service": "KZ/GOV/100/sys/none"}, true, 404, "exchange.service_not_found", ""},
		{"access", "/api/v1/exchange/access", map[string]any{"client": "KZ/GOV/100/sys", "service": "KZ/GOV/100/sys/persons", "method": "GET"}, true, 201, "", ""},
		{"unknown field", "/api/v1/exchange/access", map[string]any{"client": "KZ/GOV/100/sys", "x": 1}, true, 422, "request.validation", "/x unknown_field"},
		{"token for nobody", "/api/v1/exchange/enrolment-tokens", map[string]any{"member": "KZ/GOV/1"}, true, 404, "exchange.member_not_found", ""},
		{"enrol with a bad token", "/api/v1/exchange/enrol", map[string]any{"token": "oqe_nope", "csr": csr(t), "address": "127.0.0.1:1"}, false, 403, "exchange.enrolment_invalid", ""},
		{"enrol without csr", "/api/v1/exchange/enrol", map[string]any{"token": "oqe_nope", "address": "127.0.0.1:1"}, false, 422, "request.validation", "/csr format"},
		{"revoke unknown", "/api/v1/exchange/certificates/abcd/revoke", nil, true, 404, "exchange.certificate_not_found", ""},
	} {
		r := do(t, h, "POST", tc.path, tc.body, tc.auth)
		if r.status != tc.status || string(r.err.Code) != tc.code || r.fields() != tc.fields {
			t.Errorf("%s: %d %s [%s], want %d %s [%s]: %s", tc.name, r.status, r.err.Code, r.fields(), tc.status, tc.code, tc.fields, r.raw)
		}
	}

	// Enrolment spends the token once.
	r := do(t, h, "POST", "/api/v1/exchange/enrolment-tokens", map[string]any{"member": "KZ/GOV/100"}, true)
	var tok struct{ Token string }
	json.Unmarshal(r.raw, &tok)
	if r.status != 201 || !strings.HasPrefix(tok.Token, "oqe_") {
		t.Fatalf("token: %d %s", r.status, r.raw)
	}
	r = do(t, h, "POST", "/api/v1/exchange/enrol", map[string]any{"token": tok.Token, "csr": csr(t), "address": "127.0.0.1:9"}, false)
	var e exchange.Enrolment
	json.Unmarshal(r.raw, &e)
	if r.status != 201 || e.Member != "KZ/GOV/100" {
		t.Fatalf("enrol: %d %s", r.status, r.raw)
	}
	cert, err := x509.ParseCertificate(e.Certificate)
	ca, _ := x509.ParseCertificate(e.CA)
	if err != nil || cert.CheckSignatureFrom(ca) != nil || cert.Subject.CommonName != "KZ/GOV/100" {
		t.Fatalf("certificate: %v", err)
	}
	if r := do(t, h, "POST", "/api/v1/exchange/enrol", map[string]any{"token": tok.Token, "csr": csr(t), "address": "127.0.0.1:9"}, false); r.status != 403 {
		t.Fatalf("token spent twice: %d", r.status)
	}
	if r := do(t, h, "POST", "/api/v1/exchange/certificates/"+e.Serial+"/revoke", nil, true); r.status != 204 {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}

	// The catalogue verifies with the CA and says it all.
	r = do(t, h, "GET", "/api/v1/exchange/catalogue", nil, false)
	var env catalogue.Envelope
	json.Unmarshal(r.raw, &env)
	c, err := catalogue.Verify(env, ca)
	if err != nil {
		t.Fatal(err)
	}
	client, _ := xroad.ParseSubsystem("KZ/GOV/100/sys")
	svc, _ := xroad.ParseService("KZ/GOV/100/sys/persons")
	if !c.Allowed(client, svc, "GET", "/x") || c.Allowed(client, svc, "POST", "/x") || len(c.Gateways) != 1 || !c.IsRevoked(e.Serial) {
		t.Fatalf("catalogue: %+v", c)
	}
	if s, _ := c.Service(svc); !strings.Contains(string(s.OpenAPI), "3.0.0") {
		t.Fatalf("openapi lost: %s", s.OpenAPI)
	}
	// The time-stamping service signs a digest with the centre's time.
	if r := do(t, h, "POST", "/api/v1/exchange/timestamp", map[string]any{"digest": []byte("short")}, false); r.status != 422 || r.fields() != "/digest format" {
		t.Fatalf("short digest: %d %s", r.status, r.raw)
	}
	digest := make([]byte, 32)
	r = do(t, h, "POST", "/api/v1/exchange/timestamp", map[string]any{"digest": digest}, false)
	var ts exchange.TimestampReply
	json.Unmarshal(r.raw, &ts)
	if r.status != 200 || !catalogue.VerifyTimestamp(ca, digest, ts.AtMicros, ts.Signature) || catalogue.VerifyTimestamp(ca, digest, ts.AtMicros+1, ts.Signature) {
		t.Fatalf("timestamp: %d %s", r.status, r.raw)
	}

	// Withdrawn access is gone from the next snapshot.
	if r := do(t, h, "DELETE", "/api/v1/exchange/access", map[string]any{"client": "KZ/GOV/100/sys", "service": "KZ/GOV/100/sys/persons", "method": "GET"}, true); r.status != 204 {
		t.Fatalf("withdraw: %d %s", r.status, r.raw)
	}
	c2, _ := a.Snapshot(t.Context())
	if c2.Allowed(client, svc, "GET", "/x") {
		t.Fatal("withdrawn access still in the catalogue")
	}
}

func csr(t *testing.T) []byte {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "g"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
