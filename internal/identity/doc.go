// Package identity knows who calls: principals (citizens, officers of an
// agency, organisations' systems) and the opaque bearer access tokens that
// stand for them. Tokens are issued by the command line now (`ortaq token
// issue`) and by the OpenID Connect login later; every API call presents one
// as "Authorization: Bearer oq_...", and [Tokens.Middleware] puts its
// principal into the request's context for handlers ([Require],
// [FromContext]).
//
// A token is 32 random bytes, shown once when issued; the database keeps only
// its SHA-256, so a copy of the database lets nobody call the API. Resolved
// tokens are kept in memory for [CacheTTL], so a revocation reaches every
// node within that time. Neither a token nor its hash is ever logged.
//
// Owns: table access_token.
//
// May import: internal/agency, internal/apierr, internal/clock, internal/iin,
// internal/pg, internal/web.
package identity
