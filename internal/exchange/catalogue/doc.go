// Package catalogue is the exchange's signed global configuration: the
// members, subsystems, services (with their OpenAPI descriptions and whether
// they return personal data), access rights and gateway certificates that the
// central authority publishes, and gateways download, verify and cache.
//
// A snapshot travels as an envelope {"payload": base64(JSON), "signature":
// base64(Ed25519(payload))}, signed with the platform CA's key, so a gateway
// that holds the CA certificate (from enrolment) can verify it offline and
// keep using its cached copy while the centre is down.
//
// Owns: the catalogue format; nothing stored.
//
// May import: internal/exchange/xroad and the standard library.
package catalogue
