package identity

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/web"
)

// The lifetimes of what the OpenID Connect provider hands out.
const (
	CodeTTL    = time.Minute
	RefreshTTL = 8 * time.Hour
	IDTokenTTL = 10 * time.Minute
)

// Provider is the built-in OpenID Connect provider: discovery, JWKS, the
// authorization-code flow with PKCE (S256, required) signing people in
// through the portal's /login, the token endpoint (authorization_code,
// refresh_token rotated on every use, client_credentials) and userinfo.
// Relying parties are confidential clients: system accounts with redirect
// URIs ([Accounts.SetRedirectURIs]). Access tokens are the platform's opaque
// oq_ tokens; the ID token is a JWT signed with an Ed25519 key kept in the
// database (EdDSA).
type Provider struct {
	tokens *Tokens
	logins *Logins
	issuer string

	mu  sync.Mutex
	key *signingKey
}

type signingKey struct {
	kid string
	key ed25519.PrivateKey
}

// NewProvider returns the provider. issuer is its public base URL (e.g.
// https://ortaq.example.kz); empty means the scheme and host of each
// request, which suits development only.
func NewProvider(tokens *Tokens, logins *Logins, issuer string) *Provider {
	return &Provider{tokens: tokens, logins: logins, issuer: strings.TrimRight(issuer, "/")}
}

// SetRedirectURIs sets where a system, as an OpenID Connect relying party,
// may have people sent back: absolute http(s) URLs without a fragment,
// compared exactly.
func (a *Accounts) SetRedirectURIs(ctx context.Context, clientID string, uris []string) error {
	for _, u := range uris {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" || p.Fragment != "" || len(u) > 500 {
			return fmt.Errorf("%w: redirect URI %q: an absolute http(s) URL without a fragment", ErrInvalid, u)
		}
	}
	tag, err := a.pool.Exec(ctx, `UPDATE identity_account SET redirect_uris = $2, updated_at = $3 WHERE kind = 'system' AND subject = $1`,
		clientID, append([]string{}, uris...), a.clk.Now())
	if err != nil {
		return fmt.Errorf("set redirect URIs: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNoAccount
	}
	return nil
}

