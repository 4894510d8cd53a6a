// Package portaltest drives the portal as a browser without JavaScript
// does, for the portal areas' tests: a cookie jar, form posts with the
// page's CSRF token, and sign-in of citizens and officers through /login
// with the one-time code taken from the dev SMS outbox.
//
// May import: internal/apptest, internal/identity, internal/iin,
// internal/notify, the standard library.
package portaltest

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/apptest"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/notify"
)

// Password is the password Browser gives the accounts it creates.
const Password = "test password 1"

// Browser is one visitor with their own cookies.
type Browser struct {
	T      testing.TB
	Base   string
	Client *http.Client
	R      *apptest.Running
}

// New is a fresh visitor of the running platform.
func New(t testing.TB, r *apptest.Running) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{T: t, Base: r.Server.URL, Client: &http.Client{Jar: jar}, R: r}
}

// Another is a second visitor (cookies of their own) on the same platform.
func (b *Browser) Another() *Browser { return New(b.T, b.R) }

// Page is a fetched page: status, final path (after redirects) and body.
type Page struct {
	Status int
	URL    string
	Body   string
}

// Get fetches path, following redirects.
func (b *Browser) Get(path string) Page {
	b.T.Helper()
	res, err := b.Client.Get(b.Base + path)
	if err != nil {
		b.T.Fatal(err)
	}
	return read(b.T, res)
}

// Post posts a form to path, following redirects.
func (b *Browser) Post(path string, form url.Values) Page {
	b.T.Helper()
	res, err := b.Client.PostForm(b.Base+path, form)
	if err != nil {
		b.T.Fatal(err)
	}
	return read(b.T, res)
}

func read(t testing.TB, res *http.Response) Page {
	t.Helper()
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return Page{Status: res.StatusCode, URL: res.Request.URL.Path, Body: string(body)}
}

var hidden = regexp.MustCompile(`type="hidden" name="([a-z_]+)" value="([^"]*)"|name="(csrf|idempotency_key)" value="([^"]+)"`)

// Form returns the hidden fields of the page's forms (the first value of
// each name): the CSRF token, idempotency keys, and the like.
func Form(t testing.TB, p Page) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range hidden.FindAllStringSubmatch(p.Body, -1) {
		name, value := m[1], m[2]
		if name == "" {
			name, value = m[3], m[4]
		}
		if v.Get(name) == "" {
			v.Set(name, html.UnescapeString(value))
		}
	}
	if v.Get("csrf") == "" {
		t.Fatalf("page has no CSRF token:\n%.1500s", p.Body)
	}
	return v
}

var (
	challenge = regexp.MustCompile(`name="challenge" value="([^"]+)"`)
	nextField = regexp.MustCompile(`name="next" value="([^"]*)"`)
	sixDigits = regexp.MustCompile(`[0-9]{6}`)
)

// Citizen gives the citizen an account with a phone of its own (replacing
// any earlier password) and returns the phone.
func (b *Browser) Citizen(iin string) string {
	b.T.Helper()
	phone := "+7701" + iin[5:12]
	if err := b.R.Accounts.SetPerson(context.Background(), identity.Principal{Kind: identity.Citizen, Subject: iin, Name: "Test " + iin[8:]}, phone, Password); err != nil {
		b.T.Fatal(err)
	}
	return phone
}

// Officer gives an officer of agency with roles an account and returns
// the phone.
func (b *Browser) Officer(id, agency string, roles ...string) string {
	b.T.Helper()
	h := fnv.New32a()
	h.Write([]byte(id))
	phone := fmt.Sprintf("+7702%07d", h.Sum32()%10_000_000)
	if err := b.R.Accounts.SetPerson(context.Background(), identity.Principal{Kind: identity.Officer, Subject: id, Name: "Officer " + id, Agency: agency, Roles: roles}, phone, Password); err != nil {
		b.T.Fatal(err)
	}
	return phone
}

// SignIn signs in as the citizen (creating their account) and fails the
// test unless it lands signed in on next.
func (b *Browser) SignIn(iin, next string) Page {
	b.T.Helper()
	return b.signIn(iin, b.Citizen(iin), false, next)
}

// SignInOfficer signs in as an officer (creating their account).
func (b *Browser) SignInOfficer(id, agency string, roles []string, next string) Page {
	b.T.Helper()
	return b.signIn(id, b.Officer(id, agency, roles...), true, next)
}

// SignInTo signs in with an existing account's subject and phone from
// /login?next=next and returns the page it lands on, whatever it is.
func (b *Browser) SignInTo(subject, phone string, officer bool, next string) Page {
	b.T.Helper()
	login := b.Get("/login?next=" + url.QueryEscape(next))
	form := Form(b.T, login)
	form.Set("subject", subject)
	form.Set("password", Password)
	if officer {
		form.Set("kind", "officer")
	}
	if m := nextField.FindStringSubmatch(login.Body); m != nil {
		form.Set("next", html.UnescapeString(m[1]))
	}
	step := b.Post("/login", form)
	ch := challenge.FindStringSubmatch(step.Body)
	if step.Status != 200 || ch == nil {
		b.T.Fatalf("password step = %d:\n%.2000s", step.Status, step.Body)
	}
	sent, err := notify.DevOutbox(context.Background(), b.R.DB.Pool, notify.OutboxFilter{To: phone, Channel: notify.SMS, Limit: 1})
	if err != nil || len(sent) != 1 {
		b.T.Fatalf("no SMS for %s: %v", phone, err)
	}
	form = Form(b.T, step)
	form.Set("challenge", html.UnescapeString(ch[1]))
	form.Set("code", sixDigits.FindString(sent[0].Body))
	if m := nextField.FindStringSubmatch(step.Body); m != nil {
		form.Set("next", html.UnescapeString(m[1]))
	}
	return b.Post("/login/code", form)
}

func (b *Browser) signIn(subject, phone string, officer bool, next string) Page {
	b.T.Helper()
	p := b.SignInTo(subject, phone, officer, next)
	if p.Status != 200 || p.URL != next || !strings.Contains(p.Body, `action="/logout"`) {
		b.T.Fatalf("sign-in of %s landed on %s with %d; want %s:\n%.1500s", subject, p.URL, p.Status, next, p.Body)
	}
	return p
}

// API calls the platform's JSON API as p (a bearer token issued for the
// call) and returns the status and the decoded answer. Writes carry a
// fresh Idempotency-Key.
func API(t testing.TB, r *apptest.Running, p identity.Principal, method, path, body string) (int, map[string]any) {
	t.Helper()
	tok, _, err := r.Tokens.Issue(context.Background(), p, time.Hour, "test")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, r.Server.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if method != http.MethodGet {
		req.Header.Set("Idempotency-Key", fmt.Sprintf("k-%d", time.Now().UnixNano()))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}
