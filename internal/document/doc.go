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
// Owns: tables signing_key, document; routes /api/v1/documents/..., /api/v1/keys.
//
// May import: internal/pg, internal/apierr, internal/i18n, internal/web,
// internal/clock, internal/iin, internal/audit, internal/refnum.
package document
