package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	httphelper "github.com/zitadel/oidc/v3/pkg/http"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/web"
)

// ExternalConfig delegates citizens' sign-in to an external OpenID Connect
// provider (a national identity provider) instead of the built-in one.
type ExternalConfig struct {
	Issuer       string // the provider's issuer URL; its discovery document is read at start
	ClientID     string
	ClientSecret string
	// RedirectURI is this platform's callback as registered at the
	// provider: <public URL>/login/external/callback.
	RedirectURI string
	// IINClaim names the ID token's claim holding the citizen's IIN;
	// default "iin".
	IINClaim string
	// HTTP is the client for the provider (discovery, token, keys); nil
	// means http.DefaultClient.
	HTTP *http.Client
	Log  *slog.Logger
}

// External signs citizens in through an external OpenID Connect provider
// (the relying party's authorization-code flow with PKCE, state in an
// encrypted cookie) and starts a portal session for them.
type External struct {
	cfg      ExternalConfig
	rp       rp.RelyingParty
	sessions *Sessions
}

// MethodExternal is the auth method recorded on sessions signed in through
// an external provider.
const MethodExternal = "oidc"

// NewExternal reads the provider's discovery document and returns the
// relying party. The state and PKCE cookies are encrypted with keys derived
// from the client secret, so every node of the platform reads them.
func NewExternal(ctx context.Context, cfg ExternalConfig, sessions *Sessions) (*External, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.ClientSecret == "" || cfg.RedirectURI == "" {
		return nil, fmt.Errorf("%w: an external provider needs an issuer, a client id, a client secret and a redirect URI", ErrInvalid)
	}
	if cfg.IINClaim == "" {
		cfg.IINClaim = "iin"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	hashKey := sha256.Sum256([]byte("ortaq external oidc cookie hash\x00" + cfg.ClientSecret))
	encKey := sha256.Sum256([]byte("ortaq external oidc cookie encryption\x00" + cfg.ClientSecret))
	cookieOpts := []httphelper.CookieHandlerOpt{httphelper.WithMaxAge(600), httphelper.WithSameSite(http.SameSiteLaxMode)}
	if strings.HasPrefix(cfg.RedirectURI, "http://") {
		cookieOpts = append(cookieOpts, httphelper.WithUnsecure())
	}
	cookies := httphelper.NewCookieHandler(hashKey[:], encKey[:], cookieOpts...)
	e := &External{cfg: cfg, sessions: sessions}
	opts := []rp.Option{
		rp.WithPKCE(cookies),
		rp.WithSigningAlgsFromDiscovery(),
		rp.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, errorType, errorDesc, state string) {
			cfg.Log.WarnContext(r.Context(), "external sign-in refused by the provider", "error", errorType, "request_id", web.RequestID(r.Context()))
			web.Fail(w, r, apierr.New(apierr.LoginFailed))
		}),
		rp.WithUnauthorizedHandler(func(w http.ResponseWriter, r *http.Request, desc, state string) {
			cfg.Log.WarnContext(r.Context(), "external sign-in failed", "reason", desc, "request_id", web.RequestID(r.Context()))
			web.Fail(w, r, apierr.New(apierr.LoginFailed))
		}),
	}
	if cfg.HTTP != nil {
		opts = append(opts, rp.WithHTTPClient(cfg.HTTP))
	}
	party, err := rp.NewRelyingPartyOIDC(ctx, cfg.Issuer, cfg.ClientID, cfg.ClientSecret, cfg.RedirectURI, []string{oidc.ScopeOpenID, oidc.ScopeProfile}, opts...)
	if err != nil {
		return nil, fmt.Errorf("external OpenID Connect provider %s: %w", cfg.Issuer, err)
	}
	e.rp = party
	return e, nil
}

// Routes mounts GET /login/external?next=PATH (to the provider) and GET
// /login/external/callback (back from it: a session, then to PATH).
func (e *External) Routes(s *web.Server) {
	s.Handle("GET /login/external", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The state carries where to go afterwards; it is checked against
		// its cookie, so it cannot be forged.
		var raw [16]byte
		rand.Read(raw[:])
		state := base64.RawURLEncoding.EncodeToString(raw[:]) + "." + base64.RawURLEncoding.EncodeToString([]byte(localPath(r.URL.Query().Get("next"))))
		rp.AuthURLHandler(func() string { return state }, e.rp)(w, r)
	}))
	s.Handle("GET /login/external/callback", rp.CodeExchangeHandler(e.callback, e.rp))
}

func (e *External) callback(w http.ResponseWriter, r *http.Request, tokens *oidc.Tokens[*oidc.IDTokenClaims], state string, _ rp.RelyingParty) {
	claims := tokens.IDTokenClaims
	raw, _ := claims.Claims[e.cfg.IINClaim].(string)
	n, err := iin.Parse(raw)
	if err != nil {
		e.cfg.Log.WarnContext(r.Context(), "external ID token without a valid IIN", "claim", e.cfg.IINClaim, "request_id", web.RequestID(r.Context()))
		web.Fail(w, r, apierr.New(apierr.LoginFailed))
		return
	}
	p := Principal{Kind: Citizen, Subject: n.String(), Name: claims.Name}
	if len([]rune(p.Name)) > 200 {
		p.Name = ""
	}
	value, expires, err := e.sessions.Create(r.Context(), p, MethodExternal, web.RequestID(r.Context()))
	if err != nil {
		web.Fail(w, r, apierr.Wrap(apierr.Unavailable, err))
		return
	}
	SetCookie(w, r, value, expires)
	next := "/"
	if _, enc, ok := strings.Cut(state, "."); ok {
		if b, err := base64.RawURLEncoding.DecodeString(enc); err == nil {
			next = localPath(string(b))
		}
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// localPath keeps only local paths: never an open redirect.
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/"
	}
	return next
}
