package identity_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/pgtest"
	"github.com/ortaq/ortaq/internal/web"
)

// phoneBox is the test's SMS provider: the codes each phone received.
type phoneBox struct {
	mu    sync.Mutex
	codes map[string][]string
}

func (b *phoneBox) SendCode(ctx context.Context, to identity.Account, code string, lang i18n.Lang) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.codes[to.Phone] = append(b.codes[to.Phone], code)
	return nil
}

func (b *phoneBox) last(phone string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.codes[phone]
	if len(c) == 0 {
		return ""
	}
	return c[len(c)-1]
}

const phone = "+77011234567"

type loginBundle struct {
	accounts *identity.Accounts
	logins   *identity.Logins
	box      *phoneBox
	clk      *clock.Fake
	db       pgtest.DB
}

func setupLogin(t *testing.T) loginBundle {
	t.Helper()
	_, clk, db := setup(t)
	b := loginBundle{accounts: identity.NewAccounts(db.Pool, clk), box: &phoneBox{codes: map[string][]string{}}, clk: clk, db: db}
	b.logins = identity.NewLogins(b.accounts, b.box, identity.LoginConfig{})
	if err := b.accounts.SetPerson(context.Background(), identity.Principal{Kind: identity.Citizen, Subject: citizenIIN, Name: "Aru"}, phone, "correct horse"); err != nil {
		t.Fatal(err)
	}
	return b
}

