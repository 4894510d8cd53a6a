// Package esign verifies the electronic digital signatures (ЭЦП/ЭЦҚ) of
// citizens and organisations, and keeps the platform's trust store.
//
// A signer sends a [Signature] over bytes the platform gave them: a bare
// ("raw") signature with the certificate chain, or a detached CMS/PKCS#7
// SignedData as NCALayer's createCMSSignatureFromBase64 (attach=false)
// makes. [Verifier.Verify] checks the signature, then the signer's
// certificate: valid at the given time, chained to an active trust root,
// neither it nor its CAs revoked, meant for signing (digitalSignature or
// contentCommitment key usage), with an IIN in its subject
// (SERIALNUMBER=IIN<12 digits>, check digit included). It returns the
// [Signer]: IIN, BIN (OU=BIN... or organizationIdentifier), name, serial,
// issuer and the names of NCA RK's role OIDs found in the extended key
// usage. Every failure is an *apierr.Error with a signature.* code and the
// field at fault (/signature/value, /signature/chain/0, ...).
//
// Algorithms: RSA PKCS#1 v1.5 and ECDSA P-256 with SHA-256 (raw and CMS),
// Ed25519 (raw). GOST (OIDs 1.2.398.3.10.*) is refused with
// signature.algorithm_unsupported: it needs KalkanCrypt or NCANode, which
// the platform does not ship; SHA-1 is refused too. CMS is read with
// encoding/asn1, so DER only; signed attributes (content type, SHA-256
// message digest) are required; timestamps (TSP) in unsigned attributes are
// ignored, and the time of verification is the caller's. Revocation is
// checked against the revocations stored here (issuer and serial), not
// against NCA RK's CRL or OCSP.
//
// The trust store (roots and revocations) is cached per node for
// [CacheTTL]: an edit on this node drops the cache at once, an edit on
// another node is seen within the minute. Every edit writes an audit event
// in its transaction. Administrators edit it through /api/v1/esign/...
// with the administrative bearer token.
//
// For tests, demos and development without NCALayer, [NewDemoCA] makes a
// root CA ("Ortaq DEMO CA — not for production"), [DemoCA.Issue] issues a
// person's certificate shaped like NCA RK's, and [Key.Sign] signs raw or
// CMS; `ortaq esign demo-ca|issue|sign|trust` does the same from the
// command line.
//
// Owns: tables esign_trust_root, esign_revoked; routes /api/v1/esign/....
//
// May import: internal/pg, internal/apierr, internal/web, internal/clock,
// internal/audit, internal/iin.
package esign
