package gateway

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ortaq/ortaq/internal/exchange/catalogue"
	"github.com/ortaq/ortaq/internal/exchange/msglog"
	"github.com/ortaq/ortaq/internal/exchange/xroad"
	"github.com/ortaq/ortaq/internal/iin"
)

// ClientHandler serves the member's own systems: X-Road REST calls under
// /r1/, the metaservices, /metrics and the operational monitoring query
// API. Callers are identified by their X-Road-Client header and, for a
// subsystem with registered certificates ([ClientCerts]), by the TLS
// certificate they present; without any, bind the port to an internal
// address only, as X-Road's NOSSL clients.
func (n *Node) ClientHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /listClients", n.handleListClients)
	mux.Handle("GET /metrics", n.mon.metricsHandler())
	mux.HandleFunc("GET /api/v1/monitoring/records", n.handleRecords)
	mux.HandleFunc("/r1/", n.handleClient)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// GovStack's Information Mediator scenarios call the metaservices
		// without the /r1 prefix.
		if parts := strings.Split(r.URL.Path, "/"); len(parts) == 6 && parts[0] == "" && isMetaservice(parts[5]) {
			r.URL.Path, r.URL.RawPath = "/r1"+r.URL.Path, ""
			n.handleClient(w, r)
			return
		}
		xroad.WriteError(w, http.StatusNotFound, xroad.ErrBadRequest, "unknown path: X-Road REST calls start with /r1/", uuid.NewString())
	})
	// The GovStack Information Mediator profile: the same API under /gs/im,
	// answering in GovStack's camelCase forms.
	root := http.NewServeMux()
	root.Handle("/gs/im/", http.StripPrefix("/gs/im", govstackMode(mux)))
	root.Handle("/", mux)
	return root
}

// GovStack's names for the X-Road-Client header.
var clientHeaderAliases = []string{"Information-Mediator-Client", "X-GovStack-Client"}

type govstackKey struct{}

func govstackMode(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), govstackKey{}, true)))
	})
}

func isGovStack(r *http.Request) bool {
	v, _ := r.Context().Value(govstackKey{}).(bool)
	return v
}

func isMetaservice(code string) bool {
	return code == metaListMethods || code == metaAllowedMethods || code == metaGetOpenAPI
}

// Metaservice codes answered by the gateway itself.
const (
	metaListMethods    = "listMethods"
	metaAllowedMethods = "allowedMethods"
	metaGetOpenAPI     = "getOpenAPI"
)

// call is one exchange in flight, for the log and monitoring.
type call struct {
	rec   OpRecord
	entry msglog.Entry
}

