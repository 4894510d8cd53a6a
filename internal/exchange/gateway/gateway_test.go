package gateway_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/consent"
	"github.com/ortaq/ortaq/internal/exchange"
	"github.com/ortaq/ortaq/internal/exchange/catalogue"
	"github.com/ortaq/ortaq/internal/exchange/gateway"
	"github.com/ortaq/ortaq/internal/exchange/msglog"
	"github.com/ortaq/ortaq/internal/exchange/xroad"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/outbox"
	"github.com/ortaq/ortaq/internal/pg"
	"github.com/ortaq/ortaq/internal/pgtest"
	"github.com/ortaq/ortaq/internal/web"
)

func TestMain(m *testing.M) {
	pgtest.Main(m, append([]pg.Schema{exchange.Schema(), audit.Schema(), outbox.Schema(), consent.Schema()}, gateway.Schemas()...)...)
}

const adminToken = "test-admin"

type testNode struct {
	*gateway.Node
	db     pgtest.DB
	client string // base URL of the client listener
	dir    string // data directory
	peer   string // peer listener address
	cancel context.CancelFunc
	done   chan error
	// replica follows the centre's consents (env.replicas).
	replica *gateway.ConsentReplica
}

type env struct {
	t      *testing.T
	centre *httptest.Server
	auth   *exchange.Authority
	clock  *clock.Fake
	// consent checks the nodes' consent-based calls (consent_test.go).
	consent gateway.ConsentChecker
	// ledger is the centre's consent ledger; with replicas, each node
	// follows it with a ConsentReplica and ships its access reports.
	ledger   *consent.Ledger
	centreDB *pgxpool.Pool
	replicas bool
	// configure, when set, adjusts each node's configuration.
	configure func(*gateway.Config)
}

// gatewayToken is the nodes' system token at the test centre.
const gatewayToken = "gateway-token"

// centreAuth stands in for the platform's token check: the nodes' token is
// a system with the exchange-gateway scope, "plain-token" one without.
func centreAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Authorization") {
		case "Bearer " + gatewayToken:
			r = r.WithContext(identity.WithPrincipal(r.Context(), identity.Principal{Kind: identity.System, Subject: "gateways",
				Roles: []string{identity.ScopeExchangeGateway}}))
		case "Bearer plain-token":
			r = r.WithContext(identity.WithPrincipal(r.Context(), identity.Principal{Kind: identity.System, Subject: "plain"}))
		}
		next.ServeHTTP(w, r)
	})
}

func newEnv(t *testing.T) *env {
	db := pgtest.New(t)
	auth := exchange.New(db.Pool, clock.Real{}, "KZ")
	s := web.New(web.Config{Logger: slog.New(slog.DiscardHandler)})
	s.Use(centreAuth)
	auth.Routes(s, adminToken)
	ledger := consent.New(db.Pool, clock.Real{}, nil, nil)
	ledger.Routes(s)
	centre := httptest.NewServer(s.Handler())
	t.Cleanup(centre.Close)
	return &env{t: t, centre: centre, auth: auth, clock: clock.NewFake(time.Now()), ledger: ledger, centreDB: db.Pool}
}

// admin calls the centre's API.
func (e *env) admin(method, path string, body any) map[string]any {
	e.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, e.centre.URL+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	if resp.StatusCode >= 300 {
		e.t.Fatalf("%s %s: %s %s", method, path, resp.Status, raw)
	}
	return out
}

func (e *env) member(code, subsystem string) {
	e.admin("POST", "/api/v1/exchange/members", map[string]any{"class": "GOV", "code": code, "name": "Agency " + code})
	e.admin("POST", "/api/v1/exchange/subsystems", map[string]any{"id": "KZ/GOV/" + code + "/" + subsystem, "name": subsystem})
}

