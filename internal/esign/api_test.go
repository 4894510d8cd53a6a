package esign_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/esign"
	"github.com/ortaq/ortaq/internal/pgtest"
	"github.com/ortaq/ortaq/internal/web"
)

const token = "test-admin-token"

type reply struct {
	status int
	body   map[string]any
	err    web.ErrorBody
}

func do(t *testing.T, h http.Handler, method, path, body string, headers ...string) reply {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	r := reply{status: rec.Code}
	_ = json.Unmarshal(b, &r.body)
	_ = json.Unmarshal(b, &r.err)
	return r
}

// TestTrustAPIAuth: every route needs the administrative token; without
// one configured, the routes are switched off.
func TestTrustAPIAuth(t *testing.T) {
	t.Parallel()
	f := keys(t)
	pool := pgtest.New(t).Pool
	for _, tt := range []struct {
		adminToken, auth string
		want             int
	}{
		{token, "", http.StatusUnauthorized},
		{token, "Bearer wrong", http.StatusUnauthorized},
		{"", "", http.StatusForbidden},
		{"", "Bearer ", http.StatusForbidden},
	} {
		s := web.New(web.Config{Logger: slog.New(slog.DiscardHandler)})
		esign.NewVerifier(pool, clock.Real{}).Routes(s, tt.adminToken)
		h := s.Handler()
		root := `{"certificate":"` + base64.StdEncoding.EncodeToString(f.root.Cert.Raw) + `"}`
		for _, c := range []struct{ method, path, body string }{
			{"GET", "/api/v1/esign/roots", ""},
			{"POST", "/api/v1/esign/roots", root},
			{"DELETE", "/api/v1/esign/roots/1", ""},
			{"POST", "/api/v1/esign/revocations", `{"issuer":"CN=x","serial":"01"}`},
		} {
			var hdr []string
			if tt.auth != "" {
				hdr = []string{"Authorization", tt.auth}
			}
			if r := do(t, h, c.method, c.path, c.body, hdr...); r.status != tt.want {
				t.Errorf("token %q, %q: %s %s = %d %v; want %d", tt.adminToken, tt.auth, c.method, c.path, r.status, r.body, tt.want)
			}
		}
	}
	roots, err := esign.NewVerifier(pool, clock.Real{}).Roots(context.Background())
	if err != nil || len(roots) != 0 {
		t.Errorf("roots after refused calls: %v %v", roots, err)
	}
}

func TestTrustAPI(t *testing.T) {
	t.Parallel()
	f := keys(t)
	db := pgtest.New(t)
	v := esign.NewVerifier(db.Pool, clock.Real{})
	s := web.New(web.Config{Logger: slog.New(slog.DiscardHandler)})
	v.Routes(s, token)
	h := s.Handler()
	auth := []string{"Authorization", "Bearer " + token, "Accept-Language", "en"}
	ctx := context.Background()
	sig := sign(t, f.ecdsa, statement, esign.FormatCMS)

	r := do(t, h, "POST", "/api/v1/esign/roots", `{"certificate":"`+base64.StdEncoding.EncodeToString(f.root.Cert.Raw)+`"}`, auth...)
	if r.status != http.StatusCreated || r.body["subject"] != f.root.Cert.Subject.String() || r.body["active"] != true {
		t.Fatalf("POST root: %d %v", r.status, r.body)
	}
	id := int64(r.body["id"].(float64))
	if _, err := v.Verify(ctx, statement, sig, time.Time{}); err != nil {
		t.Fatalf("after POST root: %v", err)
	}
	r = do(t, h, "GET", "/api/v1/esign/roots", "", auth...)
	if roots, _ := r.body["roots"].([]any); r.status != http.StatusOK || len(roots) != 1 {
		t.Fatalf("GET roots: %d %v", r.status, r.body)
	}

	// Refusals name the field.
	for _, c := range []struct{ body, field string }{
		{`{}`, "/certificate required"},
		{`{"certificate":"AAAA"}`, "/certificate format"},
		{`{"certificate":"` + base64.StdEncoding.EncodeToString(f.ecdsa.Cert.Raw) + `"}`, "/certificate one_of"},
	} {
		r = do(t, h, "POST", "/api/v1/esign/roots", c.body, auth...)
		if r.status != http.StatusUnprocessableEntity || len(r.err.Fields) != 1 || r.err.Fields[0].Path+" "+string(r.err.Fields[0].Code) != c.field {
			t.Errorf("POST root %s: %d %+v; want 422 %s", c.body, r.status, r.err, c.field)
		}
	}
	r = do(t, h, "POST", "/api/v1/esign/revocations", `{"issuer":"","serial":"zz"}`, auth...)
	if r.status != http.StatusUnprocessableEntity || len(r.err.Fields) != 2 {
		t.Errorf("POST bad revocation: %d %+v", r.status, r.err)
	}

	// Revoke by the certificate itself.
	r = do(t, h, "POST", "/api/v1/esign/revocations",
		`{"certificate":"`+base64.StdEncoding.EncodeToString(f.ecdsa.Cert.Raw)+`","reason":"key compromise"}`, auth...)
	if r.status != http.StatusCreated || r.body["serial"] != f.ecdsa.Cert.SerialNumber.Text(16) {
		t.Fatalf("POST revocation: %d %v", r.status, r.body)
	}
	if _, err := v.Verify(ctx, statement, sig, time.Time{}); !hasCode(err, apierr.SignatureCertRevoked) {
		t.Fatalf("after revoking: %v", err)
	}

	r = do(t, h, "DELETE", "/api/v1/esign/roots/"+strconv.FormatInt(id, 10), "", auth...)
	if r.status != http.StatusNoContent {
		t.Fatalf("DELETE root: %d %v", r.status, r.body)
	}
	r = do(t, h, "DELETE", "/api/v1/esign/roots/"+strconv.FormatInt(id, 10), "", auth...)
	if r.status != http.StatusNotFound || r.err.Code != apierr.TrustRootNotFound {
		t.Fatalf("DELETE again: %d %v", r.status, r.body)
	}
	r = do(t, h, "DELETE", "/api/v1/esign/roots/x", "", auth...)
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("DELETE bad id: %d %v", r.status, r.body)
	}
	sig = sign(t, f.rsa, statement, esign.FormatRaw)
	if _, err := v.Verify(ctx, statement, sig, time.Time{}); !hasCode(err, apierr.SignatureCertUntrusted) {
		t.Fatalf("after DELETE root: %v", err)
	}

	// Each edit is audited.
	var actions []string
	rows, err := db.Pool.Query(ctx, `SELECT action FROM audit_event WHERE actor = 'admin:api-token' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			t.Fatal(err)
		}
		actions = append(actions, a)
	}
	if got := strings.Join(actions, ","); got != "esign.root.added,esign.certificate.revoked,esign.root.removed" {
		t.Errorf("audit actions: %s", got)
	}
}
