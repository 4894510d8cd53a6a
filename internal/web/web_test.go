package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/i18n"
)

func newTestServer(t *testing.T) (*Server, *strings.Builder) {
	t.Helper()
	var logs strings.Builder
	s := New(Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	s.HandleFunc("GET /api/v1/boom", func(w http.ResponseWriter, r *http.Request) error {
		return errors.New(`pq: relation "secret_table" does not exist`)
	})
	s.HandleFunc("GET /api/v1/panic", func(w http.ResponseWriter, r *http.Request) error {
		panic("secret panic text")
	})
	s.HandleFunc("POST /api/v1/echo", func(w http.ResponseWriter, r *http.Request) error {
		var body struct {
			Name string `json:"name"`
			Age  int    `json:"age"`
		}
		if err := DecodeJSON(w, r, &body); err != nil {
			return err
		}
		WriteJSON(w, http.StatusOK, body)
		return nil
	})
	return s, &logs
}

func do(t *testing.T, h http.Handler, method, path, body string, headers ...string) (*http.Response, ErrorBody) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	var eb ErrorBody
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &eb)
	return res, eb
}

func TestErrorsAreJSONWithCodeAndRequestID(t *testing.T) {
	s, logs := newTestServer(t)
	h := s.Handler()
	tests := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		code                     apierr.Code
	}{
		{"unknown route", "GET", "/api/v1/nothing", "", nil, 404, apierr.RouteNotFound},
		{"wrong method", "DELETE", "/api/v1/boom", "", nil, 405, apierr.MethodNotAllowed},
		{"internal error", "GET", "/api/v1/boom", "", nil, 500, apierr.Internal},
		{"panic", "GET", "/api/v1/panic", "", nil, 500, apierr.Internal},
		{"no content type", "POST", "/api/v1/echo", `{}`, nil, 415, apierr.UnsupportedMedia},
		{"bad json", "POST", "/api/v1/echo", `{"name":`, []string{"Content-Type", "application/json"}, 400, apierr.InvalidJSON},
		{"two objects", "POST", "/api/v1/echo", `{} {}`, []string{"Content-Type", "application/json"}, 400, apierr.InvalidJSON},
		{"unknown field", "POST", "/api/v1/echo", `{"nme":"x"}`, []string{"Content-Type", "application/json"}, 422, apierr.Validation},
		{"wrong type", "POST", "/api/v1/echo", `{"age":"old"}`, []string{"Content-Type", "application/json"}, 422, apierr.Validation},
		{"too large", "POST", "/api/v1/echo", `{"name":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, []string{"Content-Type", "application/json"}, 413, apierr.BodyTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := do(t, h, tt.method, tt.path, tt.body, tt.headers...)
			if res.StatusCode != tt.status || body.Code != tt.code {
				t.Fatalf("%s %s = %d %q; want %d %q", tt.method, tt.path, res.StatusCode, body.Code, tt.status, tt.code)
			}
			if body.RequestID == "" || body.RequestID != res.Header.Get("X-Request-Id") {
				t.Errorf("request_id %q does not match header %q", body.RequestID, res.Header.Get("X-Request-Id"))
			}
			if body.Message == "" {
				t.Errorf("empty message")
			}
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q; want JSON", ct)
			}
		})
	}
	raw := httptest.NewRecorder()
	h.ServeHTTP(raw, httptest.NewRequest("GET", "/api/v1/boom", nil))
	if strings.Contains(raw.Body.String(), "secret_table") {
		t.Errorf("internal error text reached the client: %s", raw.Body)
	}
	if !strings.Contains(logs.String(), "secret_table") || !strings.Contains(logs.String(), "secret panic text") {
		t.Errorf("internal causes were not logged for operators")
	}
}

func TestFieldErrorsNameTheField(t *testing.T) {
	s, _ := newTestServer(t)
	_, body := do(t, s.Handler(), "POST", "/api/v1/echo", `{"age":"old"}`, "Content-Type", "application/json")
	if len(body.Fields) != 1 || body.Fields[0].Path != "/age" || body.Fields[0].Code != apierr.FieldType {
		t.Fatalf("fields = %+v; want one /age type error", body.Fields)
	}
	_, body = do(t, s.Handler(), "POST", "/api/v1/echo", `{"nme":"x"}`, "Content-Type", "application/json")
	if len(body.Fields) != 1 || body.Fields[0].Path != "/nme" || body.Fields[0].Code != apierr.FieldUnknown {
		t.Fatalf("fields = %+v; want one /nme unknown_field error", body.Fields)
	}
}

func TestLanguageOfErrors(t *testing.T) {
	s, _ := newTestServer(t)
	h := s.Handler()
	for _, tt := range []struct {
		accept string
		want   i18n.Lang
	}{{"", i18n.KK}, {"ru-RU,ru;q=0.9", i18n.RU}, {"en", i18n.EN}} {
		res, body := do(t, h, "GET", "/api/v1/nothing", "", "Accept-Language", tt.accept)
		if res.Header.Get("Content-Language") != string(tt.want) || body.Message != i18n.T(tt.want, "error.route.not_found") {
			t.Errorf("Accept-Language %q: got %s %q", tt.accept, res.Header.Get("Content-Language"), body.Message)
		}
	}
}

func TestRequestID(t *testing.T) {
	s, _ := newTestServer(t)
	h := s.Handler()
	res, _ := do(t, h, "GET", "/healthz", "", "X-Request-Id", "abc-123")
	if got := res.Header.Get("X-Request-Id"); got != "abc-123" {
		t.Errorf("a sane incoming id should be kept; got %q", got)
	}
	res, _ = do(t, h, "GET", "/healthz", "", "X-Request-Id", "evil\"id with spaces")
	if got := res.Header.Get("X-Request-Id"); got == "" || strings.ContainsAny(got, "\" ") {
		t.Errorf("an unsafe incoming id must be replaced; got %q", got)
	}
}

func TestSecurityHeaders(t *testing.T) {
	s, _ := newTestServer(t)
	res, _ := do(t, s.Handler(), "GET", "/healthz", "")
	for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options"} {
		if res.Header.Get(h) == "" {
			t.Errorf("missing %s", h)
		}
	}
}

func TestCrossOriginPostRefused(t *testing.T) {
	s, _ := newTestServer(t)
	res, _ := do(t, s.Handler(), "POST", "/api/v1/echo", `{}`, "Content-Type", "application/json", "Sec-Fetch-Site", "cross-site")
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST = %d; want 403", res.StatusCode)
	}
}

func TestReadiness(t *testing.T) {
	s, _ := newTestServer(t)
	h := s.Handler()
	if res, _ := do(t, h, "GET", "/readyz", ""); res.StatusCode != 200 {
		t.Fatalf("readyz with no checks = %d; want 200", res.StatusCode)
	}
	s.AddReadyCheck("database", func(context.Context) error { return errors.New("down") })
	if res, _ := do(t, h, "GET", "/readyz", ""); res.StatusCode != 503 {
		t.Fatalf("readyz with a failing check = %d; want 503", res.StatusCode)
	}
}

// TestEveryCodeHasMessages fails when an error code lacks a text in a language.
func TestEveryCodeHasMessages(t *testing.T) {
	for _, e := range apierr.Catalogue() {
		key := "error." + string(e.Code)
		if e.Status == 0 {
			key = "field." + string(e.Code)
		}
		if !i18n.Has(key) {
			t.Errorf("code %s has no message %q in the catalogue", e.Code, key)
		}
	}
}

func TestMetricsServed(t *testing.T) {
	s, _ := newTestServer(t)
	h := s.Handler()
	do(t, h, "GET", "/healthz", "")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `ortaq_http_requests_total{code="200",method="GET",route="GET /healthz"}`) {
		t.Errorf("metrics lack the request counter:\n%.2000s", rec.Body.String())
	}
}

type testCtxKey struct{}

// TestUseWrapsRoutesInsideTheServer: middlewares run in order, inside the
// server's layers (request id, security headers, metrics by route even when a
// middleware copies the request), and answer errors with Fail.
func TestUseWrapsRoutesInsideTheServer(t *testing.T) {
	s, _ := newTestServer(t)
	var order []string
	s.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			order = append(order, "first")
			if r.Header.Get("X-Refuse") != "" {
				Fail(w, r, apierr.New(apierr.Unauthorized))
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), testCtxKey{}, "from middleware")))
		})
	})
	s.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			order = append(order, "second")
			next.ServeHTTP(w, r)
		})
	})
	s.HandleFunc("GET /api/v1/who", func(w http.ResponseWriter, r *http.Request) error {
		v, _ := r.Context().Value(testCtxKey{}).(string)
		WriteJSON(w, http.StatusOK, map[string]string{"who": v, "request_id": RequestID(r.Context())})
		return nil
	})
	h := s.Handler()

	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/api/v1/who", nil)
	req.Header.Set("X-Request-Id", "use-1")
	h.ServeHTTP(rec, req)
	var got map[string]string
	_ = json.Unmarshal(rec.Body.Bytes(), &got)
	if rec.Code != 200 || got["who"] != "from middleware" || got["request_id"] != "use-1" {
		t.Fatalf("through middlewares: %d %v", rec.Code, got)
	}
	if strings.Join(order, ",") != "first,second" {
		t.Errorf("middlewares ran in order %v; want first,second", order)
	}

	res, body := do(t, h, "GET", "/api/v1/who", "", "X-Refuse", "yes", "X-Request-Id", "use-2")
	if res.StatusCode != 401 || body.Code != apierr.Unauthorized || body.RequestID != "use-2" || res.Header.Get("X-Content-Type-Options") == "" {
		t.Errorf("Fail from a middleware: %d %+v, headers %v", res.StatusCode, body, res.Header)
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`ortaq_http_requests_total{code="200",method="GET",route="GET /api/v1/who"} 1`,
		`ortaq_http_requests_total{code="401",method="GET",route="GET /api/v1/who"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s (a middleware copied or answered the request):\n%.3000s", want, rec.Body.String())
		}
	}
}

func TestFailWithoutServer(t *testing.T) {
	rec := httptest.NewRecorder()
	Fail(rec, httptest.NewRequest("GET", "/api/v1/x", nil), apierr.New(apierr.Forbidden))
	var body ErrorBody
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != 403 || body.Code != apierr.Forbidden {
		t.Errorf("Fail outside a server: %d %+v", rec.Code, body)
	}
}