func (e *env) node(code string, maxAge time.Duration) *testNode {
	t := e.t
	tok := e.admin("POST", "/api/v1/exchange/enrolment-tokens", map[string]any{"member": "KZ/GOV/" + code})["token"].(string)
	peerLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	clientLn, _ := net.Listen("tcp", "127.0.0.1:0")
	dir := t.TempDir()
	if _, err := gateway.Enrol(context.Background(), e.centre.URL, dir, tok, peerLn.Addr().String()); err != nil {
		t.Fatal(err)
	}
	db := pgtest.New(t)
	var clk clock.Clock = clock.Real{}
	if e.clock != nil {
		clk = e.clock
	}
	cfg := gateway.Config{DataDir: dir, CentreURL: e.centre.URL, MaxCatalogueAge: maxAge,
		RefreshEvery: time.Hour, SealEvery: time.Hour, Clock: clk, Consent: e.consent}
	ctx, cancel := context.WithCancel(context.Background())
	var replica *gateway.ConsentReplica
	if e.replicas {
		replica = &gateway.ConsentReplica{URL: e.centre.URL, Token: gatewayToken, Clock: clock.Real{},
			Fallback: gateway.CentreConsent{URL: e.centre.URL, Token: gatewayToken, Unrecorded: true}}
		go replica.Run(ctx)
		cfg.Consent, cfg.CentreToken, cfg.ShipEvery = replica, gatewayToken, time.Hour
	}
	if e.configure != nil {
		e.configure(&cfg)
	}
	n, err := gateway.Open(context.Background(), cfg, db.Pool)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	scheme := "http://"
	if cfg.ClientTLS {
		scheme = "https://"
	}
	tn := &testNode{Node: n, db: db, client: scheme + clientLn.Addr().String(), cancel: cancel, done: make(chan error, 1),
		dir: dir, peer: peerLn.Addr().String(), replica: replica}
	go func() { tn.done <- n.Serve(ctx, gateway.Listeners{Client: clientLn, Peer: peerLn}) }()
	t.Cleanup(func() { cancel(); <-tn.done; n.Close() })
	return tn
}

func (e *env) refresh(nodes ...*testNode) {
	for _, n := range nodes {
		if err := n.Refresh(context.Background()); err != nil {
			e.t.Fatal(err)
		}
	}
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func call(t *testing.T, method, url string, body io.Reader, headers ...string) reply {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

// provider echoes what it got.
func provider(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := r.URL.Query().Get("bytes"); n != "" {
			var size int64
			fmt.Sscan(n, &size)
			w.Header().Set("Content-Type", "application/octet-stream")
			buf := make([]byte, 32<<10)
			for size > 0 {
				k := min(size, int64(len(buf)))
				w.Write(buf[:k])
				size -= k
			}
			return
		}
		h := sha256.New()
		size, _ := io.Copy(h, r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"path": r.URL.Path, "query": r.URL.RawQuery, "method": r.Method, "size": size, "sha256": hex.EncodeToString(h.Sum(nil)),
			"client": r.Header.Get(xroad.HeaderClient), "id": r.Header.Get(xroad.HeaderID), "user": r.Header.Get(xroad.HeaderUserID),
		})
	}))
	t.Cleanup(s.Close)
	return s
}

