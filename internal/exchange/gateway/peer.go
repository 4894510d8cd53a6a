package gateway

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ortaq/ortaq/internal/exchange/msglog"
	"github.com/ortaq/ortaq/internal/exchange/xroad"
)

type tlsState = tls.ConnectionState

func serialOf(c *x509.Certificate) string { return hex.EncodeToString(c.SerialNumber.Bytes()) }

// providerClient calls the member's own provider systems.
var providerClient = &http.Transport{
	Proxy:               nil,
	MaxIdleConns:        1024,
	MaxIdleConnsPerHost: 256,
	MaxConnsPerHost:     256,
	IdleConnTimeout:     90 * time.Second,
	DisableCompression:  true,
}

// PeerHandler serves other gateways (behind mutual TLS).
func (n *Node) PeerHandler() http.Handler { return http.HandlerFunc(n.handlePeer) }

// peerReply writes a signed response to the client's gateway.
type peerReply struct {
	n       *Node
	w       http.ResponseWriter
	method  string
	id      string
	reqHash string
}

// logEntry queues the message-log entry of a response once its signature,
// body hash and size are known (ok false: the body broke off) and returns
// the channel that receives the commit's outcome.
type logEntry func(sig, sum []byte, size int64, ok bool) <-chan error

// send writes a signed response: an empty or small body is read whole and
// its hash signed with the head (one signature); a larger one streams, with
// its hash and a second signature in trailers. It returns the head
// signature, the body's hash and size, and an error if the response must be
// aborted (the body broke off, or its log entry did not commit).
//
// With log set, the exchange is logged before the response ends. A
// response that can carry trailers does not wait for the commit before it
// leaves: its entry is queued before the first byte is written, and the
// trailer hLogged, written once the entry is durable, ends the response.
// The client's gateway commits its own entry meanwhile and releases nothing
// to its client before both are durable: the two commits overlap instead
// of following each other.
func (p *peerReply) send(status int, h http.Header, xerr string, body io.Reader, log logEntry) (sig, sum []byte, size int64, err error) {
	dst := p.w.Header()
	copyHeaders(dst, h)
	head := responseHead{Status: status, RequestHash: p.reqHash, ID: p.id, ContentType: h.Get("Content-Type"), XError: xerr,
		TimeMicros: p.n.clock.Now().UnixMicro()}
	var prefix []byte
	small := true
	if bodyAllowed(status) {
		prefix, err = io.ReadAll(io.LimitReader(body, smallBody+1))
		if err != nil {
			return nil, nil, 0, err
		}
		small = len(prefix) <= smallBody
	}
	early := log != nil && bodyAllowed(status) && p.method != http.MethodHead
	var trailers []string
	if small {
		s := sha256.Sum256(prefix)
		sum, size = s[:], int64(len(prefix))
		head.BodyHash = b64.EncodeToString(sum)
		dst.Set(hBodyHash, head.BodyHash)
		switch {
		case early:
			dst.Set(hBodyLength, strconv.Itoa(len(prefix)))
		case bodyAllowed(status):
			dst.Set("Content-Length", strconv.Itoa(len(prefix)))
		}
	} else {
		trailers = append(trailers, hBodyHash, hBodySig)
	}
	if early {
		trailers = append(trailers, hLogged)
	}
	if len(trailers) > 0 {
		dst.Set("Trailer", strings.Join(trailers, ", "))
	}
	key := p.n.id.Load().key
	sig = ed25519.Sign(key, head.message())
	dst.Set(xroad.HeaderID, p.id)
	dst.Set(xroad.HeaderRequestHash, p.reqHash)
	if xerr != "" {
		dst.Set(xroad.HeaderError, xerr)
	}
	dst.Set(hTime, strconv.FormatInt(head.TimeMicros, 10))
	dst.Set(hSignature, b64.EncodeToString(sig))
	var committed <-chan error
	if small && log != nil {
		committed = log(sig, sum, size, true)
		if !early {
			// No trailer to confirm with: logged before the head leaves.
			if err := p.logged(committed); err != nil {
				return sig, sum, size, err
			}
			committed = nil
		}
	}
	p.w.WriteHeader(status)
	if small {
		if _, err = p.w.Write(prefix); err == nil && committed != nil {
			err = http.NewResponseController(p.w).Flush()
		}
	} else {
		hr := newHashReader(io.MultiReader(bytes.NewReader(prefix), body), nil)
		_, err = io.Copy(p.w, hr)
		var derr error
		sum, size, derr = hr.drain()
		if err == nil {
			err = derr
		}
		if err == nil {
			dst.Set(hBodyHash, b64.EncodeToString(sum))
			dst.Set(hBodySig, b64.EncodeToString(ed25519.Sign(key, bodyMessage("resp", sig, sum))))
		}
		if log != nil {
			committed = log(sig, sum, size, err == nil)
		}
	}
	if committed != nil {
		lerr := p.logged(committed)
		if err == nil {
			err = lerr
		}
	}
	if err == nil && early {
		dst.Set(hLogged, "1")
	}
	return sig, sum, size, err
}