func code(err error) apierr.Code {
	var e *apierr.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func TestPasswordThenCode(t *testing.T) {
	b := setupLogin(t)
	ctx := context.Background()
	ch, err := b.logins.Start(ctx, identity.Attempt{Subject: citizenIIN, Password: "correct horse", IP: "10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if ch.PhoneHint != "+7 *** *** ** 67" || ch.Handle == "" {
		t.Errorf("challenge = %+v", ch)
	}
	sent := b.box.last(phone)
	if len(sent) != 6 || strings.Trim(sent, "0123456789") != "" {
		t.Fatalf("code sent = %q; want six digits", sent)
	}
	// The code is nowhere in the database, nor the handle.
	var leaked int
	b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM identity_challenge c WHERE c::text LIKE '%' || $1 || '%' OR encode(code_hash, 'hex') LIKE '%' || $1 || '%'`, ch.Handle).Scan(&leaked)
	if leaked != 0 {
		t.Error("the challenge's handle is stored")
	}
	wrong := "000000"
	if sent == wrong {
		wrong = "111111"
	}
	if _, err := b.logins.Finish(ctx, identity.Attempt{Challenge: ch.Handle, Code: wrong}); code(err) != apierr.CodeInvalid {
		t.Errorf("wrong code: %v; want auth.code_invalid", err)
	}
	p, err := b.logins.Finish(ctx, identity.Attempt{Challenge: ch.Handle, Code: sent})
	if err != nil || !p.IsCitizen(citizenIIN) || p.Name != "Aru" {
		t.Fatalf("Finish = %+v, %v", p, err)
	}
	// Single use: the same code again is a replay.
	if _, err := b.logins.Finish(ctx, identity.Attempt{Challenge: ch.Handle, Code: sent}); code(err) != apierr.ChallengeExpired {
		t.Errorf("replayed code: %v; want auth.challenge_expired", err)
	}
	// Expired: five minutes.
	ch, _ = b.logins.Start(ctx, identity.Attempt{Subject: citizenIIN, Password: "correct horse"})
	b.clk.Advance(5*time.Minute + time.Second)
	if _, err := b.logins.Finish(ctx, identity.Attempt{Challenge: ch.Handle, Code: b.box.last(phone)}); code(err) != apierr.ChallengeExpired {
		t.Errorf("expired code: %v; want auth.challenge_expired", err)
	}
	// Three wrong codes end a challenge, even before it expires.
	ch, _ = b.logins.Start(ctx, identity.Attempt{Subject: citizenIIN, Password: "correct horse"})
	right := b.box.last(phone)
	for range 3 {
		b.logins.Finish(ctx, identity.Attempt{Challenge: ch.Handle, Code: wrongOf(right)})
	}
	if _, err := b.logins.Finish(ctx, identity.Attempt{Challenge: ch.Handle, Code: right}); code(err) != apierr.ChallengeExpired {
		t.Errorf("right code after three wrong ones: %v; want auth.challenge_expired", err)
	}
	// Garbage is a field error.
	for _, bad := range []identity.Attempt{{Challenge: "x", Code: "12a456"}, {Challenge: "", Code: "123456"}, {Challenge: "x", Code: "1234567"}} {
		if _, err := b.logins.Finish(ctx, bad); code(err) != apierr.Validation {
			t.Errorf("Finish(%+v) = %v; want request.validation", bad, err)
		}
	}
	var events int
	b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_event WHERE subject_iin = $1 AND action = 'identity.login'`, citizenIIN).Scan(&events)
	if events != 1 {
		t.Errorf("audited sign-ins = %d; want 1", events)
	}
}

func wrongOf(c string) string {
	if c == "000000" {
		return "111111"
	}
	return "000000"
}

// TestNoEnumerationAndLockout: an unknown account and a wrong password get
// the same answer; five failures lock the account for 15 minutes, and the
// lock is the same for an account that does not exist.
func TestNoEnumerationAndLockout(t *testing.T) {
	b := setupLogin(t)
	ctx := context.Background()
	unknown := "900101300027"
	for _, a := range []identity.Attempt{{Subject: citizenIIN, Password: "wrong horse"}, {Subject: unknown, Password: "correct horse"}} {
		_, err := b.logins.Start(ctx, a)
		if code(err) != apierr.LoginFailed {
			t.Errorf("Start(%s) = %v; want auth.login_failed", a.Subject, err)
		}
	}
	for _, subject := range []string{citizenIIN, unknown} {
		for range 4 {
			b.logins.Start(ctx, identity.Attempt{Subject: subject, Password: "wrong horse"})
		}
		if _, err := b.logins.Start(ctx, identity.Attempt{Subject: subject, Password: "correct horse"}); code(err) != apierr.LoginLocked {
			t.Errorf("%s after five failures: %v; want auth.locked", subject, err)
		}
	}
	b.clk.Advance(15*time.Minute + time.Second)
	if _, err := b.logins.Start(ctx, identity.Attempt{Subject: citizenIIN, Password: "correct horse"}); err != nil {
		t.Errorf("after the lock: %v", err)
	}
	var locks int
	b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_event WHERE action = 'identity.login.locked'`).Scan(&locks)
	if locks != 2 {
		t.Errorf("audited locks = %d; want 2", locks)
	}
	// Malformed input is a field error, never a lookup.
	if _, err := b.logins.Start(ctx, identity.Attempt{Subject: "12345", Password: "x"}); code(err) != apierr.Validation {
		t.Errorf("short IIN: %v", err)
	}
}

func TestAddressLockout(t *testing.T) {
	b := setupLogin(t)
	ctx := context.Background()
	logins := identity.NewLogins(b.accounts, b.box, identity.LoginConfig{IPMaxFailures: 3, MaxFailures: 100})
	for _, s := range []string{"900101300027", "900101300037", "900101300047"} {
		logins.Start(ctx, identity.Attempt{Subject: s, Password: "guess", IP: "192.0.2.9"})
	}
	if _, err := logins.Start(ctx, identity.Attempt{Subject: citizenIIN, Password: "correct horse", IP: "192.0.2.9"}); code(err) != apierr.LoginLocked {
		t.Errorf("from a locked address: %v; want auth.locked", err)
	}
	if _, err := logins.Start(ctx, identity.Attempt{Subject: citizenIIN, Password: "correct horse", IP: "192.0.2.10"}); err != nil {
		t.Errorf("from another address: %v", err)
	}
}

func TestAccountsRefuseBadInput(t *testing.T) {
	b := setupLogin(t)
	ctx := context.Background()
	cases := []struct {
		p        identity.Principal
		phone    string
		password string
	}{
		{identity.Principal{Kind: identity.Citizen, Subject: "123"}, phone, "long enough"},
		{identity.Principal{Kind: identity.Citizen, Subject: citizenIIN}, "8701", "long enough"},
		{identity.Principal{Kind: identity.Citizen, Subject: citizenIIN}, phone, "short"},
		{identity.Principal{Kind: identity.Officer, Subject: "x1", Agency: "nope", Roles: []string{"r"}}, phone, "long enough"},
		{identity.Principal{Kind: identity.System, Subject: "bank"}, phone, "long enough"},
	}
	for _, c := range cases {
		if err := b.accounts.SetPerson(ctx, c.p, c.phone, c.password); !errors.Is(err, identity.ErrInvalid) {
			t.Errorf("SetPerson(%+v, %q) = %v; want ErrInvalid", c.p, c.phone, err)
		}
	}
	// Passwords are argon2id strings, never the password.
	var stored string
	b.db.Pool.QueryRow(ctx, `SELECT secret FROM identity_account WHERE subject = $1`, citizenIIN).Scan(&stored)
	if !strings.HasPrefix(stored, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(stored, "correct horse") {
		t.Errorf("stored password = %q", stored)
	}
}

// TestClientCredentials: a bank's system gets a ten-minute token for its
// secret, and the token resolves to the system with its scopes.
func TestClientCredentials(t *testing.T) {
	b := setupLogin(t)
	ctx := context.Background()
	tokens := identity.NewTokens(b.db.Pool, b.clk)
	secret, err := b.accounts.SetClient(ctx, identity.Principal{Kind: identity.System, Subject: "demo-bank", Name: "Demo Bank", Roles: []string{identity.ScopePayments}})
	if err != nil || !strings.HasPrefix(secret, identity.SecretPrefix) {
		t.Fatalf("SetClient = %q, %v", secret, err)
	}
	s := web.New(web.Config{Logger: slog.New(slog.DiscardHandler)})
	identity.Routes(s, tokens, b.logins)
	s.Use(tokens.Middleware)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	post := func(form url.Values, basicID, basicSecret string) (*http.Response, string) {
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basicID != "" {
			req.SetBasicAuth(basicID, basicSecret)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		return res, string(raw)
	}
	res, body := post(url.Values{"grant_type": {"client_credentials"}}, "demo-bank", secret)
	if res.StatusCode != 200 || !strings.Contains(body, `"token_type":"Bearer"`) || !strings.Contains(body, `"expires_in":600`) || !strings.Contains(body, `"scope":"payments"`) {
		t.Fatalf("token = %d %s", res.StatusCode, body)
	}
	token := body[strings.Index(body, "oq_"):]
	token = token[:strings.IndexByte(token, '"')]
	p, ok, err := tokens.Resolve(ctx, token)
	if !ok || err != nil || p.Actor() != "system:demo-bank" || !p.HasScope(identity.ScopePayments) {
		t.Errorf("resolved %+v %v %v", p, ok, err)
	}
	for name, c := range map[string]struct {
		form       url.Values
		id, secret string
		want       string
	}{
		"wrong secret":   {url.Values{"grant_type": {"client_credentials"}}, "demo-bank", secret + "x", "auth.client_invalid"},
		"unknown client": {url.Values{"grant_type": {"client_credentials"}, "client_id": {"nobody"}, "client_secret": {secret}}, "", "", "auth.client_invalid"},
		"form secret":    {url.Values{"grant_type": {"client_credentials"}, "client_id": {"demo-bank"}, "client_secret": {secret}}, "", "", ""},
		"password grant": {url.Values{"grant_type": {"password"}}, "demo-bank", secret, "request.validation"},
	} {
		res, body := post(c.form, c.id, c.secret)
		if c.want == "" {
			if res.StatusCode != 200 {
				t.Errorf("%s: %d %s", name, res.StatusCode, body)
			}
			continue
		}
		if !strings.Contains(body, `"code":"`+c.want+`"`) {
			t.Errorf("%s: %d %s; want %s", name, res.StatusCode, body, c.want)
		}
	}
	var issued int
	b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_event WHERE action = 'identity.token.issued'`).Scan(&issued)
	if issued != 2 {
		t.Errorf("audited token issues = %d; want 2", issued)
	}
}

