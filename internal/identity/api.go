package identity

import (
	"mime"
	"net"
	"net/http"
	"time"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/web"
)

// AccessTTL is the lifetime of an access token issued by sign-in or by the
// client-credentials grant.
const AccessTTL = 10 * time.Minute

// TokenResponse is the answer of the token endpoints (RFC 6749 §5.1).
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// LoginBody is the body of POST /api/v1/identity/login.
type LoginBody struct {
	Kind     Kind   `json:"kind,omitempty"`
	Subject  string `json:"subject"`
	Password string `json:"password"`
}

// CodeBody is the body of POST /api/v1/identity/login/code.
type CodeBody struct {
	Challenge string `json:"challenge"`
	Code      string `json:"code"`
}

// ChallengeView is the answer of POST /api/v1/identity/login.
type ChallengeView struct {
	Challenge string    `json:"challenge"`
	ExpiresAt time.Time `json:"expires_at"`
	PhoneHint string    `json:"phone_hint"`
}

// ClientIP is the address r came from (the proxy's, behind one).
func ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Routes mounts sign-in for API clients: people (password, then the code
// sent by SMS, answered by a short-lived access token) and organisations'
// systems (the OAuth 2.0 client-credentials grant).
func Routes(s *web.Server, tokens *Tokens, logins *Logins) {
	s.HandleFunc("POST /api/v1/identity/login", func(w http.ResponseWriter, r *http.Request) error {
		var b LoginBody
		if err := web.DecodeJSON(w, r, &b); err != nil {
			return err
		}
		ch, err := logins.Start(r.Context(), Attempt{Kind: b.Kind, Subject: b.Subject, Password: b.Password,
			IP: ClientIP(r), Lang: web.Lang(r), RequestID: web.RequestID(r.Context())})
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, ChallengeView{Challenge: ch.Handle, ExpiresAt: ch.ExpiresAt, PhoneHint: ch.PhoneHint})
		return nil
	})
	s.HandleFunc("POST /api/v1/identity/login/code", func(w http.ResponseWriter, r *http.Request) error {
		var b CodeBody
		if err := web.DecodeJSON(w, r, &b); err != nil {
			return err
		}
		p, err := logins.Finish(r.Context(), Attempt{Challenge: b.Challenge, Code: b.Code, IP: ClientIP(r), RequestID: web.RequestID(r.Context())})
		if err != nil {
			return err
		}
		token, _, err := tokens.Issue(r.Context(), p, AccessTTL, "sign-in "+MethodPasswordSMS)
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		web.WriteJSON(w, http.StatusOK, TokenResponse{AccessToken: token, TokenType: "Bearer", ExpiresIn: int(AccessTTL.Seconds())})
		return nil
	})
	// OAuth 2.0 token endpoint (RFC 6749 §4.4): form-encoded, the client's
	// credentials in HTTP Basic or in the form.
	s.HandleFunc("POST /api/v1/oauth/token", func(w http.ResponseWriter, r *http.Request) error {
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
			return apierr.New(apierr.UnsupportedMedia)
		}
		r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
		if err := r.ParseForm(); err != nil {
			return apierr.New(apierr.Validation, apierr.FieldError{Path: "/grant_type", Code: apierr.FieldFormat})
		}
		if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
			code := apierr.FieldOneOf
			if gt == "" {
				code = apierr.FieldRequired
			}
			return apierr.New(apierr.Validation, apierr.FieldError{Path: "/grant_type", Code: code})
		}
		id, secret, basic := r.BasicAuth()
		if !basic {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		p, err := logins.Client(r.Context(), id, secret, ClientIP(r), web.RequestID(r.Context()))
		if err != nil {
			if basic {
				w.Header().Set("WWW-Authenticate", `Basic realm="ortaq"`)
			}
			return err
		}
		token, _, err := tokens.Issue(r.Context(), p, AccessTTL, "client credentials")
		if err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		scope := ""
		for i, s := range p.Roles {
			if i > 0 {
				scope += " "
			}
			scope += s
		}
		web.WriteJSON(w, http.StatusOK, TokenResponse{AccessToken: token, TokenType: "Bearer", ExpiresIn: int(AccessTTL.Seconds()), Scope: scope})
		return nil
	})
}
