package gateway

import "crypto/ed25519"

// SignRequestHead signs a request head as the client's gateway does, so
// that tests can replay or tamper with exact messages.
func (n *Node) SignRequestHead(method, target, client, service, id, bodyHash string, timeMicros int64) []byte {
	h := requestHead{Method: method, Target: target, Client: client, Service: service, ID: id, BodyHash: bodyHash, TimeMicros: timeMicros}
	return ed25519.Sign(n.id.Load().key, h.message())
}

// SignBody signs a streamed body's hash as the trailer carries it.
func (n *Node) SignBody(headSig, sum []byte) []byte {
	return ed25519.Sign(n.id.Load().key, bodyMessage("req", headSig, sum))
}

// FeedConsent is a consent as the feed sends it, for tests that fill a
// replica directly.
type FeedConsent = feedConsent

// Apply loads consents into the replica as the feed would.
func (r *ConsentReplica) Apply(cs []FeedConsent) { r.apply(cs) }

// MarkCurrent makes the replica current now, as a complete feed answer does.
func (r *ConsentReplica) MarkCurrent() { r.freshAt.Store(r.now().UnixNano()) }

// Sweep forgets what ended more than Retain ago, as Sync does once a
// minute.
func (r *ConsentReplica) Sweep() { r.sweep() }
