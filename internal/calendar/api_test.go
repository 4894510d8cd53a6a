package calendar_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/ortaq/ortaq/internal/calendar"
	"github.com/ortaq/ortaq/internal/pgtest"
	"github.com/ortaq/ortaq/internal/web"
)

const token = "test-admin-token"

func server(t *testing.T, adminToken string) http.Handler {
	t.Helper()
	s := web.New(web.Config{Logger: slog.New(slog.DiscardHandler)})
	calendar.New(pgtest.New(t).Pool, fixedClock()).Routes(s, adminToken)
	return s.Handler()
}

type reply struct {
	status int
	header http.Header
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
	r := reply{status: rec.Code, header: rec.Header()}
	_ = json.Unmarshal(b, &r.body)
	_ = json.Unmarshal(b, &r.err)
	return r
}

func fieldsIn(r reply) []string {
	var out []string
	for _, f := range r.err.Fields {
		out = append(out, f.Path+" "+string(f.Code))
	}
	return out
}

const holidayBody = `{"kind":"holiday","name":{"kk":"Сынақ","ru":"Тест","en":"Test"}}`

func TestYearAPI(t *testing.T) {
	t.Parallel()
	h := server(t, token)
	r := do(t, h, "GET", "/api/v1/calendar/2026?lang=en", "")
	if r.status != http.StatusOK {
		t.Fatalf("GET year: %d %v", r.status, r.body)
	}
	if r.body["working_days"] != 246.0 || r.body["days_off"] != 119.0 || r.body["days_in_year"] != 365.0 || r.body["language"] != "en" {
		t.Errorf("counts of 2026: %v", r.body)
	}
	days, _ := r.body["days"].([]any)
	var found bool
	for _, d := range days {
		d := d.(map[string]any)
		if d["date"] == "2026-03-24" {
			found = d["kind"] == "holiday" && d["name"] == "Day off carried over: Nauryz" && d["weekday"] == "tuesday"
		}
	}
	if !found || len(days) != 21 {
		t.Errorf("days of 2026 (%d): %v", len(days), days)
	}
	r = do(t, h, "GET", "/api/v1/calendar/2026", "", "Accept-Language", "ru-RU")
	if r.header.Get("Content-Language") != "ru" || !strings.Contains(r.raw(t), "Перенесённый выходной: Наурыз мейрамы") {
		t.Errorf("GET year in Russian: %s %v", r.header.Get("Content-Language"), r.body)
	}
	r = do(t, h, "GET", "/api/v1/calendar/2040", "")
	if r.status != http.StatusOK || r.body["working_days"] != 261.0 {
		t.Errorf("a year without exceptions: %d %v", r.status, r.body)
	}
	for path, want := range map[string]string{
		"/api/v1/calendar/20x6":  "/year format",
		"/api/v1/calendar/02026": "/year format",
		"/api/v1/calendar/1999":  "/year out_of_range",
	} {
		r := do(t, h, "GET", path, "")
		if r.status != http.StatusUnprocessableEntity || r.err.Code != "request.validation" || !slices.Equal(fieldsIn(r), []string{want}) {
			t.Errorf("GET %s: %d %s %v; want 422 %s", path, r.status, r.err.Code, fieldsIn(r), want)
		}
	}
}