func (n *Node) handleClient(w http.ResponseWriter, r *http.Request) {
	c := &call{rec: OpRecord{Direction: "out", Method: r.Method, RequestInUs: n.clock.Now().UnixMicro()}}
	reqID := uuid.NewString()
	fail := func(status int, typ, msg string) {
		xroad.WriteError(w, status, typ, msg, reqID)
		c.rec.Status, c.rec.ErrorType = status, typ
		n.finish(c)
	}
	req, err := xroad.ParsePath(r.URL.EscapedPath())
	if err != nil {
		fail(http.StatusBadRequest, xroad.ErrInvalidServiceID, err.Error())
		return
	}
	c.rec.Service = req.Service.String()
	if r.Header.Get(xroad.HeaderClient) == "" {
		for _, alias := range clientHeaderAliases {
			if v := r.Header.Get(alias); v != "" {
				r.Header.Set(xroad.HeaderClient, v)
				r = r.WithContext(context.WithValue(r.Context(), govstackKey{}, true))
				break
			}
		}
	}
	hdr, err := xroad.ParseHeaders(r.Header)
	if err != nil {
		fail(http.StatusBadRequest, xroad.ErrInvalidClientID, err.Error())
		return
	}
	c.rec.Client = hdr.Client.String()
	cat, err := n.catalogue()
	if err != nil {
		fail(http.StatusServiceUnavailable, xroad.ErrOutdatedConf, err.Error())
		return
	}
	if hdr.Client.MemberID() != n.member || !hdr.Client.IsSubsystem() || !cat.HasSubsystem(hdr.Client) {
		fail(http.StatusForbidden, xroad.ErrClientDenied, "client "+hdr.Client.String()+" is not a registered subsystem of this gateway's member "+n.member.String())
		return
	}
	if msg := n.authenticateClient(r, hdr.Client); msg != "" {
		fail(http.StatusUnauthorized, xroad.ErrSslAuth, msg)
		return
	}
	if req.Rest == "" && r.Method == http.MethodGet {
		if _, isService := cat.Service(req.Service); !isService {
			if isMetaservice(req.Service.Code) {
				c.rec.Status = n.metaservice(w, r, cat, hdr.Client, req.Service, reqID)
				n.finish(c)
				return
			}
		}
	}
	svc, ok := cat.Service(req.Service)
	if !ok {
		fail(http.StatusNotFound, xroad.ErrUnknownService, "no service "+req.Service.String())
		return
	}
	if !cat.Allowed(hdr.Client, svc.ID, r.Method, req.Rest) {
		fail(http.StatusForbidden, xroad.ErrAccessDenied, "client "+hdr.Client.String()+" may not call "+r.Method+" "+svc.ID.String()+req.Rest)
		return
	}
	id := hdr.ID
	if id == "" {
		id = uuid.NewString()
	}
	c.rec.MessageID = id
	head := requestHead{Method: r.Method, Target: req.Service.Path(req.Rest), Client: hdr.Client.String(), Service: svc.ID.String(),
		ID: id, UserID: hdr.UserID, Issue: hdr.Issue, ContentType: r.Header.Get("Content-Type"),
		Subject: r.Header.Get(hSubject), Purpose: r.Header.Get(hPurpose), Basis: r.Header.Get(hLegalBasis)}
	if r.URL.RawQuery != "" {
		head.Target += "?" + r.URL.RawQuery
	}
	if c := strings.TrimSpace(r.Header.Get(hConsent)); c != "" && strings.TrimSpace(head.Basis) == "" {
		// The consent travels signed, as the basis, to the provider's gateway.
		head.Basis = consentPrefix + c
	}
	if svc.PersonalData {
		if code, msg := n.personalData(r.Context(), &head, "out"); msg != "" {
			n.refusePersonal(r.Context(), c, &head, code)
			fail(http.StatusForbidden, xroad.ErrPersonalData, msg)
			return
		}
	}
	gw, ok := cat.GatewayFor(svc.ID.ClientID)
	if !ok {
		fail(http.StatusServiceUnavailable, xroad.ErrUnknownMember, "no active gateway for "+svc.ID.ClientID.MemberID().String())
		return
	}
	// An empty or small body is read whole and its hash signed with the
	// head; a larger one goes out as it comes in, hashed on the way, its
	// hash and signature following in trailers.
	out, err := http.NewRequestWithContext(r.Context(), r.Method, "https://"+gw.Address+head.Target, nil)
	if err != nil {
		fail(http.StatusBadRequest, xroad.ErrBadRequest, "bad request target")
		return
	}
	head.Target = out.URL.RequestURI() // exactly what goes on the wire
	var body *hashReader
	var bodyHash []byte
	if r.ContentLength >= 0 && r.ContentLength <= smallBody {
		buf, err := io.ReadAll(io.LimitReader(r.Body, smallBody+1))
		if err != nil || int64(len(buf)) != r.ContentLength {
			fail(http.StatusBadRequest, xroad.ErrBadRequest, "request body could not be read")
			return
		}
		sum := sha256.Sum256(buf)
		bodyHash = sum[:]
		head.BodyHash = b64.EncodeToString(bodyHash)
		if len(buf) > 0 {
			out.Body, out.ContentLength = io.NopCloser(bytes.NewReader(buf)), int64(len(buf))
			out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
		}
		c.rec.RequestSize = int64(len(buf))
	}
	head.TimeMicros = n.clock.Now().UnixMicro()
	key := n.id.Load().key
	headSig := ed25519.Sign(key, head.message())
	copyHeaders(out.Header, r.Header)
	setRequestHead(out.Header, head, headSig)
	if head.BodyHash != "" {
		out.Header.Set(hBodyHash, head.BodyHash)
	} else {
		out.Trailer = http.Header{hBodyHash: nil, hBodySig: nil}
		body = newHashReader(r.Body, func(sum []byte) error {
			out.Trailer.Set(hBodyHash, b64.EncodeToString(sum))
			out.Trailer.Set(hBodySig, b64.EncodeToString(ed25519.Sign(key, bodyMessage("req", headSig, sum))))
			return nil
		})
		out.Body, out.ContentLength = body, -1
	}
	// A pooled connection to a peer revoked since it was opened is not used.
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	out = out.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if tc, ok := info.Conn.(interface{ ConnectionState() tlsState }); ok {
			if err := n.stillActive(tc.ConnectionState()); err != nil {
				cancel(err)
			}
		}
	}}))
	c.rec.RequestOutUs = n.clock.Now().UnixMicro()
	resp, err := n.transport(svc.ID.ClientID).RoundTrip(out)
	if err != nil {
		typ := xroad.ErrNetwork
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) || strings.Contains(err.Error(), "tls:") || strings.Contains(err.Error(), "certificate") {
			typ = xroad.ErrSslAuth
		}
		n.log.Warn("exchange to peer failed", "service", svc.ID.String(), "message_id", id, "error", err, "cause", context.Cause(ctx))
		fail(http.StatusBadGateway, typ, "cannot reach the provider's gateway")
		return
	}
	defer resp.Body.Close()
	c.rec.ResponseInUs = n.clock.Now().UnixMicro()
	if body != nil {
		bodyHash, c.rec.RequestSize, err = body.drain()
		if err != nil {
			fail(http.StatusBadRequest, xroad.ErrBadRequest, "request body could not be read")
			return
		}
	}
	reqHash := requestHash(headSig, bodyHash)

	// The provider's gateway signed the response head; check it before
	// anything reaches the client. A small response that the provider's
	// gateway logs while it travels (it confirms in a trailer) is logged
	// here at once, while the signature is checked: both commits overlap.
	peerCert := resp.TLS.PeerCertificates[0]
	rh, rsig, err := readResponseHead(resp)
	c.entry = msglog.Entry{Direction: "out", MessageID: id, Client: head.Client, Service: head.Service, Method: r.Method,
		Path: head.Target, UserID: hdr.UserID, Issue: hdr.Issue, RequestHash: bodyHash, Status: resp.StatusCode,
		RequestSig: headSig, ResponseSig: rsig, PeerSerial: serialOf(peerCert)}
	if svc.PersonalData {
		c.entry.Subject, c.entry.Purpose, c.entry.Basis = head.Subject, head.Purpose, head.Basis
	}
	var early *earlyReply
	if err == nil {
		early = n.logEarly(resp, rh, c)
	}
	refuse := func(status int, typ, msg string) {
		early.withhold(n, c)
		fail(status, typ, msg)
	}
	var peerKey ed25519.PublicKey
	if err == nil {
		peerKey = n.signerOf(svc.ID.ClientID, peerCert, rh.message(), rsig)
	}
	if peerKey == nil || rh.ID != id {
		refuse(http.StatusBadGateway, xroad.ErrSignature, "response signature from the provider's gateway does not verify")
		return
	}
	// An error found before the provider's gateway read the body binds to
	// the message id only.
	if rh.RequestHash != reqHash && (rh.XError == "" || rh.RequestHash != "") {
		refuse(http.StatusBadGateway, xroad.ErrSignature, "provider's gateway signed another request")
		return
	}
	c.rec.Status, c.rec.ErrorType = resp.StatusCode, rh.XError
	writeHead := func() {
		copyHeaders(w.Header(), resp.Header)
		w.Header().Set(xroad.HeaderClient, hdr.Client.String())
		w.Header().Set(xroad.HeaderService, svc.ID.String())
		w.Header().Set(xroad.HeaderID, id)
		w.Header().Set(xroad.HeaderRequestID, reqID)
		w.Header().Set(xroad.HeaderRequestHash, reqHash)
		if hdr.UserID != "" {
			w.Header().Set(xroad.HeaderUserID, hdr.UserID)
		}
		if hdr.Issue != "" {
			w.Header().Set(xroad.HeaderIssue, hdr.Issue)
		}
		if rh.XError != "" {
			w.Header().Set(xroad.HeaderError, rh.XError)
		}
	}
	if early != nil {
		n.releaseEarly(w, resp, c, early, writeHead, refuse, fail)
		return
	}
	writeHead()
	w.WriteHeader(resp.StatusCode)
	respBody := newHashReader(resp.Body, nil)
	_, copyErr := io.Copy(w, respBody)
	respHash, size, err := respBody.drain()
	c.rec.ResponseSize, c.entry.ResponseHash = size, respHash
	if copyErr == nil && err == nil {
		if rh.BodyHash != "" {
			err = checkHash(respHash, rh.BodyHash)
		} else {
			err = verifyBody(peerKey, "resp", rsig, bodyField(resp), respHash)
		}
	}
	if _, declared := resp.Trailer[hLogged]; declared && err == nil && resp.Trailer.Get(hLogged) != "1" {
		err = errNotLogged
	}
	if err != nil || copyErr != nil {
		// The response is cut short: the client must not take it as whole.
		c.entry.Status, c.rec.Status, c.rec.ErrorType = -1, -1, xroad.ErrSignature
		n.log.Warn("response body failed", "message_id", id, "error", err, "copy_error", copyErr)
		_ = n.msgs.Append(context.WithoutCancel(r.Context()), c.entry)
		n.finish(c)
		panic(http.ErrAbortHandler)
	}
	if err := n.msgs.Append(context.WithoutCancel(r.Context()), c.entry); err != nil {
		n.log.Error("message log append failed; response withheld", "message_id", id, "error", err)
		c.rec.Status, c.rec.ErrorType = -1, xroad.ErrInternal
		n.finish(c)
		panic(http.ErrAbortHandler)
	}
	n.finish(c)
}

