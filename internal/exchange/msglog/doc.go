// Package msglog is a gateway node's message log: append-only and
// hash-chained (each entry's hash covers the previous entry's hash and every
// recorded field), durable before the caller goes on (Append returns once
// the entry's transaction has committed; concurrent appends share one
// commit), and sealed periodically: a seal signs (Ed25519, the node's key)
// the hash of the last entry it covers together with the time of sealing,
// and carries the centre's timestamp of that signature (Ed25519 by the
// platform CA over the seal's digest and the centre's time) when the centre
// answered.
//
// Verify walks the chain from the first entry and reports the first entry
// that was altered, removed or moved, and any seal that no longer matches.
// Export writes the entries, seals and the signing certificate as JSON
// lines; VerifyArchive checks such an archive offline, with nothing but the
// CA certificate.
//
// A personal-data call's entry also names its subject, purpose, basis and
// the node's refusal, if any: the gateway ships those entries to the
// centre for the citizen's access log ([PersonalAfter]), so that the
// durable log entry is the call's only record on the node.
//
// Owns: tables gateway_msglog, gateway_msglog_seal (in a gateway node's own
// database).
//
// May import: internal/pg, internal/exchange/catalogue (timestamp format)
// and the standard library.
package msglog