func TestExchange(t *testing.T) {
	e := newEnv(t)
	prov := provider(t)
	e.member("100", "portal")
	e.member("200", "registry")
	e.member("300", "other")
	openapi := map[string]any{"openapi": "3.0.3", "info": map[string]any{"title": "Persons", "version": "1"}, "paths": map[string]any{}}
	e.admin("POST", "/api/v1/exchange/services", map[string]any{"id": "KZ/GOV/200/registry/persons", "title": "Persons", "url": prov.URL + "/api", "openapi": openapi})
	e.admin("POST", "/api/v1/exchange/services", map[string]any{"id": "KZ/GOV/200/registry/secret", "title": "Secret", "url": prov.URL + "/secret"})
	e.admin("POST", "/api/v1/exchange/services", map[string]any{"id": "KZ/GOV/200/registry/pd", "title": "Person data", "url": prov.URL + "/pd", "personal_data": true})
	e.admin("POST", "/api/v1/exchange/access", map[string]any{"client": "KZ/GOV/100/portal", "service": "KZ/GOV/200/registry/persons"})
	e.admin("POST", "/api/v1/exchange/access", map[string]any{"client": "KZ/GOV/100/portal", "service": "KZ/GOV/200/registry/pd", "method": "GET"})
	a := e.node("100", time.Hour)
	b := e.node("200", time.Hour)
	c := e.node("300", time.Hour)
	e.refresh(a, b, c)
	const client = "KZ/GOV/100/portal"

	t.Run("allowed call end to end", func(t *testing.T) {
		r := call(t, "POST", a.client+"/r1/KZ/GOV/200/registry/persons/p/1?x=1", strings.NewReader(`{"q":1}`),
			xroad.HeaderClient, client, xroad.HeaderID, "msg-1", xroad.HeaderUserID, "KZ880101300123", "Content-Type", "application/json")
		if r.status != 200 {
			t.Fatalf("status %d %s %s", r.status, r.header.Get(xroad.HeaderError), r.body)
		}
		var got map[string]any
		json.Unmarshal(r.body, &got)
		sum := sha256.Sum256([]byte(`{"q":1}`))
		if got["path"] != "/api/p/1" || got["query"] != "x=1" || got["sha256"] != hex.EncodeToString(sum[:]) || got["client"] != client || got["id"] != "msg-1" {
			t.Fatalf("provider saw %v", got)
		}
		for _, h := range []string{xroad.HeaderRequestHash, xroad.HeaderRequestID} {
			if r.header.Get(h) == "" {
				t.Errorf("response header %s missing", h)
			}
		}
		if r.header.Get(xroad.HeaderID) != "msg-1" || r.header.Get(xroad.HeaderService) != "KZ/GOV/200/registry/persons" || r.header.Get(xroad.HeaderClient) != client {
			t.Errorf("response headers %v", r.header)
		}
		// A GET without X-Road-Id gets one.
		r = call(t, "GET", a.client+"/r1/KZ/GOV/200/registry/persons", nil, xroad.HeaderClient, client)
		if r.status != 200 || r.header.Get(xroad.HeaderID) == "" {
			t.Fatalf("GET: %d %v %s", r.status, r.header, r.body)
		}
	})

	t.Run("no access refused", func(t *testing.T) {
		r := call(t, "GET", a.client+"/r1/KZ/GOV/200/registry/secret", nil, xroad.HeaderClient, client)
		if r.status != 403 || r.header.Get(xroad.HeaderError) != xroad.ErrAccessDenied {
			t.Fatalf("%d %v %s", r.status, r.header, r.body)
		}
		var body xroad.ErrorBody
		if json.Unmarshal(r.body, &body) != nil || body.Type != xroad.ErrAccessDenied || body.Detail == "" {
			t.Fatalf("error body %s", r.body)
		}
		// Right method only.
		r = call(t, "POST", a.client+"/r1/KZ/GOV/200/registry/pd", nil, xroad.HeaderClient, client)
		if r.status != 403 {
			t.Fatalf("POST on a GET-only right: %d", r.status)
		}
		// Someone else's subsystem.
		r = call(t, "GET", a.client+"/r1/KZ/GOV/200/registry/persons", nil, xroad.HeaderClient, "KZ/GOV/300/other")
		if r.status != 403 || r.header.Get(xroad.HeaderError) != xroad.ErrClientDenied {
			t.Fatalf("foreign client: %d %v", r.status, r.header)
		}
		r = call(t, "GET", a.client+"/r1/KZ/GOV/200/registry/persons", nil, xroad.HeaderClient, "not an id")
		if r.status != 400 {
			t.Fatalf("bad client id: %d", r.status)
		}
	})

	t.Run("replay refused", func(t *testing.T) {
		r := call(t, "GET", a.client+"/r1/KZ/GOV/200/registry/persons", nil, xroad.HeaderClient, client, xroad.HeaderID, "once")
		if r.status != 200 {
			t.Fatalf("first: %d %s", r.status, r.body)
		}
		r = call(t, "GET", a.client+"/r1/KZ/GOV/200/registry/persons", nil, xroad.HeaderClient, client, xroad.HeaderID, "once")
		if r.status != 409 || r.header.Get(xroad.HeaderError) != xroad.ErrReplay {
			t.Fatalf("replay: %d %v %s", r.status, r.header, r.body)
		}
	})

	t.Run("forged signature refused by the provider's gateway", func(t *testing.T) {
		// A's own certificate, but not A's signature.
		crt, err := tls.LoadX509KeyPair(filepath.Join(a.dir, gateway.CertFile), filepath.Join(a.dir, gateway.KeyFile))
		if err != nil {
			t.Fatal(err)
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{crt}, InsecureSkipVerify: true}}}
		req, _ := http.NewRequest("GET", "https://"+b.peer+"/r1/KZ/GOV/200/registry/persons", nil)
		req.Header.Set(xroad.HeaderClient, client)
		req.Header.Set(xroad.HeaderID, "forged-1")
		req.Header.Set("Ortaq-Time", fmt.Sprint(time.Now().UnixMicro()))
		req.Header.Set("Ortaq-Signature", base64.StdEncoding.EncodeToString(make([]byte, 64)))
		req.Header.Set("Ortaq-Body-Hash", base64.StdEncoding.EncodeToString(make([]byte, 32)))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 || resp.Header.Get(xroad.HeaderError) != xroad.ErrSignature {
			t.Fatalf("forged request: %d %v", resp.StatusCode, resp.Header)
		}
		// Without a client certificate there is no connection at all.
		plain := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		if resp, err := plain.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("no client certificate: %d", resp.StatusCode)
		}
	})

	t.Run("exact replay and tampered streamed body refused", func(t *testing.T) {
		crt, err := tls.LoadX509KeyPair(filepath.Join(a.dir, gateway.CertFile), filepath.Join(a.dir, gateway.KeyFile))
		if err != nil {
			t.Fatal(err)
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{crt}, InsecureSkipVerify: true}}}
		const target = "/r1/KZ/GOV/200/registry/persons/raw"
		now := time.Now().UnixMicro()
		empty := sha256.Sum256(nil)
		emptyHash := base64.StdEncoding.EncodeToString(empty[:])
		sig := a.SignRequestHead("GET", target, client, "KZ/GOV/200/registry/persons", "raw-1", emptyHash, now)
		send := func() *http.Response {
			req, _ := http.NewRequest("GET", "https://"+b.peer+target, nil)
			req.Header.Set(xroad.HeaderClient, client)
			req.Header.Set(xroad.HeaderID, "raw-1")
			req.Header.Set("Ortaq-Time", fmt.Sprint(now))
			req.Header.Set("Ortaq-Signature", base64.StdEncoding.EncodeToString(sig))
			req.Header.Set("Ortaq-Body-Hash", emptyHash)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp
		}
		if resp := send(); resp.StatusCode != 200 {
			t.Fatalf("hand-signed request: %d %v", resp.StatusCode, resp.Header)
		}
		if resp := send(); resp.StatusCode != 409 || resp.Header.Get(xroad.HeaderError) != xroad.ErrReplay {
			t.Fatalf("exact replay: %d %v", resp.StatusCode, resp.Header)
		}

		// A streamed body whose trailer does not match what arrived.
		body := strings.Repeat("x", 100<<10)
		sig = a.SignRequestHead("POST", target, client, "KZ/GOV/200/registry/persons", "raw-2", "", now)
		req, _ := http.NewRequest("POST", "https://"+b.peer+target, io.NopCloser(strings.NewReader(body)))
		req.ContentLength = -1
		req.Header.Set(xroad.HeaderClient, client)
		req.Header.Set(xroad.HeaderID, "raw-2")
		req.Header.Set("Ortaq-Time", fmt.Sprint(now))
		req.Header.Set("Ortaq-Signature", base64.StdEncoding.EncodeToString(sig))
		other := sha256.Sum256([]byte("something else"))
		req.Trailer = http.Header{"Ortaq-Body-Hash": {base64.StdEncoding.EncodeToString(other[:])},
			"Ortaq-Body-Signature": {base64.StdEncoding.EncodeToString(a.SignBody(sig, other[:]))}}
		resp, err := hc.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 403 || resp.Header.Get(xroad.HeaderError) != xroad.ErrSignature {
				t.Fatalf("tampered body: %d %v", resp.StatusCode, resp.Header)
			}
		}
	})

	t.Run("personal data needs a basis", func(t *testing.T) {
		r := call(t, "GET", a.client+"/r1/KZ/GOV/200/registry/pd", nil, xroad.HeaderClient, client)
		if r.status != 403 || r.header.Get(xroad.HeaderError) != xroad.ErrPersonalData {
			t.Fatalf("no basis: %d %v", r.status, r.header)
		}
		person, _ := iin.New(time.Date(1988, 1, 1, 0, 0, 0, 0, time.UTC), iin.SexMale, 123)
		r = call(t, "GET", a.client+"/r1/KZ/GOV/200/registry/pd", nil, xroad.HeaderClient, client,
			"Ortaq-Data-Subject", person.String(), "Ortaq-Purpose", "address certificate", "Ortaq-Legal-Basis", "Law on population registration, art. 5")
		if r.status != 200 {
			t.Fatalf("with basis: %d %s", r.status, r.body)
		}
		// Each side's message log entry carries the call for the access log.
		for _, n := range []*testNode{a, b} {
			ev := personalEntries(t, n, person.String())
			if len(ev) != 1 || !strings.Contains(ev[0].Basis, "art. 5") || ev[0].Purpose != "address certificate" || ev[0].Refused != "" {
				t.Fatalf("message log on %s: %+v", n.Member(), ev)
			}
		}
	})

	t.Run("metaservices", func(t *testing.T) {
		r := call(t, "GET", a.client+"/listClients", nil)
		var clients xroad.ClientList
		json.Unmarshal(r.body, &clients)
		if r.status != 200 || len(clients.Member) != 6 {
			t.Fatalf("listClients: %d %s", r.status, r.body)
		}
		var methods xroad.MethodList
		r = call(t, "GET", a.client+"/r1/KZ/GOV/200/registry/listMethods", nil, xroad.HeaderClient, client)
		json.Unmarshal(r.body, &methods)
		if r.status != 200 || len(methods.Service) != 3 || methods.Service[0].ServiceType != "REST" {
			t.Fatalf("listMethods: %d %s", r.status, r.body)
		}
		r = call(t, "GET", a.client+"/r1/KZ/GOV/200/registry/allowedMethods", nil, xroad.HeaderClient, client)
		methods = xroad.MethodList{}
		json.Unmarshal(r.body, &methods)
		if r.status != 200 || len(methods.Service) != 2 {
			t.Fatalf("allowedMethods: %d %s", r.status, r.body)
		}
		r = call(t, "GET", a.client+"/r1/KZ/GOV/200/registry/getOpenAPI?serviceCode=persons", nil, xroad.HeaderClient, client)
		if r.status != 200 || !strings.Contains(string(r.body), `"Persons"`) {
			t.Fatalf("getOpenAPI: %d %s", r.status, r.body)
		}
		r = call(t, "GET", a.client+"/r1/KZ/GOV/200/registry/getOpenAPI?serviceCode=secret", nil, xroad.HeaderClient, client)
		if r.status != 404 {
			t.Fatalf("getOpenAPI without a document: %d", r.status)
		}
	})

	t.Run("streams a large body in bounded memory", func(t *testing.T) {
		size := int64(1 << 30)
		if testing.Short() {
			size = 64 << 20
		}
		var peak atomic.Uint64
		stop := make(chan struct{})
		var base runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&base)
		go func() {
			var m runtime.MemStats
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
					runtime.ReadMemStats(&m)
					if m.HeapInuse > peak.Load() {
						peak.Store(m.HeapInuse)
					}
				}
			}
		}()
		body := io.LimitReader(zeros{}, size)
		req, _ := http.NewRequest("POST", a.client+"/r1/KZ/GOV/200/registry/persons/upload", body)
		req.Header.Set(xroad.HeaderClient, client)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		// And the same size back.
		req, _ = http.NewRequest("GET", fmt.Sprintf("%s/r1/KZ/GOV/200/registry/persons/download?bytes=%d", a.client, size), nil)
		req.Header.Set(xroad.HeaderClient, client)
		resp2, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp2.Body)
		resp2.Body.Close()
		close(stop)
		if resp.StatusCode != 200 || got["size"] != float64(size) {
			t.Fatalf("upload: %d %v", resp.StatusCode, got)
		}
		if err != nil || n != size {
			t.Fatalf("download: %d bytes, %v", n, err)
		}
		grew := int64(peak.Load()) - int64(base.HeapInuse)
		t.Logf("%d MiB up and down; heap in use grew by at most %.1f MiB", size>>20, float64(grew)/(1<<20))
		if grew > 64<<20 {
			t.Fatalf("heap grew by %d MiB", grew>>20)
		}
	})

	t.Run("message logs verify and detect tampering", func(t *testing.T) {
		ctx := context.Background()
		for _, n := range []*testNode{a, b} {
			if _, err := n.Log().Seal(ctx); err != nil {
				t.Fatal(err)
			}
			rep, err := n.Log().Verify(ctx, n.CA())
			if err != nil || !rep.OK() || rep.Entries < 5 || rep.Timestamped != 1 {
				t.Fatalf("%s: %+v %v", n.Member(), rep, err)
			}
		}
		if _, err := b.db.Pool.Exec(ctx, `UPDATE gateway_msglog SET status = 201 WHERE seq = 2`); err != nil {
			t.Fatal(err)
		}
		rep, err := msglog.VerifyDB(ctx, b.db.Pool, b.CA())
		if err != nil || rep.OK() {
			t.Fatalf("tampered log verified: %+v %v", rep, err)
		}
		if _, err := b.db.Pool.Exec(ctx, `UPDATE gateway_msglog SET status = 200 WHERE seq = 2`); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("operational monitoring", func(t *testing.T) {
		r := call(t, "GET", a.client+"/api/v1/monitoring/records?limit=100", nil)
		var got struct{ Records []gateway.OpRecord }
		json.Unmarshal(r.body, &got)
		if r.status != 200 || len(got.Records) < 5 {
			t.Fatalf("records: %d %s", r.status, r.body)
		}
		r = call(t, "GET", a.client+"/metrics", nil)
		if !strings.Contains(string(r.body), `ortaq_gateway_requests_total{direction="out",service="KZ/GOV/200/registry/persons",status="200"}`) {
			t.Fatalf("metrics: %s", r.body)
		}
	})

	t.Run("response released only once both logs hold it", func(t *testing.T) {
		ctx := context.Background()
		statuses := func(n *testNode, id string) []int {
			rows, err := n.db.Pool.Query(ctx, `SELECT status FROM gateway_msglog WHERE message_id = $1 ORDER BY seq`, id)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pgx.CollectRows(rows, pgx.RowTo[int])
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		// A constraint no row meets makes a node's log refuse every entry.
		breakLog := func(n *testNode, broken bool) {
			q := `ALTER TABLE gateway_msglog ADD CONSTRAINT refuse_all CHECK (false) NOT VALID`
			if !broken {
				q = `ALTER TABLE gateway_msglog DROP CONSTRAINT refuse_all`
			}
			if _, err := n.db.Pool.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		// The provider's gateway cannot log: its response reaches A, which
		// logs it and then that it withheld it; the client gets an error.
		breakLog(b, true)
		r := call(t, "GET", a.client+"/r1/KZ/GOV/200/registry/persons", nil, xroad.HeaderClient, client, xroad.HeaderID, "msg-b-unlogged")
		breakLog(b, false)
		if r.status != http.StatusBadGateway || r.header.Get(xroad.HeaderError) != xroad.ErrServiceFailed {
			t.Fatalf("B could not log: %d %v %s", r.status, r.header, r.body)
		}
		if got := statuses(a, "msg-b-unlogged"); !slices.Equal(got, []int{200, -1}) {
			t.Errorf("A logged %v, want [200 -1]", got)
		}
		if got := statuses(b, "msg-b-unlogged"); len(got) != 0 {
			t.Errorf("B logged %v", got)
		}
		// The client's gateway cannot log: B has logged, the client gets an error.
		breakLog(a, true)
		r = call(t, "GET", a.client+"/r1/KZ/GOV/200/registry/persons", nil, xroad.HeaderClient, client, xroad.HeaderID, "msg-a-unlogged")
		breakLog(a, false)
		if r.status != http.StatusInternalServerError || r.header.Get(xroad.HeaderError) != xroad.ErrInternal {
			t.Fatalf("A could not log: %d %v %s", r.status, r.header, r.body)
		}
		if got := statuses(b, "msg-a-unlogged"); !slices.Equal(got, []int{200}) {
			t.Errorf("B logged %v, want [200]", got)
		}
		// Both logs work again, and still verify.
		r = call(t, "GET", a.client+"/r1/KZ/GOV/200/registry/persons", nil, xroad.HeaderClient, client, xroad.HeaderID, "msg-both-logged")
		if r.status != 200 || !slices.Equal(statuses(a, "msg-both-logged"), []int{200}) || !slices.Equal(statuses(b, "msg-both-logged"), []int{200}) {
			t.Fatalf("after repair: %d %s", r.status, r.body)
		}
		for _, n := range []*testNode{a, b} {
			if rep, err := n.Log().Verify(ctx, n.CA()); err != nil || !rep.OK() {
				t.Fatalf("%s: %+v %v", n.Member(), rep, err)
			}
		}
	})

	t.Run("certificate rotation without restart", func(t *testing.T) {
		before := a.Serial()
		tok := e.admin("POST", "/api/v1/exchange/enrolment-tokens", map[string]any{"member": "KZ/GOV/100"})["token"].(string)
		if _, err := gateway.Enrol(context.Background(), e.centre.URL, a.dir, tok, a.peer); err != nil {
			t.Fatal(err)
		}
		e.refresh(b, a) // B learns the new certificate; A takes it up
		if a.Serial() == before {
			t.Fatal("node still uses its old certificate")
		}
		r := call(t, "GET", a.client+"/r1/KZ/GOV/200/registry/persons", nil, xroad.HeaderClient, client)
		if r.status != 200 {
			t.Fatalf("after rotation: %d %s", r.status, r.body)
		}
		e.admin("POST", "/api/v1/exchange/certificates/"+before+"/revoke", nil)
		e.refresh(b, a)
		if r := call(t, "GET", a.client+"/r1/KZ/GOV/200/registry/persons", nil, xroad.HeaderClient, client); r.status != 200 {
			t.Fatalf("old certificate revoked: %d %s", r.status, r.body)
		}
	})

	t.Run("revoked certificate refused", func(t *testing.T) {
		e.admin("POST", "/api/v1/exchange/certificates/"+a.Serial()+"/revoke", nil)
		e.refresh(b)
		r := call(t, "GET", a.client+"/r1/KZ/GOV/200/registry/persons", nil, xroad.HeaderClient, client)
		if r.status == 200 {
			t.Fatalf("revoked gateway still served: %d %s", r.status, r.body)
		}
		t.Logf("revoked: %d %s", r.status, r.header.Get(xroad.HeaderError))
	})

	t.Run("cached catalogue while the centre is down, refused after the limit", func(t *testing.T) {
		e.centre.Close()
		// c calls nobody here; b serves its own metaservices from the cache.
		if err := b.Refresh(context.Background()); err == nil {
			t.Fatal("centre still answers")
		}
		r := call(t, "GET", b.client+"/listClients", nil)
		if r.status != 200 {
			t.Fatalf("cached: %d %s", r.status, r.body)
		}
		e.clock.Advance(2 * time.Hour)
		r = call(t, "GET", b.client+"/listClients", nil)
		if r.status != 503 || r.header.Get(xroad.HeaderError) != xroad.ErrOutdatedConf {
			t.Fatalf("outdated: %d %v", r.status, r.header)
		}
	})
	_ = catalogue.Envelope{}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func adminCall(t *testing.T, base, token, method, path string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &out)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %s %s", method, path, resp.Status, raw)
	}
	return out
}

func certSerial(t *testing.T, path string) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(raw)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(c.SerialNumber.Bytes())
}

func openPool(t *testing.T, url string) *pgxpool.Pool {
	p, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// personalEntries are the node's message log entries about subject.
func personalEntries(t *testing.T, n *testNode, subject string) []msglog.Entry {
	t.Helper()
	all, err := msglog.PersonalAfter(context.Background(), n.db.Pool, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []msglog.Entry
	for _, e := range all {
		if e.Subject == subject {
			out = append(out, e)
		}
	}
	return out
}