var errNotLogged = errors.New("the provider's gateway did not confirm that its message log holds the exchange")

// earlyReply is a small response that the provider's gateway sent ahead
// of its log entry's commit ([peerReply.send]), confirming the commit in a
// trailer at the body's end.
type earlyReply struct {
	body      []byte
	err       error        // the body could not be read or does not match its signed hash
	committed <-chan error // this node's entry's commit, once started
	logErr    error        // its outcome, once waited for
}

// wait returns the outcome of this node's entry's commit.
func (e *earlyReply) wait() error {
	if e.committed != nil {
		e.logErr, e.committed = <-e.committed, nil
	}
	return e.logErr
}

// logEarly reads such a response's body and starts this node's log entry;
// nil if the response is not one.
func (n *Node) logEarly(resp *http.Response, rh responseHead, c *call) *earlyReply {
	if _, declared := resp.Trailer[hLogged]; !declared || rh.BodyHash == "" {
		return nil
	}
	length, err := strconv.Atoi(resp.Header.Get(hBodyLength))
	if err != nil || length < 0 || length > smallBody {
		return &earlyReply{err: errors.New("bad " + hBodyLength)}
	}
	e := &earlyReply{body: make([]byte, length)}
	_, err = io.ReadFull(resp.Body, e.body)
	sum := sha256.Sum256(e.body)
	c.entry.ResponseHash, c.rec.ResponseSize = sum[:], int64(length)
	if err == nil {
		err = checkHash(sum[:], rh.BodyHash)
	}
	if err != nil {
		e.err = err
		return e
	}
	e.committed = n.msgs.Start(c.entry)
	return e
}

