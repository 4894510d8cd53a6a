// Package document owns result documents: issuing them signed by the issuing
// agency's key, storing them, and verifying them for anyone.
//
// A document is a JSON Web Signature (RFC 7515, compact form) with EdDSA over
// Ed25519 (RFC 8037); its payload carries the document's id, number, kind,
// issuer, subject and fields. Anyone can verify it offline with the agency's
// public key from GET /api/v1/keys (a JWK Set), or online with
// POST /api/v1/documents/verify. Key ids are RFC 7638 thumbprints.
//
// Guarantee: at most one document per source (the application that produced
// it), enforced by a unique constraint, so a retried step never issues twice.
//
// Sharing: the holder of a document may create share codes ([Store.CreateShare]):
// ten characters from an alphabet without look-alikes, shown once, stored as
// SHA-256(document id, code), valid [ShareTTL] (24 h) and [ShareMaxUses] (5)
// openings, revocable. [Store.OpenShare] shows the document to whoever gives
// its number (or id) and a live code; every creation, use, refusal and
// revocation is audited with the holder as subject, so "who used my data"
// shows it. [ShareMaxFailures] wrong codes on one document within an hour
// lock its sharing for the rest of that hour (document.share_locked).
//
// Owns: tables signing_key, document, document_share, document_share_failure; routes /api/v1/documents/..., /api/v1/keys.
//
// May import: internal/pg, internal/apierr, internal/i18n, internal/web,
// internal/clock, internal/iin, internal/audit, internal/refnum.
package document