func (o *Provider) issuerOf(r *http.Request) string {
	if o.issuer != "" {
		return o.issuer
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// Routes mounts the provider.
func (o *Provider) Routes(s *web.Server) {
	s.Handle("GET /.well-known/openid-configuration", http.HandlerFunc(o.discovery))
	s.Handle("GET /oidc/jwks", http.HandlerFunc(o.jwks))
	s.Handle("GET /oidc/authorize", http.HandlerFunc(o.authorize))
	s.Handle("POST /oidc/token", http.HandlerFunc(o.token))
	s.HandleFunc("GET /oidc/userinfo", o.userinfo)
}

func (o *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	iss := o.issuerOf(r)
	web.WriteJSON(w, http.StatusOK, map[string]any{
		"issuer":                                         iss,
		"authorization_endpoint":                         iss + "/oidc/authorize",
		"token_endpoint":                                 iss + "/oidc/token",
		"userinfo_endpoint":                              iss + "/oidc/userinfo",
		"jwks_uri":                                       iss + "/oidc/jwks",
		"response_types_supported":                       []string{"code"},
		"grant_types_supported":                          []string{"authorization_code", "refresh_token", "client_credentials"},
		"subject_types_supported":                        []string{"public"},
		"id_token_signing_alg_values_supported":          []string{"EdDSA"},
		"token_endpoint_auth_methods_supported":          []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":               []string{"S256"},
		"scopes_supported":                               []string{"openid", "profile"},
		"claims_supported":                               []string{"sub", "name", "iin", "kind", "agency", "roles", "acr", "amr", "auth_time", "nonce"},
		"authorization_response_iss_parameter_supported": true,
	})
}

// signer returns the newest signing key, making the first one.
func (o *Provider) signer(ctx context.Context) (signingKey, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.key != nil {
		return *o.key, nil
	}
	pool := o.tokens.pool
	var k signingKey
	var priv []byte
	err := pool.QueryRow(ctx, `SELECT kid, private FROM identity_signing_key ORDER BY created_at DESC, kid LIMIT 1`).Scan(&k.kid, &priv)
	if errors.Is(err, pgx.ErrNoRows) {
		pub, key, _ := ed25519.GenerateKey(rand.Reader)
		kid := thumbprint(pub)
		if _, err := pool.Exec(ctx, `INSERT INTO identity_signing_key (kid, private, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			kid, []byte(key), o.tokens.clk.Now()); err != nil {
			return signingKey{}, fmt.Errorf("make signing key: %w", err)
		}
		err = pool.QueryRow(ctx, `SELECT kid, private FROM identity_signing_key ORDER BY created_at DESC, kid LIMIT 1`).Scan(&k.kid, &priv)
	}
	if err != nil {
		return signingKey{}, fmt.Errorf("read signing key: %w", err)
	}
	k.key = ed25519.PrivateKey(priv)
	o.key = &k
	return k, nil
}

// thumbprint is the RFC 7638 thumbprint of an Ed25519 public key.
func thumbprint(pub ed25519.PublicKey) string {
	h := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func (o *Provider) jwks(w http.ResponseWriter, r *http.Request) {
	if _, err := o.signer(r.Context()); err != nil {
		web.Fail(w, r, apierr.Wrap(apierr.Unavailable, err))
		return
	}
	rows, err := o.tokens.pool.Query(r.Context(), `SELECT kid, private FROM identity_signing_key ORDER BY created_at DESC`)
	if err != nil {
		web.Fail(w, r, apierr.Wrap(apierr.Unavailable, err))
		return
	}
	keys := []map[string]string{}
	for rows.Next() {
		var kid string
		var priv []byte
		if err := rows.Scan(&kid, &priv); err != nil {
			rows.Close()
			web.Fail(w, r, apierr.Wrap(apierr.Unavailable, err))
			return
		}
		pub := ed25519.PrivateKey(priv).Public().(ed25519.PublicKey)
		keys = append(keys, map[string]string{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(pub),
			"kid": kid, "use": "sig", "alg": "EdDSA"})
	}
	rows.Close()
	w.Header().Set("Cache-Control", "public, max-age=300")
	web.WriteJSON(w, http.StatusOK, map[string]any{"keys": keys})
}

// client returns a relying party's redirect URIs; ok false for an unknown
// client.
func (o *Provider) client(ctx context.Context, id string) (uris []string, ok bool, err error) {
	if !plainID.MatchString(id) {
		return nil, false, nil
	}
	err = o.tokens.pool.QueryRow(ctx, `SELECT redirect_uris FROM identity_account WHERE kind = 'system' AND subject = $1 AND disabled_at IS NULL`, id).Scan(&uris)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	return uris, err == nil, err
}

func (o *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	clientID, redirect := q.Get("client_id"), q.Get("redirect_uri")
	uris, ok, err := o.client(r.Context(), clientID)
	if err != nil {
		web.Fail(w, r, apierr.Wrap(apierr.Unavailable, err))
		return
	}
	// An unknown client or redirect URI gets no redirect: it could be
	// anyone's site.
	if !ok || !slices.Contains(uris, redirect) {
		web.Fail(w, r, apierr.New(apierr.ClientInvalid))
		return
	}
	back := func(params url.Values) {
		params.Set("iss", o.issuerOf(r))
		if st := q.Get("state"); st != "" {
			params.Set("state", st)
		}
		sep := "?"
		if strings.Contains(redirect, "?") {
			sep = "&"
		}
		http.Redirect(w, r, redirect+sep+params.Encode(), http.StatusSeeOther)
	}
	scopes := strings.Fields(q.Get("scope"))
	challenge := q.Get("code_challenge")
	switch {
	case q.Get("response_type") != "code":
		back(url.Values{"error": {"unsupported_response_type"}})
		return
	case !slices.Contains(scopes, "openid"):
		back(url.Values{"error": {"invalid_scope"}, "error_description": {"scope must include openid"}})
		return
	case q.Get("code_challenge_method") != "S256" || len(challenge) != 43:
		back(url.Values{"error": {"invalid_request"}, "error_description": {"PKCE with S256 is required"}})
		return
	case len(q.Get("nonce")) > 200 || len(q.Get("state")) > 500:
		back(url.Values{"error": {"invalid_request"}})
		return
	}
	who, signedIn := FromContext(r.Context())
	if !signedIn || (who.Kind != Citizen && who.Kind != Officer) || q.Get("prompt") == "login" {
		if q.Get("prompt") == "none" {
			back(url.Values{"error": {"login_required"}})
			return
		}
		next := r.URL.Path + "?" + strings.ReplaceAll(r.URL.Query().Encode(), "prompt=login", "prompt=consent")
		http.Redirect(w, r, "/login?next="+url.QueryEscape(next), http.StatusSeeOther)
		return
	}
	var raw [32]byte
	rand.Read(raw[:])
	code := base64.RawURLEncoding.EncodeToString(raw[:])
	h := sha256.Sum256([]byte(code))
	now := o.tokens.clk.Now()
	err = pgx.BeginFunc(r.Context(), o.tokens.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(r.Context(), `INSERT INTO identity_oidc_code (hash, client_id, kind, subject, name, agency, roles, redirect_uri,
			code_challenge, nonce, scope, auth_time, expires_at) VALUES ($1, $2, $3, $4, $5, nullif($6, ''), $7, $8, $9, $10, $11, $12, $13)`,
			h[:], clientID, string(who.Kind), who.Subject, who.Name, who.Agency, append([]string{}, who.Roles...), redirect,
			challenge, q.Get("nonce"), strings.Join(scopes, " "), now, now.Add(CodeTTL))
		if err != nil {
			return err
		}
		return audit.Record(r.Context(), tx, sessionEventFor(who, now, "identity.oidc.code_issued", "client:"+clientID, web.RequestID(r.Context())))
	})
	if err != nil {
		web.Fail(w, r, apierr.Wrap(apierr.Unavailable, err))
		return
	}
	back(url.Values{"code": {code}})
}

func sessionEventFor(p Principal, now time.Time, action, object, requestID string) audit.Event {
	ev := audit.Event{At: now, Actor: p.Actor(), Action: action, Object: object, Purpose: "sign-in", RequestID: requestID}
	if p.Kind == Citizen {
		ev.SubjectIIN = p.Subject
	}
	return ev
}

// oauthError answers the token endpoint's errors as RFC 6749 §5.2 asks,
// with the platform's stable code beside.
func oauthError(w http.ResponseWriter, r *http.Request, status int, errCode, description string, code apierr.Code) {
	w.Header().Set("Cache-Control", "no-store")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="ortaq"`)
	}
	web.WriteJSON(w, status, map[string]string{"error": errCode, "error_description": description, "code": string(code),
		"request_id": web.RequestID(r.Context())})
}

// OIDCTokenResponse is the token endpoint's answer.
type OIDCTokenResponse struct {
	TokenResponse
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
}

// grant is who a code or refresh token stands for.
type grant struct {
	p        Principal
	client   string
	scope    string
	nonce    string
	authTime time.Time
	family   uuid.UUID
}

func (o *Provider) token(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		oauthError(w, r, http.StatusBadRequest, "invalid_request", "the body is not a form", apierr.Validation)
		return
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	client, err := o.logins.Client(r.Context(), id, secret, ClientIP(r), web.RequestID(r.Context()))
	if err != nil {
		e := apierr.From(err)
		if e.Status() >= 500 {
			web.Fail(w, r, err)
			return
		}
		oauthError(w, r, e.Status(), "invalid_client", "client authentication failed", e.Code)
		return
	}
	var g grant
	switch r.PostForm.Get("grant_type") {
	case "client_credentials":
		o.respond(w, r, grant{p: client, client: client.Subject}, false)
		return
	case "authorization_code":
		g, err = o.redeemCode(r.Context(), client.Subject, r.PostForm.Get("code"), r.PostForm.Get("redirect_uri"), r.PostForm.Get("code_verifier"))
	case "refresh_token":
		g, err = o.rotate(r.Context(), client.Subject, r.PostForm.Get("refresh_token"), web.RequestID(r.Context()))
	default:
		oauthError(w, r, http.StatusBadRequest, "unsupported_grant_type", "use authorization_code, refresh_token or client_credentials", apierr.Validation)
		return
	}
	if errors.Is(err, errGrant) {
		oauthError(w, r, http.StatusBadRequest, "invalid_grant", "the code or refresh token is unknown, used, expired or not this client's", apierr.ChallengeExpired)
		return
	}
	if err != nil {
		web.Fail(w, r, apierr.Wrap(apierr.Unavailable, err))
		return
	}
	o.respond(w, r, g, true)
}

var errGrant = errors.New("invalid grant")

func (o *Provider) redeemCode(ctx context.Context, client, code, redirect, verifier string) (grant, error) {
	if code == "" || len(code) > 100 || verifier == "" || len(verifier) < 43 || len(verifier) > 128 {
		return grant{}, errGrant
	}
	h := sha256.Sum256([]byte(code))
	var g grant
	err := pgx.BeginFunc(ctx, o.tokens.pool, func(tx pgx.Tx) error {
		var kind, redirectURI, challenge string
		var expires time.Time
		var used *time.Time
		err := tx.QueryRow(ctx, `SELECT client_id, kind, subject, name, coalesce(agency, ''), roles, redirect_uri, code_challenge, nonce, scope,
			auth_time, expires_at, used_at FROM identity_oidc_code WHERE hash = $1 FOR UPDATE`, h[:]).
			Scan(&g.client, &kind, &g.p.Subject, &g.p.Name, &g.p.Agency, &g.p.Roles, &redirectURI, &challenge, &g.nonce, &g.scope, &g.authTime, &expires, &used)
		if errors.Is(err, pgx.ErrNoRows) {
			return errGrant
		}
		if err != nil {
			return err
		}
		g.p.Kind = Kind(kind)
		if len(g.p.Roles) == 0 {
			g.p.Roles = nil
		}
		sum := sha256.Sum256([]byte(verifier))
		ok := used == nil && o.tokens.clk.Now().Before(expires) && g.client == client && redirectURI == redirect &&
			subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
		if _, err := tx.Exec(ctx, `UPDATE identity_oidc_code SET used_at = coalesce(used_at, $2) WHERE hash = $1`, h[:], o.tokens.clk.Now()); err != nil {
			return err
		}
		if !ok {
			return errGrant
		}
		g.family, err = uuid.NewV7()
		return err
	})
	if errors.Is(err, errGrant) {
		return grant{}, errGrant
	}
	return g, err
}

// rotate spends a refresh token. A token presented a second time means it
// was copied: its whole family is revoked.
func (o *Provider) rotate(ctx context.Context, client, token, requestID string) (grant, error) {
	if token == "" || len(token) > 100 {
		return grant{}, errGrant
	}
	h := sha256.Sum256([]byte(token))
	now := o.tokens.clk.Now()
	var g grant
	var reused bool
	err := pgx.BeginFunc(ctx, o.tokens.pool, func(tx pgx.Tx) error {
		var kind string
		var expires time.Time
		var used, revoked *time.Time
		err := tx.QueryRow(ctx, `SELECT family, client_id, kind, subject, name, coalesce(agency, ''), roles, scope, created_at, expires_at, used_at, revoked_at
			FROM identity_refresh_token WHERE hash = $1 FOR UPDATE`, h[:]).
			Scan(&g.family, &g.client, &kind, &g.p.Subject, &g.p.Name, &g.p.Agency, &g.p.Roles, &g.scope, &g.authTime, &expires, &used, &revoked)
		if errors.Is(err, pgx.ErrNoRows) {
			return errGrant
		}
		if err != nil {
			return err
		}
		g.p.Kind = Kind(kind)
		if len(g.p.Roles) == 0 {
			g.p.Roles = nil
		}
		if g.client != client || revoked != nil || !now.Before(expires) {
			return errGrant
		}
		// A disabled account's refresh tokens end with it. (People signed in
		// through an external provider have no account here.)
		var disabled bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM identity_account WHERE kind = $1 AND subject = $2 AND disabled_at IS NOT NULL)`,
			kind, g.p.Subject).Scan(&disabled); err != nil {
			return err
		}
		if disabled {
			return errGrant
		}
		if used != nil {
			reused = true
			if _, err := tx.Exec(ctx, `UPDATE identity_refresh_token SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL`, g.family, now); err != nil {
				return err
			}
			return audit.Record(ctx, tx, sessionEventFor(g.p, now, "identity.oidc.refresh_reused", "client:"+client, requestID))
		}
		_, err = tx.Exec(ctx, `UPDATE identity_refresh_token SET used_at = $2 WHERE hash = $1`, h[:], now)
		return err
	})
	if reused || errors.Is(err, errGrant) {
		return grant{}, errGrant
	}
	return g, err
}

// respond issues an access token, and for people a rotated refresh token
// and an ID token.
func (o *Provider) respond(w http.ResponseWriter, r *http.Request, g grant, person bool) {
	ctx := r.Context()
	access, _, err := o.tokens.Issue(ctx, g.p, AccessTTL, "oidc "+g.client)
	if err != nil {
		web.Fail(w, r, err)
		return
	}
	res := OIDCTokenResponse{TokenResponse: TokenResponse{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(AccessTTL.Seconds()), Scope: g.scope}}
	if !person {
		res.Scope = strings.Join(g.p.Roles, " ")
		w.Header().Set("Cache-Control", "no-store")
		web.WriteJSON(w, http.StatusOK, res)
		return
	}
	var raw [32]byte
	rand.Read(raw[:])
	res.RefreshToken = "oqr_" + base64.RawURLEncoding.EncodeToString(raw[:])
	h := sha256.Sum256([]byte(res.RefreshToken))
	now := o.tokens.clk.Now()
	_, err = o.tokens.pool.Exec(ctx, `INSERT INTO identity_refresh_token (hash, family, client_id, kind, subject, name, agency, roles, scope, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, nullif($7, ''), $8, $9, $10, $11)`,
		h[:], g.family, g.client, string(g.p.Kind), g.p.Subject, g.p.Name, g.p.Agency, append([]string{}, g.p.Roles...), g.scope, now, now.Add(RefreshTTL))
	if err != nil {
		web.Fail(w, r, apierr.Wrap(apierr.Unavailable, err))
		return
	}
	key, err := o.signer(ctx)
	if err != nil {
		web.Fail(w, r, apierr.Wrap(apierr.Unavailable, err))
		return
	}
	claims := map[string]any{"iss": o.issuerOf(r), "sub": g.p.Actor(), "aud": g.client, "iat": now.Unix(), "exp": now.Add(IDTokenTTL).Unix(),
		"auth_time": g.authTime.Unix(), "kind": string(g.p.Kind), "acr": LoASubstantial, "amr": []string{"pwd", "sms"}}
	if g.nonce != "" {
		claims["nonce"] = g.nonce
	}
	if g.p.Name != "" {
		claims["name"] = g.p.Name
	}
	if g.p.Kind == Citizen {
		claims["iin"] = g.p.Subject
	} else if g.p.Kind == Officer {
		claims["agency"], claims["roles"] = g.p.Agency, g.p.Roles
	}
	res.IDToken, err = signJWT(key, claims)
	if err != nil {
		web.Fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	web.WriteJSON(w, http.StatusOK, res)
}

func signJWT(k signingKey, claims map[string]any) (string, error) {
	head, err := json.Marshal(map[string]string{"alg": "EdDSA", "typ": "JWT", "kid": k.kid})
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := base64.RawURLEncoding.EncodeToString(head) + "." + base64.RawURLEncoding.EncodeToString(body)
	return input + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(k.key, []byte(input))), nil
}

// userinfo answers who the bearer token stands for (people only).
func (o *Provider) userinfo(w http.ResponseWriter, r *http.Request) error {
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		w.Header().Set("WWW-Authenticate", `Bearer`)
		return apierr.New(apierr.Unauthorized)
	}
	p, err := Require(r)
	if err != nil {
		return err
	}
	if p.Kind != Citizen && p.Kind != Officer {
		return apierr.New(apierr.Forbidden)
	}
	info := map[string]any{"sub": p.Actor(), "kind": string(p.Kind)}
	if p.Name != "" {
		info["name"] = p.Name
	}
	if p.Kind == Citizen {
		info["iin"] = p.Subject
	} else {
		info["agency"], info["roles"] = p.Agency, p.Roles
	}
	w.Header().Set("Cache-Control", "no-store")
	web.WriteJSON(w, http.StatusOK, info)
	return nil
}