// withhold records that a response did not reach the client: an entry
// with status -1 (after the one that logged it as received, if any).
func (e *earlyReply) withhold(n *Node, c *call) {
	if e == nil {
		return
	}
	if e.err == nil {
		_ = e.wait()
	}
	c.entry.Status = -1
	_ = n.msgs.Append(context.Background(), c.entry)
}

// releaseEarly answers the client with an early-logged response once this
// node's entry is durable and the provider's gateway has confirmed its own:
// the client gets nothing before both logs hold the exchange.
func (n *Node) releaseEarly(w http.ResponseWriter, resp *http.Response, c *call, e *earlyReply, writeHead func(),
	refuse, fail func(status int, typ, msg string)) {
	if e.err != nil {
		n.log.Warn("response body failed", "message_id", c.entry.MessageID, "error", e.err)
		refuse(http.StatusBadGateway, xroad.ErrSignature, "the response body from the provider's gateway does not match its signature")
		return
	}
	rest, rerr := io.ReadAll(io.LimitReader(resp.Body, 1))
	confirmed := rerr == nil && len(rest) == 0 && resp.Trailer.Get(hLogged) == "1"
	if err := e.wait(); err != nil {
		n.log.Error("message log append failed; response withheld", "message_id", c.entry.MessageID, "error", err)
		fail(http.StatusInternalServerError, xroad.ErrInternal, "the gateway could not log the exchange; the response is withheld")
		return
	}
	if !confirmed {
		n.log.Warn("response withheld", "message_id", c.entry.MessageID, "error", errNotLogged, "read_error", rerr)
		refuse(http.StatusBadGateway, xroad.ErrServiceFailed, errNotLogged.Error()+"; the response is withheld")
		return
	}
	writeHead()
	if bodyAllowed(c.entry.Status) {
		w.Header().Set("Content-Length", strconv.Itoa(len(e.body)))
	}
	w.WriteHeader(c.entry.Status)
	_, _ = w.Write(e.body)
	n.finish(c)
}

