// Package exchange is the central authority of the exchange gateway
// (X-Road-class secure data exchange): the register of members (classes GOV,
// COM, NGO, ...), their subsystems and REST services with OpenAPI
// descriptions, access rights, the platform CA that certifies gateway nodes,
// and the signed catalogue snapshot gateways download. `ortaq serve` mounts
// it; the gateway nodes themselves are internal/exchange/gateway.
//
// The CA is Ed25519 (crypto/x509): its key signs gateway certificates on
// enrolment and every catalogue snapshot. The key is created on first use
// and kept in the database (exchange_ca); a production centre would keep it
// in an HSM. An administrator creates a one-time enrolment token for a
// member (only its SHA-256 is stored, it expires after EnrolmentTTL); the
// member's gateway sends it with a certificate request and its peer
// address, and gets its certificate and the CA certificate. Enrolling again
// rotates the certificate (both stay valid until the old one is revoked);
// revocation reaches gateways with the next catalogue.
//
// The centre is also the gateways' time-stamping service: it signs a seal's
// digest with its time and the CA key (POST /api/v1/exchange/timestamp).
//
// Writes need the administrative bearer token and each is audited.
//
// Owns: tables exchange_member, exchange_subsystem, exchange_service,
// exchange_access, exchange_ca, exchange_enrolment, exchange_certificate;
// routes /api/v1/exchange/....
//
// May import: internal/pg, internal/apierr, internal/web, internal/clock,
// internal/audit, internal/exchange/xroad, internal/exchange/catalogue.
package exchange
