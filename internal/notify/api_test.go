package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/notify"
	"github.com/ortaq/ortaq/internal/web"
)

// callers stand in for resolved access tokens: the identity middleware's
// job, tested in internal/identity.
var callers = map[string]identity.Principal{
	"owner":   {Kind: identity.Citizen, Subject: both},
	"other":   {Kind: identity.Citizen, Subject: nobody},
	"officer": {Kind: identity.Officer, Subject: "mia-0001", Agency: "mia", Roles: []string{"supervisor"}},
	"system":  {Kind: identity.System, Subject: "bank", Roles: []string{identity.ScopePayments}},
}

func apiServer(t *testing.T, f *fixture) http.Handler {
	t.Helper()
	s := web.New(web.Config{Logger: slog.New(slog.DiscardHandler)})
	s.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p, ok := callers[r.Header.Get("X-Test-Caller")]; ok {
				r = r.WithContext(identity.WithPrincipal(r.Context(), p))
			}
			next.ServeHTTP(w, r)
		})
	})
	f.n.Routes(s)
	return s.Handler()
}

type reply struct {
	status int
	body   map[string]any
	err    web.ErrorBody
	raw    string
}

func call(t *testing.T, h http.Handler, caller, method, path, body string) reply {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Test-Caller", caller)
	req.Header.Set("X-Request-Id", "req-"+caller)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	r := reply{status: rec.Code, raw: string(b)}
	_ = json.Unmarshal(b, &r.body)
	_ = json.Unmarshal(b, &r.err)
	return r
}

// TestNotificationsAPI: every route with every kind of caller, the
// citizen's own inbox only, paging, contact validation and its audit.
func TestNotificationsAPI(t *testing.T) {
	t.Parallel()
	f := setup(t, notify.Config{})
	f.n.SetApplications(platformApps)
	for _, text := range []string{"first", "second", "third"} {
		f.emit(t, event{"notify.message.requested", appBoth, map[string]any{"application_id": appBoth, "to_iin": both,
			"message": map[string]string{"kk": "kk " + text, "ru": "ru " + text, "en": "en " + text}}})
		f.consume(t, f.n, 1)
		f.clock.Advance(time.Second) // distinct times: newest first is well defined
	}
	h := apiServer(t, f)

	routes := []struct{ method, path, body string }{
		{"GET", "/api/v1/notifications", ""},
		{"GET", "/api/v1/notifications/contact", ""},
		{"PUT", "/api/v1/notifications/contact", `{"phone":"+77010000009"}`},
	}
	for _, r := range routes {
		for caller, want := range map[string]int{"": 401, "officer": 403, "system": 403, "owner": 200} {
			if caller == "officer" && r.method == "GET" && r.path == "/api/v1/notifications" {
				want = 200 // the officer's own inbox: their roles' messages
			}
			if got := call(t, h, caller, r.method, r.path, r.body); got.status != want {
				t.Errorf("%s %s as %q: %d %s; want %d", r.method, r.path, caller, got.status, got.raw, want)
			}
		}
	}

	// The owner's inbox, newest first, in the caller's language, paged.
	r := call(t, h, "owner", "GET", "/api/v1/notifications?limit=2&lang=en", "")
	list, _ := r.body["notifications"].([]any)
	var texts []string
	for _, m := range list {
		texts = append(texts, m.(map[string]any)["text"].(string))
	}
	if r.status != 200 || !slices.Equal(texts, []string{"en third", "en second"}) || r.body["next"] == nil {
		t.Fatalf("first page: %d %v next=%v", r.status, texts, r.body["next"])
	}
	if title := list[0].(map[string]any)["title"]; title != "Application A-000001" {
		t.Errorf("title %q", title)
	}
	r = call(t, h, "owner", "GET", "/api/v1/notifications?limit=2&lang=ru&after="+r.body["next"].(string), "")
	list, _ = r.body["notifications"].([]any)
	if r.status != 200 || len(list) != 1 || list[0].(map[string]any)["text"] != "ru first" || r.body["next"] != nil {
		t.Fatalf("second page: %d %s", r.status, r.raw)
	}
	// Another citizen, or an officer, sees none of it, and cannot page with
	// its ids.
	first := list[0].(map[string]any)["id"].(string)
	for _, who := range []string{"other", "officer"} {
		if r := call(t, h, who, "GET", "/api/v1/notifications", ""); r.status != 200 || len(r.body["notifications"].([]any)) != 0 {
			t.Errorf("%s's inbox: %d %s", who, r.status, r.raw)
		}
		for _, q := range []string{"after=" + first, "after=nope", "limit=0", "limit=101", "limit=x"} {
			if r := call(t, h, who, "GET", "/api/v1/notifications?"+q, ""); r.status != 422 {
				t.Errorf("%s ?%s: %d %s; want 422", who, q, r.status, r.raw)
			}
		}
	}
	// The officers of a role read what was sent to it; and the citizen
	// cannot page with its ids either.
	f.emit(t, event{"notify.officer.escalation", "task-9", map[string]any{"task_id": "task-9", "agency": "mia", "role": "supervisor"}})
	f.consume(t, f.n, 1)
	r = call(t, h, "officer", "GET", "/api/v1/notifications?lang=en", "")
	list, _ = r.body["notifications"].([]any)
	if r.status != 200 || len(list) != 1 || list[0].(map[string]any)["topic"] != "notify.officer.escalation" {
		t.Fatalf("officer's inbox: %d %s", r.status, r.raw)
	}
	if r := call(t, h, "owner", "GET", "/api/v1/notifications?after="+list[0].(map[string]any)["id"].(string), ""); r.status != 422 {
		t.Errorf("citizen pages with an officer's message: %d %s", r.status, r.raw)
	}

	// Contact: each wrong field named with its code.
	r = call(t, h, "owner", "PUT", "/api/v1/notifications/contact", `{"phone":"87010000001","email":"Aigerim <a@example.kz>","language":"de"}`)
	var fields []string
	for _, fe := range r.err.Fields {
		fields = append(fields, fe.Path+" "+string(fe.Code))
	}
	if r.status != 422 || !slices.Equal(fields, []string{"/phone phone.format", "/email email.format", "/language one_of"}) {
		t.Errorf("bad contact: %d %v", r.status, fields)
	}
	if r := call(t, h, "owner", "PUT", "/api/v1/notifications/contact", `{"phone":"+77010000001","fax":"1"}`); r.status != 400 && r.status != 422 {
		t.Errorf("unknown field: %d", r.status)
	}
	r = call(t, h, "owner", "PUT", "/api/v1/notifications/contact", `{"phone":"+77010000001","email":"a@example.kz","language":"en"}`)
	if r.status != 200 || r.body["phone"] != "+77010000001" || r.body["language"] != "en" {
		t.Errorf("good contact: %d %s", r.status, r.raw)
	}
	r = call(t, h, "owner", "GET", "/api/v1/notifications/contact", "")
	if r.status != 200 || r.body["email"] != "a@example.kz" {
		t.Errorf("read contact: %d %s", r.status, r.raw)
	}
	// Reads and writes by the owner are audited with the request id.
	rows, err := f.pool.Query(context.Background(), `SELECT action FROM audit_event WHERE subject_iin = $1 AND request_id = 'req-owner' ORDER BY id`, both)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for rows.Next() {
		var a string
		rows.Scan(&a)
		actions = append(actions, a)
	}
	if want := []string{"notify.contact.read", "notify.contact.write", "notify.contact.write", "notify.contact.read"}; !slices.Equal(actions, want) {
		t.Errorf("audit %v; want %v", actions, want)
	}
}
