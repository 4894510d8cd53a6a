package app_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/apptest"
	"github.com/ortaq/ortaq/internal/cli"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/notify"
	"github.com/ortaq/ortaq/internal/pgtest"
)

// TestIdentityCommandsAndSignInOverTheAPI: accounts made by `ortaq identity
// ... add` sign in through the API, the citizen with the code the SMS
// adapter delivered to the dev outbox; the bank's system gets a token with
// its secret; nothing secret is printed where it should not be.
func TestIdentityCommandsAndSignInOverTheAPI(t *testing.T) {
	t.Parallel()
	r := apptest.Start(t, 1, 10)
	ctx := context.Background()
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("a long password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	iin := r.Sample.WithAddress.String()
	var out, errOut strings.Builder
	if code := cli.Main([]string{"identity", "citizen", "add", "--database-url", r.DB.URL, "--log-level", "warn",
		"--iin", iin, "--phone", "+77015550123", "--password-file", pw}, &out, &errOut); code != 0 {
		t.Fatalf("citizen add exited %d: %s", code, errOut.String())
	}
	if code := cli.Main([]string{"identity", "officer", "add", "--database-url", r.DB.URL, "--log-level", "warn",
		"--id", "mia-0007", "--agency", "mia", "--role", "migration-officer", "--phone", "+77015550124", "--password-file", pw}, &out, &errOut); code != 0 {
		t.Fatalf("officer add exited %d: %s", code, errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := cli.Main([]string{"identity", "client", "add", "--database-url", r.DB.URL, "--log-level", "warn",
		"--id", "halyk", "--scope", "payments"}, &out, &errOut); code != 0 {
		t.Fatalf("client add exited %d: %s", code, errOut.String())
	}
	secret := strings.TrimSpace(out.String())
	if !strings.HasPrefix(secret, "oqs_") || strings.Contains(errOut.String(), secret) {
		t.Fatalf("client add printed %q (stderr %q)", secret, errOut.String())
	}

	// The citizen: password, then the code from the SMS.
	start := call(t, "POST", r.Server.URL+"/api/v1/identity/login", `{"subject":"`+iin+`","password":"a long password"}`)
	if start.status != 200 || str(start.body["challenge"]) == "" || str(start.body["phone_hint"]) != "+7 *** *** ** 23" {
		t.Fatalf("login = %d %s", start.status, start.raw)
	}
	sent, err := notify.DevOutbox(ctx, r.DB.Pool, notify.OutboxFilter{To: "+77015550123", Channel: notify.SMS, Limit: 1})
	if err != nil || len(sent) != 1 || sent[0].ToIIN != iin {
		t.Fatalf("dev outbox: %v %v", sent, err)
	}
	code := regexp.MustCompile(`\b[0-9]{6}\b`).FindString(sent[0].Body)
	done := call(t, "POST", r.Server.URL+"/api/v1/identity/login/code", `{"challenge":"`+str(start.body["challenge"])+`","code":"`+code+`"}`)
	if done.status != 200 || !strings.HasPrefix(str(done.body["access_token"]), "oq_") || done.body["expires_in"] != float64(600) {
		t.Fatalf("code = %d %s", done.status, done.raw)
	}
	auth := []string{"Authorization", "Bearer " + str(done.body["access_token"])}
	if res := call(t, "GET", r.Server.URL+"/api/v1/notifications", "", auth...); res.status != 200 {
		t.Errorf("the signed-in citizen's inbox = %d %s", res.status, res.raw)
	}
	if res := call(t, "POST", r.Server.URL+"/api/v1/identity/login", `{"kind":"officer","subject":"mia-0007","password":"a long password"}`); res.status != 200 {
		t.Errorf("officer login = %d %s", res.status, res.raw)
	}
	if res := call(t, "POST", r.Server.URL+"/api/v1/identity/login", `{"subject":"`+iin+`","password":"wrong password"}`); res.status != 401 || str(res.body["code"]) != "auth.login_failed" {
		t.Errorf("wrong password = %d %s", res.status, res.raw)
	}

	// Disabled, the officer signs in no more.
	if code := cli.Main([]string{"identity", "disable", "--database-url", r.DB.URL, "--log-level", "warn",
		"--kind", "officer", "--subject", "mia-0007"}, &out, &errOut); code != 0 {
		t.Fatalf("disable exited %d: %s", code, errOut.String())
	}
	if res := call(t, "POST", r.Server.URL+"/api/v1/identity/login", `{"kind":"officer","subject":"mia-0007","password":"a long password"}`); res.status != 401 {
		t.Errorf("a disabled officer's login = %d %s", res.status, res.raw)
	}

	// The bank: client credentials.
	req, _ := http.NewRequest("POST", r.Server.URL+"/api/v1/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("halyk", secret)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("client credentials = %v %v", res.StatusCode, err)
	}
	res.Body.Close()

	// Every step is on the audit trail.
	var actions []string
	rows, _ := r.DB.Pool.Query(ctx, `SELECT action FROM audit_event WHERE action LIKE 'identity.%' ORDER BY id`)
	for rows.Next() {
		var a string
		rows.Scan(&a)
		actions = append(actions, a)
	}
	for _, want := range []string{"identity.login.code_sent", "identity.login", "identity.token.issued", "identity.login.failed", "identity.client.authenticated"} {
		if !strings.Contains(strings.Join(actions, " "), want) {
			t.Errorf("audit trail %v lacks %s", actions, want)
		}
	}
}

// TestDelegatedCitizenSignIn: with --oidc-issuer, citizens sign in at the
// external provider (here another platform's built-in one): the login page
// offers it, /login/external goes there, and a citizen's password sign-in
// here is refused; officers keep theirs.
func TestDelegatedCitizenSignIn(t *testing.T) {
	t.Parallel()
	provider := apptest.Start(t, 0, 10)
	ctx := context.Background()
	secret, err := provider.Accounts.SetClient(ctx, identity.Principal{Kind: identity.System, Subject: "platform-b"})
	if err != nil {
		t.Fatal(err)
	}
	if err := provider.Accounts.SetRedirectURIs(ctx, "platform-b", []string{"http://b.example/login/external/callback"}); err != nil {
		t.Fatal(err)
	}
	cfg := app.Config{OIDCIssuer: provider.Server.URL, OIDCClientID: "platform-b", OIDCClientSecret: secret}
	if _, err := app.Build(cfg, pgtest.New(t).Pool, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "--public-url") {
		t.Errorf("an external provider without --public-url: %v", err)
	}
	cfg.PublicURL = "http://b.example"
	b, err := app.Build(cfg, pgtest.New(t).Pool, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(b.Web.Handler())
	defer srv.Close()
	login := call(t, "GET", srv.URL+"/login", "")
	if !strings.Contains(login.raw, `href="/login/external?next=`) || strings.Contains(login.raw, `value="citizen"`) {
		t.Errorf("the login page does not send citizens to the external provider:\n%.2000s", login.raw)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.Get(srv.URL + "/login/external?next=/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if loc := res.Header.Get("Location"); !strings.HasPrefix(loc, provider.Server.URL+"/oidc/authorize?") || !strings.Contains(loc, "client_id=platform-b") || !strings.Contains(loc, "code_challenge_method=S256") {
		t.Errorf("/login/external = %d %s", res.StatusCode, loc)
	}
	if res := call(t, "POST", srv.URL+"/api/v1/identity/login", `{"subject":"`+provider.Sample.WithAddress.String()+`","password":"whatever1"}`); res.status != 422 || !strings.Contains(res.raw, `"/kind"`) {
		t.Errorf("a citizen's password sign-in = %d %s; want 422 /kind", res.status, res.raw)
	}
}