func TestSessions(t *testing.T) {
	b := setupLogin(t)
	ctx := context.Background()
	sessions := identity.NewSessions(b.db.Pool, b.clk)
	who := identity.Principal{Kind: identity.Citizen, Subject: citizenIIN, Name: "Aru"}
	value, expires, err := sessions.Create(ctx, who, identity.MethodPasswordSMS, "req-1")
	if err != nil || !expires.Equal(b.clk.Now().Add(identity.SessionTTL)) {
		t.Fatalf("Create = %v %v", expires, err)
	}
	var seen []string
	h := sessions.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := identity.FromContext(r.Context())
		seen = append(seen, r.URL.Path+"="+p.Actor()+map[bool]string{true: "", false: "(anonymous)"}[ok])
	}))
	for _, path := range []string{"/applications/x", "/api/v1/services"} {
		req := httptest.NewRequest("GET", path, nil)
		req.AddCookie(&http.Cookie{Name: identity.SessionCookie, Value: value})
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	if want := "[/applications/x=citizen:" + citizenIIN + " /api/v1/services=:(anonymous)]"; strings.Join(seen, " ") != strings.Trim(want, "[]") {
		t.Errorf("seen %v; want %s (sessions never reach the API)", seen, want)
	}
	if err := sessions.End(ctx, value, "req-2"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := sessions.Resolve(ctx, value); ok {
		t.Error("an ended session resolves")
	}
	value, _, _ = sessions.Create(ctx, who, identity.MethodPasswordSMS, "")
	b.clk.Advance(identity.SessionTTL)
	if _, ok, _ := sessions.Resolve(ctx, value); ok {
		t.Error("an expired session resolves")
	}
	var audited int
	b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_event WHERE subject_iin = $1 AND action LIKE 'identity.session.%'`, citizenIIN).Scan(&audited)
	if audited != 3 {
		t.Errorf("audited session events = %d; want 3", audited)
	}
}

// TestSecretsNeverLogged: a whole sign-in over the API, failures included,
// leaves no password, code, challenge, token or client secret in the logs.
func TestSecretsNeverLogged(t *testing.T) {
	b := setupLogin(t)
	ctx := context.Background()
	var logs strings.Builder
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tokens := identity.NewTokens(b.db.Pool, b.clk)
	secret, err := b.accounts.SetClient(ctx, identity.Principal{Kind: identity.System, Subject: "demo-bank"})
	if err != nil {
		t.Fatal(err)
	}
	s := web.New(web.Config{Logger: log})
	s.Use(tokens.Middleware)
	identity.Routes(s, tokens, b.logins)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	post := func(path, ctype, body string) string {
		res, err := http.Post(srv.URL+path, ctype, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		return string(raw)
	}
	post("/api/v1/identity/login", "application/json", `{"subject":"`+citizenIIN+`","password":"wrong horse"}`)
	start := post("/api/v1/identity/login", "application/json", `{"subject":"`+citizenIIN+`","password":"correct horse"}`)
	challenge := start[strings.Index(start, `"challenge":"`)+13:]
	challenge = challenge[:strings.IndexByte(challenge, '"')]
	code := b.box.last(phone)
	post("/api/v1/identity/login/code", "application/json", `{"challenge":"`+challenge+`","code":"`+wrongOf(code)+`"}`)
	done := post("/api/v1/identity/login/code", "application/json", `{"challenge":"`+challenge+`","code":"`+code+`"}`)
	token := done[strings.Index(done, "oq_"):]
	token = token[:strings.IndexByte(token, '"')]
	post("/api/v1/oauth/token", "application/x-www-form-urlencoded", "grant_type=client_credentials&client_id=demo-bank&client_secret="+secret)
	post("/api/v1/oauth/token", "application/x-www-form-urlencoded", "grant_type=client_credentials&client_id=demo-bank&client_secret="+secret+"x")
	if !strings.Contains(logs.String(), "/api/v1/identity/login/code") {
		t.Fatalf("nothing was logged:\n%s", logs.String())
	}
	for name, s := range map[string]string{"password": "correct horse", "wrong password": "wrong horse", "code": code, "challenge": challenge,
		"token": token, "client secret": secret, "IIN": citizenIIN, "phone": phone} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("the %s is in the logs:\n%s", name, logs.String())
		}
	}
}

func TestSweep(t *testing.T) {
	b := setupLogin(t)
	ctx := context.Background()
	b.logins.Start(ctx, identity.Attempt{Subject: citizenIIN, Password: "correct horse"})
	b.logins.Start(ctx, identity.Attempt{Subject: citizenIIN, Password: "wrong horse"})
	if _, _, err := identity.NewSessions(b.db.Pool, b.clk).Create(ctx, identity.Principal{Kind: identity.Citizen, Subject: citizenIIN}, identity.MethodPasswordSMS, ""); err != nil {
		t.Fatal(err)
	}
	if n, err := identity.Sweep(ctx, b.db.Pool, b.clk); err != nil || n != 0 {
		t.Errorf("sweep of live rows = %d, %v; want 0", n, err)
	}
	b.clk.Advance(2 * 24 * time.Hour)
	if n, err := identity.Sweep(ctx, b.db.Pool, b.clk); err != nil || n != 3 {
		t.Errorf("sweep two days later = %d, %v; want 3 (challenge, session, failure count)", n, err)
	}
}
