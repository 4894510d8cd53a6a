// Package consent owns the consent ledger: an organisation's system or an
// agency asks for a person's data items (registry attributes such as
// "population.last_name", or exchange services as "service:KZ/GOV/200/x/y")
// for a purpose and until a date; the person approves with a one-time code
// (six digits sent by SMS through internal/notify, as 1414 does for
// Kazakhstan's personal-data access control service, KDP) or, signed in,
// through the API; they may revoke at any time, and a consent ends at its
// date. Every grant and revocation yields a receipt: a compact JWS (EdDSA)
// signed with the ledger's own Ed25519 key, verifiable online
// (POST /api/v1/consents/receipts/verify) or offline with the keys at
// GET /api/v1/consents/keys.
//
// # Enforcement
//
// [Ledger.Check] is how other capabilities ask "may this requester read
// these items of this person for this purpose now?". It answers a [Basis]
// (the consent used, recorded as consent.used in the caller's transaction)
// or an *apierr.Error with a stable code: consent.missing, consent.expired,
// consent.revoked. A refusal is recorded in its own transaction (audit event
// consent.denied and outbox event consent.denied for the data-protection
// officer), so it survives the caller's rollback. Granted consents are
// kept in memory for [CacheTTL] (1 s); the node that revokes forgets them at
// once, so a revoked consent is refused within a second on every node.
// Refusals are never cached.
//
// Exchange gateways decide their checks alone, from a replica of the
// consents of the exchange's clients: they follow the consent feed
// (GET /api/v1/consents/feed, systems with the exchange-gateway scope; see
// feed.go for its commit-safe cursor and the wake-up of long-polls by
// LISTEN/NOTIFY, [Ledger.ListenFeed]) and report the calls they passed or
// refused afterwards (POST /api/v1/consents/access-reports,
// [Ledger.RecordAccess]): consent.used, exchange.personal_data (a legal
// basis), or consent.denied with the officer's alert, each call once.
//
// The process engine calls Check for a service's data source marked
// consent: true through an interface of its own, with Requester "agency:<the
// service's agency>", Items "registry.attribute" for each attribute the
// source reads, the source's purpose, Actor "system:process", Channel
// "process" and Object "application:<id>", in the step's transaction.
//
// # The one-time code
//
// Six digits from crypto/rand, valid five minutes, single use; only
// SHA-256(consent id, code) is stored; five wrong tries spend it; a request
// may send at most three codes. Codes never reach a log, an error or the
// audit trail.
//
// Owns: tables consent, consent_revision, consent_key, consent_receipt,
// consent_policy, consent_policy_revision, consent_data_agreement,
// consent_individual, consent_access_report (and the sequence
// consent_change_seq, the trigger consent_feed_stamp, NOTIFY channel
// consent_feed); routes /api/v1/consents..., the GovStack Consent API
// under /gs/consent/; outbox topics consent.granted, consent.revoked,
// consent.denied (and notify.message.requested for the codes).
//
// May import: internal/pg, internal/audit, internal/outbox, internal/apierr,
// internal/clock, internal/i18n, internal/identity, internal/iin,
// internal/web.
package consent
