// Package gateway is one member's exchange node, run by `ortaq gateway
// serve`: a client listener that speaks X-Road's REST client protocol to the
// member's own information systems, and a peer listener (mutual TLS, TLS 1.3)
// for the other members' gateways.
//
// A call goes client → gateway A → gateway B → provider. Gateway A checks
// the caller's subsystem, the access right and the personal-data basis on
// its signed catalogue, signs the request head (Ed25519, the node's
// enrolled key) and streams the body, with the body's SHA-256 and a second
// signature in HTTP trailers. Gateway B authenticates A by its certificate
// (issued by the platform CA, listed and not revoked in the catalogue),
// verifies the head signature, refuses replays (message id within the
// clock window, remembered in memory and reloaded from the message log),
// checks access again, streams the body to the provider and verifies the
// body signature when it ends (a bad one aborts the provider's request).
// The response comes back the same way, signed by B and verified by A.
// Bodies are streamed and hashed on the fly: memory does not grow with
// their size.
//
// Each side appends the exchange to its message log (internal/exchange/
// msglog) and completes the response only once the entry has committed. A
// small response leaves B while B's entry commits and ends with B's
// trailer Ortaq-Logged; A commits its own entry meanwhile and gives its
// client nothing before both are durable, so the two commits overlap. A
// large response withholds its final chunk until the entries have
// committed.
//
// A personal-data call names its subject, purpose and legal basis, or
// instead of the basis the subject's consent (Ortaq-Consent), which
// [Config].Consent checks on both gateways: [ConsentReplica] from memory,
// a replica that follows the centre's consent feed (long-poll, woken at
// each change, a heartbeat otherwise) and, when it has not confirmed it is
// current within a second, asks the centre instead ([CentreConsent]) or
// refuses the call as unchecked. The call's subject, purpose, basis and
// this node's refusal, if any, are fields of its message log entry (a
// refused call gets an entry too); [Node.ShipAccessReports] sends those
// entries after a durable cursor to the centre's access log
// (POST /api/v1/consents/access-reports, idempotent): every call that
// reached the provider's gateway is reported by it, a call the client's
// gateway refused by that gateway.
//
// The catalogue is refreshed from the centre periodically and cached in
// the data directory; a node keeps working on the cached copy while the
// centre is down and refuses calls (Server.ClientProxy.OutdatedGlobalConf)
// once the copy's signed issue time is older than MaxCatalogueAge.
//
// The client port identifies a caller by its X-Road-Client header; for a
// subsystem with registered information-system certificates
// ([Config].ClientCerts, `--client-certs`) it also demands one of them over
// TLS (`--client-tls`, the node's certificate), as X-Road's SSLAUTH.
//
// Owns: tables gateway_opmon, gateway_access_cursor and the node's files in its data directory
// (node.key, node.crt, ca.crt, catalogue.json); the node's listeners.
//
// May import: internal/pg, internal/iin, internal/clock,
// internal/exchange/xroad, internal/exchange/catalogue,
// internal/exchange/msglog.
package gateway