// logged waits for a log entry's commit.
func (p *peerReply) logged(committed <-chan error) error {
	err := <-committed
	if err != nil {
		p.n.log.Error("message log append failed; response withheld", "message_id", p.id, "error", err)
	}
	return err
}

func bodyAllowed(status int) bool {
	return !(status >= 100 && status < 200 || status == http.StatusNoContent || status == http.StatusNotModified)
}

// fail answers with an X-Road error, signed like any response.
func (p *peerReply) fail(status int, typ, msg string) {
	body, _ := json.Marshal(xroad.ErrorBody{Type: typ, Message: msg, Detail: uuid.NewString()})
	h := http.Header{"Content-Type": {"application/json; charset=utf-8"}}
	_, _, _, _ = p.send(status, h, typ, bytes.NewReader(body), nil)
}

func (n *Node) handlePeer(w http.ResponseWriter, r *http.Request) {
	c := &call{rec: OpRecord{Direction: "in", Method: r.Method, RequestInUs: n.clock.Now().UnixMicro()}}
	p := &peerReply{n: n, w: w, method: r.Method, id: r.Header.Get(xroad.HeaderID)}
	fail := func(status int, typ, msg string) {
		p.fail(status, typ, msg)
		c.rec.Status, c.rec.ErrorType = status, typ
		n.finish(c)
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		fail(http.StatusUnauthorized, xroad.ErrSslAuth, "client certificate required")
		return
	}
	peerCert := r.TLS.PeerCertificates[0]
	// The handshake checked the certificate; the catalogue may have revoked
	// it since this connection was opened.
	if err := n.stillActive(*r.TLS); err != nil {
		fail(http.StatusForbidden, xroad.ErrSslAuth, err.Error())
		return
	}
	peerMember, _ := xroad.ParseClient(peerCert.Subject.CommonName)
	req, err := xroad.ParsePath(r.URL.EscapedPath())
	if err != nil {
		fail(http.StatusBadRequest, xroad.ErrInvalidServiceID, err.Error())
		return
	}
	hdr, err := xroad.ParseHeaders(r.Header)
	if err != nil || hdr.ID == "" {
		fail(http.StatusBadRequest, xroad.ErrInvalidClientID, "X-Road-Client and X-Road-Id required")
		return
	}
	c.rec.Client, c.rec.Service, c.rec.MessageID = hdr.Client.String(), req.Service.String(), hdr.ID
	if hdr.Client.MemberID() != peerMember {
		fail(http.StatusForbidden, xroad.ErrSslAuth, "client "+hdr.Client.String()+" does not belong to the calling gateway's member")
		return
	}
	cat, err := n.catalogue()
	if err != nil {
		fail(http.StatusServiceUnavailable, xroad.ErrOutdatedConf, err.Error())
		return
	}
	t, err := strconv.ParseInt(r.Header.Get(hTime), 10, 64)
	sig, err2 := b64.DecodeString(r.Header.Get(hSignature))
	head := requestHead{Method: r.Method, Target: r.RequestURI, Client: hdr.Client.String(), Service: req.Service.String(),
		ID: hdr.ID, UserID: hdr.UserID, Issue: hdr.Issue, ContentType: r.Header.Get("Content-Type"),
		Subject: r.Header.Get(hSubject), Purpose: r.Header.Get(hPurpose), Basis: r.Header.Get(hLegalBasis),
		BodyHash: r.Header.Get(hBodyHash), TimeMicros: t}
	var peerKey ed25519.PublicKey
	if err == nil && err2 == nil {
		peerKey = n.signerOf(peerMember, peerCert, head.message(), sig)
	}
	if peerKey == nil {
		fail(http.StatusForbidden, xroad.ErrSignature, "request signature does not verify")
		return
	}
	if !n.replay.fresh(head.Client, head.ID, time.UnixMicro(t), n.clock.Now()) {
		fail(http.StatusConflict, xroad.ErrReplay, "message "+head.ID+" was already received or is outside the time window")
		return
	}
	svc, ok := cat.Service(req.Service)
	if !ok || svc.ID.ClientID.MemberID() != n.member {
		fail(http.StatusNotFound, xroad.ErrUnknownService, "no service "+req.Service.String()+" at this gateway")
		return
	}
	if !cat.Allowed(hdr.Client, svc.ID, r.Method, req.Rest) {
		fail(http.StatusForbidden, xroad.ErrAccessDenied, "client "+hdr.Client.String()+" may not call "+r.Method+" "+svc.ID.String()+req.Rest)
		return
	}
	if svc.PersonalData {
		if code, msg := n.personalData(r.Context(), &head, "in"); msg != "" {
			n.refusePersonal(r.Context(), c, &head, code)
			fail(http.StatusForbidden, xroad.ErrPersonalData, msg)
			return
		}
	}

	target := strings.TrimSuffix(svc.URL, "/") + req.Rest
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, target, nil)
	if err != nil {
		fail(http.StatusInternalServerError, xroad.ErrServiceFailed, "provider address is invalid")
		return
	}
	copyHeaders(out.Header, r.Header)
	setRequestHead(out.Header, head, nil)
	out.Header.Del(hTime)
	out.Header.Del(hSignature)
	// The body is forwarded as it arrives; its signature is checked at its
	// end, and a bad one breaks the provider's request instead of ending it.
	var body *hashReader
	var bodyHash []byte
	switch {
	case head.BodyHash != "" && r.ContentLength == 0:
		sum := sha256.Sum256(nil)
		bodyHash = sum[:]
		if err := checkHash(bodyHash, head.BodyHash); err != nil {
			fail(http.StatusForbidden, xroad.ErrSignature, "request body does not match its signed hash")
			return
		}
	case head.BodyHash != "":
		body = newHashReader(r.Body, func(sum []byte) error { return checkHash(sum, head.BodyHash) })
	case r.ContentLength == 0:
		fail(http.StatusForbidden, xroad.ErrSignature, "request body hash missing")
		return
	default:
		body = newHashReader(r.Body, func(sum []byte) error {
			return verifyBody(peerKey, "req", sig, func(name string) string { return r.Trailer.Get(name) }, sum)
		})
	}
	if body != nil {
		out.Body, out.ContentLength = body, r.ContentLength
		if r.ContentLength < 0 {
			out.ContentLength = -1
		}
	}
	c.rec.RequestOutUs = n.clock.Now().UnixMicro()
	resp, err := providerClient.RoundTrip(out)
	if body != nil {
		var derr error
		bodyHash, c.rec.RequestSize, derr = body.drain()
		if derr != nil {
			if resp != nil {
				resp.Body.Close()
			}
			fail(http.StatusForbidden, xroad.ErrSignature, "request body signature does not verify")
			return
		}
	}
	p.reqHash = requestHash(sig, bodyHash)
	if err != nil {
		n.log.Warn("provider call failed", "service", svc.ID.String(), "message_id", hdr.ID, "error", err)
		fail(http.StatusBadGateway, xroad.ErrServiceFailed, "the provider's system did not answer")
		return
	}
	defer resp.Body.Close()
	c.rec.ResponseInUs = n.clock.Now().UnixMicro()
	status := resp.StatusCode
	_, _, size, err := p.send(status, resp.Header, "", resp.Body, func(rsig, respHash []byte, size int64, ok bool) <-chan error {
		c.entry = msglog.Entry{Direction: "in", MessageID: hdr.ID, Client: head.Client, Service: head.Service, Method: r.Method,
			Path: head.Target, UserID: hdr.UserID, Issue: hdr.Issue, RequestHash: bodyHash, ResponseHash: respHash, Status: status,
			RequestSig: sig, ResponseSig: rsig, PeerSerial: serialOf(peerCert)}
		if !ok {
			c.entry.Status = -1
		}
		if svc.PersonalData {
			c.entry.Subject, c.entry.Purpose, c.entry.Basis = head.Subject, head.Purpose, head.Basis
		}
		return n.msgs.Start(c.entry)
	})
	c.rec.ResponseSize, c.rec.Status = size, status
	if err != nil {
		c.rec.Status = -1
		n.finish(c)
		panic(http.ErrAbortHandler)
	}
	if svc.PersonalData {
		n.reportsDue()
	}
	n.finish(c)
}

// signerOf returns the key of member's gateway that signed msg: the key of
// the connection's certificate, or, while a rotation is under way, of
// another active certificate of the same member. nil if none did.
func (n *Node) signerOf(member xroad.ClientID, leaf *x509.Certificate, msg, sig []byte) ed25519.PublicKey {
	if k, ok := leaf.PublicKey.(ed25519.PublicKey); ok && ed25519.Verify(k, msg, sig) {
		return k
	}
	c := n.cat.Load()
	if c == nil {
		return nil
	}
	for _, g := range c.Gateways {
		if g.Member != member.MemberID() || c.IsRevoked(g.Serial) || g.Serial == serialOf(leaf) {
			continue
		}
		cert, err := x509.ParseCertificate(g.Cert)
		if err != nil || cert.CheckSignatureFrom(n.ca) != nil {
			continue
		}
		if k, ok := cert.PublicKey.(ed25519.PublicKey); ok && ed25519.Verify(k, msg, sig) {
			return k
		}
	}
	return nil
}
