package gateway

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"hash"
	"io"
	"strconv"
	"strings"
	"sync"
)

// Headers between gateways (never sent to clients or providers).
const (
	hTime      = "Ortaq-Time"
	hSignature = "Ortaq-Signature"
	hBodyHash  = "Ortaq-Body-Hash"
	hBodySig   = "Ortaq-Body-Signature"
	// hBodyLength tells the client's gateway how long a small response
	// body is when it comes chunked, ahead of the hLogged trailer.
	hBodyLength = "Ortaq-Body-Length"
	// hLogged, a trailer, is the provider's gateway's word that its message
	// log holds the exchange ([peerReply.send]).
	hLogged     = "Ortaq-Logged"
	hSubject    = "Ortaq-Data-Subject"
	hPurpose    = "Ortaq-Purpose"
	hLegalBasis = "Ortaq-Legal-Basis"
	// hConsent is what a client sends instead of a legal basis: the id of
	// the data subject's consent (internal/consent). It travels between
	// gateways as the basis "consent:<id>".
	hConsent = "Ortaq-Consent"
)

var b64 = base64.StdEncoding

// requestHead is what the client's gateway signs before the body.
//
// BodyHash (base64 SHA-256) is set when the body is known before the head
// is signed (empty or small bodies): then one signature covers the message.
// Otherwise the body streams and its hash and a second signature follow in
// trailers.
type requestHead struct {
	Method, Target, Client, Service, ID, UserID, Issue, ContentType string
	Subject, Purpose, Basis, BodyHash                               string
	TimeMicros                                                      int64
}

func (h requestHead) message() []byte {
	return []byte(strings.Join([]string{"ortaq-xchg-req-v1", h.Method, h.Target, h.Client, h.Service, h.ID, h.UserID, h.Issue,
		h.ContentType, h.Subject, h.Purpose, h.Basis, h.BodyHash, strconv.FormatInt(h.TimeMicros, 10)}, "\n"))
}

// responseHead is what the provider's gateway signs before the body, with
// BodyHash as in requestHead.
type responseHead struct {
	Status                                         int
	RequestHash, ID, ContentType, XError, BodyHash string
	TimeMicros                                     int64
}

func (h responseHead) message() []byte {
	return []byte(strings.Join([]string{"ortaq-xchg-resp-v1", strconv.Itoa(h.Status), h.RequestHash, h.ID, h.ContentType, h.XError,
		h.BodyHash, strconv.FormatInt(h.TimeMicros, 10)}, "\n"))
}

// smallBody is the largest body that is read whole and signed with its
// head; larger ones stream.
const smallBody = 64 << 10

// checkHash compares a computed body hash with the signed one (base64).
func checkHash(sum []byte, signed string) error {
	want, err := b64.DecodeString(signed)
	if err != nil || string(want) != string(sum) {
		return errBodySignature
	}
	return nil
}

func bodyMessage(kind string, headSig, bodyHash []byte) []byte {
	m := append([]byte("ortaq-xchg-"+kind+"body-v1\n"), headSig...)
	return append(m, bodyHash...)
}

// requestHash is X-Road-Request-Hash: SHA-512 over the signed request head
// and the body's SHA-256, base64.
func requestHash(headSig, bodyHash []byte) string {
	h := sha512.New()
	h.Write(headSig)
	h.Write(bodyHash)
	return b64.EncodeToString(h.Sum(nil))
}

// hashReader hashes what is read through it and calls onEOF once, at the
// end; an error from onEOF replaces io.EOF. Reads are serialised so that
// drain can finish the body after the transport gave up on it.
type hashReader struct {
	mu    sync.Mutex
	r     io.Reader
	h     hash.Hash
	n     int64
	done  bool
	err   error
	sum   []byte
	onEOF func(sum []byte) error
}

func newHashReader(r io.Reader, onEOF func([]byte) error) *hashReader {
	return &hashReader{r: r, h: sha256.New(), onEOF: onEOF}
}

func (h *hashReader) Read(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		return 0, h.err
	}
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	if err == io.EOF {
		h.done = true
		h.sum = h.h.Sum(nil)
		h.err = io.EOF
		if h.onEOF != nil {
			if e := h.onEOF(h.sum); e != nil {
				h.err = e
			}
		}
		return n, h.err
	}
	if err != nil {
		h.done, h.err = true, err
	}
	return n, err
}

// Close does nothing: the underlying body belongs to the server.
func (h *hashReader) Close() error { return nil }

// drain reads the rest and returns the hash and size, or the error.
func (h *hashReader) drain() ([]byte, int64, error) {
	_, err := io.Copy(io.Discard, h)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil && h.err != nil && h.err != io.EOF {
		err = h.err
	}
	return h.sum, h.n, err
}

var errBodySignature = errors.New("body signature does not verify")

func verifyBody(pub ed25519.PublicKey, kind string, headSig []byte, trailer func(string) string, sum []byte) error {
	got, err1 := b64.DecodeString(trailer(hBodyHash))
	sig, err2 := b64.DecodeString(trailer(hBodySig))
	if err1 != nil || err2 != nil || string(got) != string(sum) || !ed25519.Verify(pub, bodyMessage(kind, headSig, sum), sig) {
		return errBodySignature
	}
	return nil
}

// hopHeaders are not forwarded (RFC 9110 7.6.1), nor are ours.
var hopHeaders = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Content-Length": true, "Host": true,
}

func forwardable(name string) bool {
	return !hopHeaders[name] && !strings.HasPrefix(name, "Ortaq-") && !strings.HasPrefix(name, "X-Road-")
}
