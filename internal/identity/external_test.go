package identity_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/web"
)

// TestExternalProvider: the platform delegates citizens' sign-in to an
// external OpenID Connect provider, here our own provider on another
// server: to the provider, signed in there, back with a code, and a portal
// session for the citizen named by the ID token's iin claim.
func TestExternalProvider(t *testing.T) {
	op := setupOIDC(t) // the "external" provider, its citizen signed in there
	ctx := context.Background()
	// The relying party checks the ID token's times against the real clock.
	op.clk.Advance(time.Since(op.clk.Now()))
	sessions := identity.NewSessions(op.db.Pool, op.clk)
	atProvider, _, err := sessions.Create(ctx, identity.Principal{Kind: identity.Citizen, Subject: citizenIIN, Name: "Aru"}, identity.MethodPasswordSMS, "")
	if err != nil {
		t.Fatal(err)
	}

	// The platform delegating to it, with its callback registered there.
	s := web.New(web.Config{Logger: slog.New(slog.DiscardHandler)})
	s.Use(sessions.Middleware)
	var seen identity.Principal
	s.Handle("GET /after", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen, _ = identity.FromContext(r.Context()) }))
	platform := httptest.NewUnstartedServer(nil)
	platform.Start()
	defer platform.Close()
	callback := platform.URL + "/login/external/callback"
	if err := op.accounts.SetRedirectURIs(ctx, "demo-rp", []string{callback}); err != nil {
		t.Fatal(err)
	}
	ext, err := identity.NewExternal(ctx, identity.ExternalConfig{Issuer: op.srv.URL, ClientID: "demo-rp", ClientSecret: op.secret,
		RedirectURI: callback, Log: slog.New(slog.DiscardHandler)}, sessions)
	if err != nil {
		t.Fatal(err)
	}
	ext.Routes(s)
	platform.Config.Handler = s.Handler()

	// A browser: its cookie for the provider is the citizen's session there.
	jar, _ := cookiejar.New(nil)
	opURL, _ := url.Parse(op.srv.URL)
	jar.SetCookies(opURL, []*http.Cookie{{Name: identity.SessionCookie, Value: atProvider, Path: "/"}})
	browser := &http.Client{Jar: jar}
	res, err := browser.Get(platform.URL + "/login/external?next=/after")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Request.URL.Path != "/after" {
		t.Fatalf("external sign-in ended on %s with %d", res.Request.URL, res.StatusCode)
	}
	if !seen.IsCitizen(citizenIIN) || seen.Name != "Aru" {
		t.Errorf("signed in as %+v; want the citizen %s", seen, citizenIIN)
	}
	var method string
	op.db.Pool.QueryRow(ctx, `SELECT auth_method FROM identity_session ORDER BY created_at DESC, id DESC LIMIT 1`).Scan(&method)
	if method != identity.MethodExternal {
		t.Errorf("session method = %q", method)
	}

	// A callback without the state cookie (a forged one) signs nobody in.
	res, err = http.Get(platform.URL + "/login/external/callback?code=x&state=y")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || strings.Contains(res.Header.Get("Set-Cookie"), identity.SessionCookie) {
		t.Errorf("forged callback = %d %s", res.StatusCode, res.Header.Get("Set-Cookie"))
	}
}
