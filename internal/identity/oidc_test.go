package identity_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/web"
)

type oidcBundle struct {
	loginBundle
	srv      *httptest.Server
	secret   string
	session  string
	verifier string
}

const redirectURI = "https://rp.example/callback"

func setupOIDC(t *testing.T) oidcBundle {
	t.Helper()
	b := oidcBundle{loginBundle: setupLogin(t)}
	ctx := context.Background()
	tokens := identity.NewTokens(b.db.Pool, b.clk)
	sessions := identity.NewSessions(b.db.Pool, b.clk)
	var err error
	b.secret, err = b.accounts.SetClient(ctx, identity.Principal{Kind: identity.System, Subject: "demo-rp"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.accounts.SetRedirectURIs(ctx, "demo-rp", []string{redirectURI}); err != nil {
		t.Fatal(err)
	}
	b.session, _, err = sessions.Create(ctx, identity.Principal{Kind: identity.Citizen, Subject: citizenIIN, Name: "Aru"}, identity.MethodPasswordSMS, "")
	if err != nil {
		t.Fatal(err)
	}
	s := web.New(web.Config{Logger: slog.New(slog.DiscardHandler)})
	s.Use(tokens.Middleware)
	s.Use(sessions.Middleware)
	identity.NewProvider(tokens, b.logins, "").Routes(s)
	b.srv = httptest.NewServer(s.Handler())
	t.Cleanup(b.srv.Close)
	b.verifier = strings.Repeat("v", 50)
	return b
}

var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (b oidcBundle) authorize(t *testing.T, withSession bool, mutate func(url.Values)) *http.Response {
	t.Helper()
	sum := sha256.Sum256([]byte(b.verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {"demo-rp"}, "redirect_uri": {redirectURI}, "scope": {"openid profile"},
		"state": {"st-1"}, "nonce": {"n-1"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	if mutate != nil {
		mutate(q)
	}
	req, _ := http.NewRequest("GET", b.srv.URL+"/oidc/authorize?"+q.Encode(), nil)
	if withSession {
		req.AddCookie(&http.Cookie{Name: identity.SessionCookie, Value: b.session})
	}
	res, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

func (b oidcBundle) token(t *testing.T, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", b.srv.URL+"/oidc/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("demo-rp", b.secret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	raw, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(raw, &body)
	return res.StatusCode, body
}

func getJSON(t *testing.T, u string, header ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	raw, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(raw, &body)
	return res.StatusCode, body
}

// TestAuthorizationCodeFlow: discovery, sign-in redirect, code with PKCE,
// tokens, a verifiable ID token, userinfo, single-use codes, refresh
// rotation and reuse detection.
func TestAuthorizationCodeFlow(t *testing.T) {
	b := setupOIDC(t)
	_, conf := getJSON(t, b.srv.URL+"/.well-known/openid-configuration")
	if conf["issuer"] != b.srv.URL || conf["token_endpoint"] != b.srv.URL+"/oidc/token" {
		t.Fatalf("discovery = %v", conf)
	}
	// Not signed in: to the portal's sign-in, and back here afterwards.
	res := b.authorize(t, false, nil)
	if loc := res.Header.Get("Location"); res.StatusCode != 303 || !strings.HasPrefix(loc, "/login?next=%2Foidc%2Fauthorize%3F") {
		t.Fatalf("anonymous authorize = %d %s", res.StatusCode, loc)
	}
	// An unknown redirect URI gets an error, never a redirect.
	if res := b.authorize(t, true, func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") }); res.StatusCode != 401 || res.Header.Get("Location") != "" {
		t.Errorf("foreign redirect URI = %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	// No PKCE: an error sent back to the client.
	if res := b.authorize(t, true, func(q url.Values) { q.Del("code_challenge") }); !strings.Contains(res.Header.Get("Location"), "error=invalid_request") {
		t.Errorf("without PKCE: %s", res.Header.Get("Location"))
	}
	res = b.authorize(t, true, nil)
	back, err := url.Parse(res.Header.Get("Location"))
	if err != nil || res.StatusCode != 303 || !strings.HasPrefix(back.String(), redirectURI+"?") || back.Query().Get("state") != "st-1" || back.Query().Get("iss") != b.srv.URL {
		t.Fatalf("authorize = %d %s", res.StatusCode, back)
	}
	code := back.Query().Get("code")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}, "code_verifier": {strings.Repeat("w", 50)}}
	if status, body := b.token(t, form); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("wrong verifier = %d %v", status, body)
	}
	// The code was spent by the failed attempt too: a stolen code is tried once.
	res = b.authorize(t, true, nil)
	back, _ = url.Parse(res.Header.Get("Location"))
	form.Set("code", back.Query().Get("code"))
	form.Set("code_verifier", b.verifier)
	status, tok := b.token(t, form)
	if status != 200 || tok["token_type"] != "Bearer" || tok["refresh_token"] == nil || tok["id_token"] == nil {
		t.Fatalf("token = %d %v", status, tok)
	}
	if status, body := b.token(t, form); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("code used twice = %d %v", status, body)
	}

	// The ID token verifies with the published key and says who and for whom.
	_, jwks := getJSON(t, b.srv.URL+"/oidc/jwks")
	keys, _ := jwks["keys"].([]any)
	if len(keys) != 1 {
		t.Fatalf("jwks = %v", jwks)
	}
	x, _ := base64.RawURLEncoding.DecodeString(keys[0].(map[string]any)["x"].(string))
	parts := strings.Split(tok["id_token"].(string), ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	if !ed25519.Verify(ed25519.PublicKey(x), []byte(parts[0]+"."+parts[1]), sig) {
		t.Fatal("the ID token does not verify with the JWKS key")
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	if claims["sub"] != "citizen:"+citizenIIN || claims["aud"] != "demo-rp" || claims["nonce"] != "n-1" || claims["iss"] != b.srv.URL || claims["iin"] != citizenIIN {
		t.Errorf("claims = %v", claims)
	}
	// userinfo with the access token; never with the session cookie alone.
	if status, info := getJSON(t, b.srv.URL+"/oidc/userinfo", "Authorization", "Bearer "+tok["access_token"].(string)); status != 200 || info["iin"] != citizenIIN {
		t.Errorf("userinfo = %d %v", status, info)
	}
	if status, _ := getJSON(t, b.srv.URL+"/oidc/userinfo", "Cookie", identity.SessionCookie+"="+b.session); status != 401 {
		t.Errorf("userinfo by cookie = %d; want 401", status)
	}

	// Refresh: rotated; the old one presented again revokes the family.
	first := tok["refresh_token"].(string)
	status, next := b.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first}})
	if status != 200 || next["refresh_token"] == first || next["access_token"] == nil {
		t.Fatalf("refresh = %d %v", status, next)
	}
	if status, body := b.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first}}); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("reused refresh token = %d %v", status, body)
	}
	if status, body := b.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next["refresh_token"].(string)}}); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("the family's newest token after a reuse = %d %v; want revoked", status, body)
	}
	// A wrong client secret is invalid_client.
	req, _ := http.NewRequest("POST", b.srv.URL+"/oidc/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("demo-rp", "oqs_wrong")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 401 {
		t.Errorf("wrong secret = %v %v", res.StatusCode, err)
	}
}