func (n *Node) finish(c *call) {
	c.rec.ResponseOutUs = n.clock.Now().UnixMicro()
	if c.rec.RequestOutUs == 0 {
		c.rec.RequestOutUs, c.rec.ResponseInUs = c.rec.RequestInUs, c.rec.RequestInUs
	}
	n.mon.record(c.rec)
}

func setRequestHead(h http.Header, head requestHead, sig []byte) {
	h.Set(xroad.HeaderClient, head.Client)
	h.Set(xroad.HeaderID, head.ID)
	for k, v := range map[string]string{xroad.HeaderUserID: head.UserID, xroad.HeaderIssue: head.Issue, hSubject: head.Subject,
		hPurpose: head.Purpose, hLegalBasis: head.Basis} {
		if v != "" {
			h.Set(k, v)
		}
	}
	h.Set(hTime, strconv.FormatInt(head.TimeMicros, 10))
	h.Set(hSignature, b64.EncodeToString(sig))
}

func readResponseHead(resp *http.Response) (responseHead, []byte, error) {
	t, err := strconv.ParseInt(resp.Header.Get(hTime), 10, 64)
	if err != nil {
		return responseHead{}, nil, err
	}
	sig, err := b64.DecodeString(resp.Header.Get(hSignature))
	if err != nil {
		return responseHead{}, nil, err
	}
	return responseHead{Status: resp.StatusCode, RequestHash: resp.Header.Get(xroad.HeaderRequestHash), ID: resp.Header.Get(xroad.HeaderID),
		ContentType: resp.Header.Get("Content-Type"), XError: resp.Header.Get(xroad.HeaderError), BodyHash: resp.Header.Get(hBodyHash),
		TimeMicros: t}, sig, nil
}

