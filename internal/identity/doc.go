// Package identity knows who calls and lets people and systems sign in.
//
// Principals are citizens (by IIN), officers of an agency with roles, and
// organisations' systems (by client id, with platform scopes). They reach a
// request in three ways, each put into its context by a middleware
// ([FromContext], [Require]):
//
//   - API clients send "Authorization: Bearer oq_..." ([Tokens.Middleware]):
//     opaque access tokens, 32 random bytes of which only the SHA-256 is
//     stored, resolved tokens cached for [CacheTTL]. They are issued by the
//     command line (`ortaq token issue`), by sign-in (POST
//     /api/v1/identity/login, then .../login/code: [AccessTTL]) and to
//     organisations' systems by the OAuth 2.0 client-credentials grant (POST
//     /api/v1/oauth/token).
//   - Portal pages carry the session cookie [SessionCookie]
//     ([Sessions.Middleware], never on /api/): a random value, only its
//     SHA-256 stored, HttpOnly, Secure over TLS, SameSite=Lax, [SessionTTL].
//
// # Sign-in
//
// [Accounts] keeps who may sign in: citizens and officers with a password
// (argon2id) and a phone, systems with a client secret (SHA-256 of 32 random
// bytes). [Logins] checks the password, then sends a six-digit one-time code
// by SMS ([CodeSender], wired to internal/notify's SMS adapter by
// internal/app): five minutes, single use, three attempts, kept only as a
// SHA-256 salted with the challenge's handle. Failures count per account (or
// client) and per address; too many within the window lock them for a while.
// An unknown account and a wrong password get the same answer after the same
// work (auth.login_failed). Every attempt, failure, lock, sign-in, session
// and token issued is on the audit trail; no password, code, secret or token
// is ever logged. [Sweep] (every [SweepEvery] on nodes with workers) deletes
// spent challenges, codes, sessions, refresh and access tokens and old
// failure counts.
//
// # OpenID Connect
//
// [Provider] is the built-in OpenID Connect provider for relying parties
// (confidential clients: system accounts with redirect URIs):
// /.well-known/openid-configuration, /oidc/jwks, /oidc/authorize (the
// authorization code with PKCE S256, required; a person not signed in goes
// through the portal's /login first), /oidc/token (authorization_code,
// refresh_token rotated on every use, a reused one revoking its family;
// client_credentials), /oidc/userinfo (bearer only). Access tokens are the
// opaque oq_ tokens; ID tokens are EdDSA JWTs signed by an Ed25519 key kept in
// the database. [External] instead delegates citizens' sign-in to an external
// provider (zitadel's certified relying party): /login/external and its
// callback start a portal session for the IIN in the ID token.
//
// Owns: tables access_token, identity_account, identity_throttle,
// identity_challenge, identity_session, identity_signing_key,
// identity_oidc_code, identity_refresh_token; routes /api/v1/identity/...,
// /api/v1/oauth/token, /.well-known/openid-configuration, /oidc/...,
// /login/external... (when configured).
//
// May import: internal/agency, internal/apierr, internal/audit,
// internal/clock, internal/i18n, internal/iin, internal/pg, internal/web.
package identity