// raw re-encodes the body, for substring checks.
func (r reply) raw(t *testing.T) string {
	b, err := json.Marshal(r.body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEditAPIRequiresTheAdminToken(t *testing.T) {
	t.Parallel()
	h := server(t, token)
	for _, auth := range []string{"", "Bearer wrong", "Basic " + token, token} {
		for _, method := range []string{"PUT", "DELETE"} {
			r := do(t, h, method, "/api/v1/calendar/days/2026-06-01", holidayBody, "Authorization", auth)
			if r.status != http.StatusUnauthorized || r.err.Code != "auth.unauthorized" {
				t.Errorf("%s with Authorization %q: %d %s; want 401 auth.unauthorized", method, auth, r.status, r.err.Code)
			}
		}
	}
	if r := do(t, h, "GET", "/api/v1/calendar/working-days?from=2026-05-29T10:00:00Z&days=1", ""); r.body["deadline_date"] != "2026-06-01" {
		t.Errorf("a refused edit changed the calendar: %v", r.body)
	}
	off := server(t, "")
	r := do(t, off, "PUT", "/api/v1/calendar/days/2026-06-01", holidayBody, "Authorization", "Bearer ")
	if r.status != http.StatusForbidden || r.err.Code != "auth.forbidden" {
		t.Errorf("PUT with editing switched off: %d %s; want 403 auth.forbidden", r.status, r.err.Code)
	}
}

func TestEditAPI(t *testing.T) {
	t.Parallel()
	h := server(t, token)
	auth := []string{"Authorization", "Bearer " + token}
	deadline := func() any {
		return do(t, h, "GET", "/api/v1/calendar/working-days?from=2026-05-29T10:00:00%2B05:00&days=1", "").body["deadline_date"]
	}
	if got := deadline(); got != "2026-06-01" {
		t.Fatalf("before the edit, Friday + 1 = %v", got)
	}
	r := do(t, h, "PUT", "/api/v1/calendar/days/2026-06-01?lang=en", holidayBody, auth...)
	if r.status != http.StatusOK || r.body["date"] != "2026-06-01" || r.body["kind"] != "holiday" || r.body["name"] != "Test" || r.body["weekday"] != "monday" {
		t.Fatalf("PUT: %d %v", r.status, r.body)
	}
	if got := deadline(); got != "2026-06-02" {
		t.Errorf("after the edit, Friday + 1 = %v; want Tuesday", got)
	}
	r = do(t, h, "GET", "/api/v1/calendar/2026?lang=ru", "")
	if r.body["working_days"] != 245.0 || !strings.Contains(r.raw(t), `"date":"2026-06-01"`) {
		t.Errorf("GET after PUT: %v", r.body)
	}
	// PUT replaces.
	r = do(t, h, "PUT", "/api/v1/calendar/days/2026-06-06", `{"kind":"working","name":{"kk":"а","ru":"б","en":"c"}}`, auth...)
	if r.status != http.StatusOK || r.body["kind"] != "working" {
		t.Errorf("PUT working Saturday: %d %v", r.status, r.body)
	}
	if got := do(t, h, "GET", "/api/v1/calendar/2026", "").body["working_days"]; got != 246.0 {
		t.Errorf("working days after a working Saturday: %v", got)
	}

	r = do(t, h, "DELETE", "/api/v1/calendar/days/2026-06-01", "", auth...)
	if r.status != http.StatusNoContent {
		t.Errorf("DELETE: %d %v", r.status, r.body)
	}
	if got := deadline(); got != "2026-06-01" {
		t.Errorf("after DELETE, Friday + 1 = %v; want Monday again", got)
	}
	r = do(t, h, "DELETE", "/api/v1/calendar/days/2026-06-01", "", auth...)
	if r.status != http.StatusNotFound || r.err.Code != "calendar.day_not_found" {
		t.Errorf("DELETE again: %d %s; want 404 calendar.day_not_found", r.status, r.err.Code)
	}
	r = do(t, h, "DELETE", "/api/v1/calendar/days/2026-6-1", "", auth...)
	if r.status != http.StatusUnprocessableEntity || !slices.Equal(fieldsIn(r), []string{"/date format"}) {
		t.Errorf("DELETE bad date: %d %v", r.status, fieldsIn(r))
	}
}

func TestEditAPIValidation(t *testing.T) {
	t.Parallel()
	h := server(t, token)
	auth := []string{"Authorization", "Bearer " + token}
	tests := []struct {
		date, body string
		want       []string
	}{
		{"2026-02-30", holidayBody, []string{"/date format"}},
		{"tomorrow", holidayBody, []string{"/date format"}},
		{"2300-01-01", holidayBody, []string{"/date out_of_range"}},
		{"2026-06-01", `{"kind":"vacation","name":{"kk":"a","ru":"b","en":"c"}}`, []string{"/kind one_of"}},
		{"2026-06-01", `{"kind":"working","name":{"kk":"a","ru":"b","en":"c"}}`, []string{"/kind calendar.not_weekend"}},
		{"2026-06-01", `{"name":{"kk":"a","ru":"b","en":"c"}}`, []string{"/kind required"}},
		{"2026-06-01", `{"kind":"holiday","name":{"kk":"a","en":"c"}}`, []string{"/name/ru required"}},
		{"2026-06-01", `{"kind":"holiday"}`, []string{"/name/kk required", "/name/ru required", "/name/en required"}},
		{"2026-06-01", `{"kind":"holiday","name":{"kk":"` + strings.Repeat("a", 201) + `","ru":"b","en":"c"}}`, []string{"/name/kk too_long"}},
		{"2026-06-01", `{"kind":"holiday","name":{"kk":"a","ru":"b","en":"c"},"note":"x"}`, []string{"/note unknown_field"}},
		{"2026-06-01", `{"kind":1,"name":{"kk":"a","ru":"b","en":"c"}}`, []string{"/kind type"}},
		{"x", `{"kind":"x"}`, []string{"/date format", "/kind one_of", "/name/kk required", "/name/ru required", "/name/en required"}},
	}
	for _, tt := range tests {
		r := do(t, h, "PUT", "/api/v1/calendar/days/"+tt.date, tt.body, auth...)
		if r.status != http.StatusUnprocessableEntity || r.err.Code != "request.validation" || !slices.Equal(fieldsIn(r), tt.want) {
			t.Errorf("PUT %s %s: %d %s %v; want 422 %v", tt.date, tt.body, r.status, r.err.Code, fieldsIn(r), tt.want)
		}
		for _, f := range r.err.Fields {
			if f.Message == "" || strings.HasPrefix(f.Message, "field.") {
				t.Errorf("field %s has no message: %q", f.Path, f.Message)
			}
		}
	}
	req := httptest.NewRequest("PUT", "/api/v1/calendar/days/2026-06-01", strings.NewReader(holidayBody))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "text/plain")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnsupportedMediaType {
		t.Errorf("PUT as text/plain: %d; want 415", rec.Code)
	}
}

func TestWorkingDaysAPI(t *testing.T) {
	t.Parallel()
	h := server(t, token)
	r := do(t, h, "GET", "/api/v1/calendar/working-days?from=2026-01-09T15:00:00%2B05:00&days=1", "")
	if r.status != http.StatusOK || r.body["deadline"] != "2026-01-12T18:59:59.999999999Z" ||
		r.body["deadline_local"] != "2026-01-12T23:59:59.999999999+05:00" || r.body["deadline_date"] != "2026-01-12" ||
		r.body["from"] != "2026-01-09T10:00:00Z" || r.body["working_days"] != 1.0 {
		t.Errorf("Friday 15:00 + 1: %d %v", r.status, r.body)
	}
	// An unescaped "+" arrives as a space; it still means the offset.
	r = do(t, h, "GET", "/api/v1/calendar/working-days?from=2026-03-19T10:00:00+05:00&days=2", "")
	if r.body["deadline_date"] != "2026-03-26" {
		t.Errorf("across Nauryz: %d %v", r.status, r.body)
	}
	// Without from: from the platform's clock (2026-01-09 15:00 in Almaty).
	r = do(t, h, "GET", "/api/v1/calendar/working-days?days=1", "")
	if r.body["deadline_date"] != "2026-01-12" || r.body["from"] != "2026-01-09T10:00:00Z" {
		t.Errorf("from now: %d %v", r.status, r.body)
	}
	for query, want := range map[string][]string{
		"from=2026-01-09&days=1":              {"/from format"},
		"from=2026-01-09T10:00:00Z":           {"/days required"},
		"from=2026-01-09T10:00:00Z&days=x":    {"/days format"},
		"from=2026-01-09T10:00:00Z&days=0":    {"/days out_of_range"},
		"from=2026-01-09T10:00:00Z&days=3651": {"/days out_of_range"},
		"days=99999999999999999999999":        {"/days out_of_range"},
		"from=9999-12-30T10:00:00Z&days=3000": {"/from out_of_range"},
		"from=yesterday&days=-1":              {"/from format", "/days out_of_range"},
	} {
		r := do(t, h, "GET", "/api/v1/calendar/working-days?"+query, "")
		if r.status != http.StatusUnprocessableEntity || !slices.Equal(fieldsIn(r), want) {
			t.Errorf("GET working-days?%s: %d %v; want 422 %v", query, r.status, fieldsIn(r), want)
		}
	}
}