// bodyField reads a body hash or signature from the trailers, or from the
// headers when the message had no body to trail.
func bodyField(resp *http.Response) func(string) string {
	return func(name string) string {
		if v := resp.Trailer.Get(name); v != "" {
			return v
		}
		return resp.Header.Get(name)
	}
}

func copyHeaders(dst, src http.Header) {
	for k, vs := range src {
		if forwardable(k) {
			dst[k] = append([]string(nil), vs...)
		}
	}
}

// personalData checks the data subject, purpose and legal basis (or
// consent) of a call to a personal-data service; it returns why the call
// is refused (the code the message log keeps and the message for the
// caller), or "", "". The call itself is recorded in the message log entry
// (subject, purpose, basis, refusal), which the node ships to the centre
// for the citizen's access log ([Node.ShipAccessReports]).
func (n *Node) personalData(ctx context.Context, head *requestHead, side string) (code, msg string) {
	subject := head.Subject
	if subject == "" {
		subject = strings.TrimPrefix(head.UserID, "KZ")
	}
	if _, err := iin.Parse(subject); err != nil {
		return refusedNoSubject, "personal data: the data subject's IIN (" + hSubject + " or " + xroad.HeaderUserID + ") is missing or invalid"
	}
	head.Subject = subject
	if strings.TrimSpace(head.Purpose) == "" || strings.TrimSpace(head.Basis) == "" {
		return refusedNoBasis, "personal data: " + hPurpose + " and " + hLegalBasis + " (or " + hConsent + ") are required"
	}
	if id, ok := strings.CutPrefix(head.Basis, consentPrefix); ok {
		return n.checkConsent(ctx, head, id, side)
	}
	return "", ""
}

// Refusals of personal-data calls as the message log keeps them.
const (
	refusedNoSubject = "personal_data.no_subject" // not reported: no one to report to
	refusedNoBasis   = "consent.missing"          // no legal basis and no consent
)

// refusePersonal records a refused personal-data call in the message log
// (durably, before the refusal is answered) so that the node reports it.
func (n *Node) refusePersonal(ctx context.Context, c *call, head *requestHead, code string) {
	if code == refusedNoSubject {
		return
	}
	e := msglog.Entry{Direction: c.rec.Direction, MessageID: head.ID, Client: head.Client, Service: head.Service, Method: head.Method,
		Path: head.Target, UserID: head.UserID, Issue: head.Issue, Status: http.StatusForbidden,
		Subject: head.Subject, Purpose: head.Purpose, Basis: head.Basis, Refused: code}
	if err := n.msgs.Append(context.WithoutCancel(ctx), e); err != nil {
		n.log.Error("message log append of a refused personal-data call failed", "message_id", head.ID, "error", err)
		return
	}
	n.reportsDue()
}

// metaservice answers listMethods, allowedMethods and getOpenAPI from the
// signed catalogue (the same data the provider's gateway holds) and returns
// the status it answered with.
func (n *Node) metaservice(w http.ResponseWriter, r *http.Request, cat *catalogue.Catalogue, client xroad.ClientID, target xroad.ServiceID, reqID string) int {
	provider := target.ClientID
	if !cat.HasSubsystem(provider) {
		xroad.WriteError(w, http.StatusBadRequest, xroad.ErrInvalidServiceID, "no subsystem "+provider.String(), reqID)
		return http.StatusBadRequest
	}
	var list []catalogue.Service
	switch target.Code {
	case metaListMethods:
		list = cat.ServicesOf(provider)
	case metaAllowedMethods:
		list = cat.AllowedServices(client, provider)
	case metaGetOpenAPI:
		code := r.URL.Query().Get("serviceCode")
		svc, ok := cat.Service(xroad.ServiceID{ClientID: provider, Code: code})
		if code == "" || !ok {
			xroad.WriteError(w, http.StatusBadRequest, xroad.ErrInvalidServiceID, "no service "+code+" in "+provider.String(), reqID)
			return http.StatusBadRequest
		}
		if len(svc.OpenAPI) == 0 {
			xroad.WriteError(w, http.StatusNotFound, xroad.ErrUnknownService, "service "+code+" has no OpenAPI description", reqID)
			return http.StatusNotFound
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(svc.OpenAPI)
		return http.StatusOK
	}
	if isGovStack(r) {
		out := govStackServiceList{Member: []govStackService{}}
		for _, s := range list {
			out.Member = append(out.Member, govStackService{ObjectType: "SERVICE", ServiceType: "REST", InstanceID: s.ID.Instance,
				MemberClass: s.ID.Class, MemberCode: s.ID.Member, ApplicationCode: s.ID.ClientID.Subsystem, ServiceCode: s.ID.Code})
		}
		writeJSON(w, out)
		return http.StatusOK
	}
	out := xroad.MethodList{Service: []xroad.MethodEntry{}}
	for _, s := range list {
		out.Service = append(out.Service, xroad.NewMethodEntry(s.ID))
	}
	writeJSON(w, out)
	return http.StatusOK
}

// GovStack's camelCase forms of the directory answers.
type govStackServiceList struct {
	Member []govStackService `json:"member"`
}

type govStackService struct {
	ObjectType      string `json:"objectType"`
	ServiceType     string `json:"serviceType,omitempty"`
	InstanceID      string `json:"instanceId"`
	MemberClass     string `json:"memberClass"`
	MemberCode      string `json:"memberCode"`
	ApplicationCode string `json:"applicationCode,omitempty"`
	ServiceCode     string `json:"serviceCode,omitempty"`
}

type govStackClient struct {
	Name string          `json:"name"`
	ID   govStackService `json:"id"`
}

func (n *Node) handleListClients(w http.ResponseWriter, r *http.Request) {
	cat, err := n.catalogue()
	if err != nil {
		xroad.WriteError(w, http.StatusServiceUnavailable, xroad.ErrOutdatedConf, err.Error(), uuid.NewString())
		return
	}
	inst := r.URL.Query().Get("xRoadInstance")
	if inst == "" {
		inst = r.URL.Query().Get("instanceId")
	}
	type named struct {
		id   xroad.ClientID
		name string
	}
	var all []named
	for _, m := range cat.Members {
		all = append(all, named{m.ID, m.Name})
	}
	for _, s := range cat.Subsystems {
		all = append(all, named{s.ID, s.Name})
	}
	if isGovStack(r) {
		out := struct {
			Member []govStackClient `json:"member"`
		}{Member: []govStackClient{}}
		for _, c := range all {
			if inst == "" || c.id.Instance == inst {
				typ := "MEMBER"
				if c.id.IsSubsystem() {
					typ = "APPLICATION"
				}
				out.Member = append(out.Member, govStackClient{Name: c.name, ID: govStackService{ObjectType: typ, InstanceID: c.id.Instance,
					MemberClass: c.id.Class, MemberCode: c.id.Member, ApplicationCode: c.id.Subsystem}})
			}
		}
		writeJSON(w, out)
		return
	}
	out := xroad.ClientList{Member: []xroad.ClientEntry{}}
	for _, c := range all {
		if inst == "" || c.id.Instance == inst {
			out.Member = append(out.Member, xroad.NewClientEntry(c.id, c.name))
		}
	}
	writeJSON(w, out)
}

func (n *Node) handleRecords(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, _ := strconv.ParseInt(q.Get("since"), 10, 64)
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit <= 0 || limit > 10000 {
		limit = 1000
	}
	recs, err := n.mon.Records(r.Context(), since, q.Get("client"), limit)
	if err != nil {
		xroad.WriteError(w, http.StatusInternalServerError, xroad.ErrInternal, "monitoring query failed", uuid.NewString())
		return
	}
	writeJSON(w, map[string]any{"records": recs, "now_us": time.Now().UnixMicro()})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}
