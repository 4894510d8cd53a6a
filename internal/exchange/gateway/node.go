package gateway

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"embed"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/exchange/catalogue"
	"github.com/ortaq/ortaq/internal/exchange/msglog"
	"github.com/ortaq/ortaq/internal/exchange/xroad"
	"github.com/ortaq/ortaq/internal/pg"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schemas are a gateway node's database: its own tables and the message
// log (which also records personal-data calls for the access log).
func Schemas() []pg.Schema {
	return []pg.Schema{msglog.Schema(), pg.NewSchema("gateway", migrations)}
}

// Files in a node's data directory.
const (
	KeyFile       = "node.key"
	CertFile      = "node.crt"
	CAFile        = "ca.crt"
	CatalogueFile = "catalogue.json"
)

// Config configures a node. Zero durations take the defaults shown.
type Config struct {
	DataDir   string // required: keys, certificate, cached catalogue
	CentreURL string // the central authority, e.g. http://centre:8080
	// MaxCatalogueAge: calls are refused once the catalogue's issue time is
	// older (default 1h).
	MaxCatalogueAge time.Duration
	RefreshEvery    time.Duration // catalogue download period (default 1m)
	SealEvery       time.Duration // message log seal period (default 1m)
	ReplayWindow    time.Duration // accepted clock skew and replay memory (default 5m)
	Clock           clock.Clock
	Logger          *slog.Logger
	// Consent checks the consents presented instead of a legal basis
	// (Ortaq-Consent); nil refuses such calls. [CentreConsent] asks the
	// centre's consent ledger; [ConsentReplica] answers from a replica of
	// it.
	Consent ConsentChecker
	// CentreToken is a system token with the exchange-gateway scope: with
	// it the node ships its personal-data calls to the centre's access log
	// (see [Node.ShipAccessReports]); empty ships nothing.
	CentreToken string
	ShipEvery   time.Duration // access report retry period (default 1s)
	// ClientCerts are the certificates of the member's own systems by
	// subsystem; RequireClientCerts refuses subsystems without any. Either
	// needs the client port on TLS (ClientTLS).
	ClientCerts        ClientCerts
	RequireClientCerts bool
	// ClientTLS serves the client port over TLS (1.2 or later) with the
	// node's own certificate, asking callers for theirs.
	ClientTLS bool
}

// Node is a running gateway node.
type Node struct {
	cfg    Config
	pool   *pgxpool.Pool
	log    *slog.Logger
	clock  clock.Clock
	id     atomic.Pointer[identity]
	ca     *x509.Certificate
	caPool *x509.CertPool
	member xroad.ClientID
	msgs   *msglog.Log
	cat    atomic.Pointer[catalogue.Catalogue]
	replay *replayCache
	mon    *monitor

	mu         sync.Mutex
	transports map[string]*http.Transport

	shipMu   sync.Mutex // one shipment at a time
	shipWake chan struct{}
}

// Open loads the node's identity from its data directory and starts its
// message log on pool (migrated here).
func Open(ctx context.Context, cfg Config, pool *pgxpool.Pool) (*Node, error) {
	if cfg.MaxCatalogueAge == 0 {
		cfg.MaxCatalogueAge = time.Hour
	}
	if cfg.RefreshEvery == 0 {
		cfg.RefreshEvery = time.Minute
	}
	if cfg.SealEvery == 0 {
		cfg.SealEvery = time.Minute
	}
	if cfg.ReplayWindow == 0 {
		cfg.ReplayWindow = 5 * time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ShipEvery == 0 {
		cfg.ShipEvery = time.Second
	}
	n := &Node{cfg: cfg, pool: pool, log: cfg.Logger, clock: cfg.Clock, transports: map[string]*http.Transport{},
		shipWake: make(chan struct{}, 1)}
	id, err := n.loadIdentity()
	if err != nil {
		return nil, err
	}
	n.id.Store(id)
	if err := pg.Migrate(ctx, pool, Schemas(), n.log); err != nil {
		return nil, err
	}
	n.msgs, err = msglog.Open(ctx, pool, id.key, id.cert.Raw)
	if err != nil {
		return nil, err
	}
	if cfg.CentreURL != "" {
		n.msgs.SetTimestamper(n.timestamp)
	}
	n.replay = newReplayCache(cfg.ReplayWindow)
	if err := n.replay.load(ctx, pool, n.clock.Now()); err != nil {
		n.msgs.Close()
		return nil, err
	}
	n.mon = newMonitor(pool)
	if env, err := os.ReadFile(filepath.Join(cfg.DataDir, CatalogueFile)); err == nil {
		if err := n.installEnvelope(env, false); err != nil {
			n.log.Warn("cached catalogue ignored", "error", err)
		}
	}
	return n, nil
}

// Member is the node's member identifier.
func (n *Node) Member() xroad.ClientID { return n.member }

// Serial is the node certificate's serial (hex).
func (n *Node) Serial() string { return n.id.Load().serial }

// Log is the node's message log.
func (n *Node) Log() *msglog.Log { return n.msgs }

// CA is the platform CA certificate.
func (n *Node) CA() *x509.Certificate { return n.ca }

// Close stops the message log writer and the monitor.
func (n *Node) Close() {
	n.msgs.Close()
	n.mon.close()
}

func readPEM(path, typ string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != typ {
		return nil, fmt.Errorf("%s: no %s PEM block", path, typ)
	}
	return blk.Bytes, nil
}

// identity is the node's key and certificate. Enrolling again (rotation)
// writes new files; the node takes them up without a restart (reloadIdentity).
type identity struct {
	key    ed25519.PrivateKey
	cert   *x509.Certificate
	tls    *tls.Certificate
	serial string
	mtime  time.Time
}

func (n *Node) loadIdentity() (*identity, error) {
	dir := n.cfg.DataDir
	st, err := os.Stat(filepath.Join(dir, CertFile))
	if err != nil {
		return nil, fmt.Errorf("node not enrolled (run `ortaq gateway enrol`): %w", err)
	}
	keyDER, err := readPEM(filepath.Join(dir, KeyFile), "PRIVATE KEY")
	if err != nil {
		return nil, fmt.Errorf("node not enrolled (run `ortaq gateway enrol`): %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return nil, fmt.Errorf("parse node key: %w", err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("node key is not Ed25519")
	}
	certDER, err := readPEM(filepath.Join(dir, CertFile), "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	caDER, err := readPEM(filepath.Join(dir, CAFile), "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, err
	}
	if pub, ok := cert.PublicKey.(ed25519.PublicKey); !ok || !pub.Equal(key.Public()) {
		return nil, errors.New("node certificate is not for the node key")
	}
	if n.ca == nil {
		n.ca, err = x509.ParseCertificate(caDER)
		if err != nil {
			return nil, err
		}
		n.caPool = x509.NewCertPool()
		n.caPool.AddCert(n.ca)
	}
	if err := cert.CheckSignatureFrom(n.ca); err != nil {
		return nil, fmt.Errorf("node certificate not issued by the CA: %w", err)
	}
	member, err := xroad.ParseClient(cert.Subject.CommonName)
	if err != nil {
		return nil, fmt.Errorf("node certificate names no member: %w", err)
	}
	if n.member == (xroad.ClientID{}) {
		n.member = member
	} else if member != n.member {
		return nil, fmt.Errorf("new certificate is for %s, this node is %s", member, n.member)
	}
	return &identity{key: key, cert: cert, serial: hex.EncodeToString(cert.SerialNumber.Bytes()), mtime: st.ModTime(),
		tls: &tls.Certificate{Certificate: [][]byte{certDER}, PrivateKey: key, Leaf: cert}}, nil
}

// reloadIdentity takes up a rotated key and certificate once the catalogue
// lists the new certificate, so that peers know it before it is used.
// Connections opened with the old one finish their requests; both stay
// valid until the old one is revoked.
func (n *Node) reloadIdentity() {
	cur := n.id.Load()
	st, err := os.Stat(filepath.Join(n.cfg.DataDir, CertFile))
	if err != nil || st.ModTime().Equal(cur.mtime) {
		return
	}
	next, err := n.loadIdentity()
	if err != nil {
		n.log.Warn("rotated identity not usable yet", "error", err)
		return
	}
	if next.serial == cur.serial {
		return
	}
	if c := n.cat.Load(); c == nil || !c.ActiveSerial(n.member, next.serial) {
		n.log.Info("rotated certificate waits for the catalogue to list it", "serial", next.serial)
		return
	}
	n.id.Store(next)
	n.msgs.SetSigner(next.key, next.cert.Raw)
	n.mu.Lock()
	for _, t := range n.transports {
		t.CloseIdleConnections()
	}
	n.mu.Unlock()
	n.log.Info("node certificate rotated", "old", cur.serial, "new", next.serial)
}

// catalogue is the current catalogue, or nil with the reason to refuse.
func (n *Node) catalogue() (*catalogue.Catalogue, error) {
	c := n.cat.Load()
	if c == nil {
		return nil, errors.New("no catalogue yet")
	}
	if age := n.clock.Now().Sub(c.IssuedAt); age > n.cfg.MaxCatalogueAge {
		return nil, fmt.Errorf("catalogue is %s old, limit %s", age.Round(time.Second), n.cfg.MaxCatalogueAge)
	}
	return c, nil
}

func (n *Node) installEnvelope(raw []byte, save bool) error {
	var env catalogue.Envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("decode catalogue envelope: %w", err)
	}
	c, err := catalogue.Verify(env, n.ca)
	if err != nil {
		return err
	}
	if old := n.cat.Load(); old != nil && c.IssuedAt.Before(old.IssuedAt) {
		return errors.New("catalogue older than the one in use")
	}
	if save {
		tmp := filepath.Join(n.cfg.DataDir, CatalogueFile+".tmp")
		if err := os.WriteFile(tmp, raw, 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(n.cfg.DataDir, CatalogueFile)); err != nil {
			return err
		}
	}
	old := n.cat.Swap(c)
	if old != nil && !sameRevocations(old, c) {
		// Revoked peers must not keep their pooled connections.
		n.mu.Lock()
		for _, t := range n.transports {
			t.CloseIdleConnections()
		}
		n.mu.Unlock()
	}
	return nil
}

func sameRevocations(a, b *catalogue.Catalogue) bool {
	if len(a.Revoked) != len(b.Revoked) {
		return false
	}
	for i := range a.Revoked {
		if a.Revoked[i] != b.Revoked[i] {
			return false
		}
	}
	return true
}

// Refresh downloads, verifies and caches the catalogue once.
func (n *Node) Refresh(ctx context.Context) error {
	if n.cfg.CentreURL == "" {
		return errors.New("no centre configured")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.cfg.CentreURL+"/api/v1/exchange/catalogue", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("download catalogue: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("download catalogue: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download catalogue: %s", resp.Status)
	}
	if err := n.installEnvelope(bytes.TrimSpace(raw), true); err != nil {
		return err
	}
	n.reloadIdentity()
	return nil
}

// timestamp asks the centre to timestamp a seal's digest and checks the
// answer against the CA before the seal keeps it.
func (n *Node) timestamp(ctx context.Context, digest []byte) (int64, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	body, _ := json.Marshal(map[string][]byte{"digest": digest})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.CentreURL+"/api/v1/exchange/timestamp", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("timestamp: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		AtMicros  int64  `json:"at_us"`
		Signature []byte `json:"signature"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&out) != nil {
		return 0, nil, fmt.Errorf("timestamp: centre answered %s", resp.Status)
	}
	if !catalogue.VerifyTimestamp(n.ca, digest, out.AtMicros, out.Signature) {
		return 0, nil, errors.New("timestamp: signature does not verify")
	}
	return out.AtMicros, out.Signature, nil
}

// Listeners are where a node serves.
type Listeners struct {
	Client net.Listener // plain HTTP for the member's own systems
	Peer   net.Listener // mutual TLS for other gateways
}

// Serve runs the node until ctx ends: both listeners, the catalogue
// refresher and the log sealer.
func (n *Node) Serve(ctx context.Context, ls Listeners) error {
	if err := n.Refresh(ctx); err != nil {
		n.log.Warn("catalogue refresh failed; using the cached one", "error", err)
	}
	client := &http.Server{Handler: n.ClientHandler(), ReadHeaderTimeout: 10 * time.Second}
	if n.cfg.ClientTLS {
		ls.Client = tls.NewListener(ls.Client, n.clientServerTLS())
	}
	peer := &http.Server{Handler: n.PeerHandler(), ReadHeaderTimeout: 10 * time.Second, TLSConfig: n.peerServerTLS()}
	errc := make(chan error, 2)
	go func() { errc <- client.Serve(ls.Client) }()
	go func() { errc <- peer.Serve(tls.NewListener(ls.Peer, peer.TLSConfig)) }()
	go n.every(ctx, n.cfg.RefreshEvery, func() {
		if err := n.Refresh(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("catalogue refresh failed; using the cached one", "error", err)
		}
	})
	if n.cfg.CentreToken != "" {
		go n.shipLoop(ctx)
	}
	go n.every(ctx, n.cfg.SealEvery, func() {
		if _, err := n.msgs.Seal(ctx); err != nil && ctx.Err() == nil {
			n.log.Error("message log seal failed", "error", err)
		}
	})
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = client.Shutdown(sctx)
	_ = peer.Shutdown(sctx)
	if _, serr := n.msgs.Seal(sctx); serr != nil {
		n.log.Error("final message log seal failed", "error", serr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (n *Node) every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// stillActive is the per-request check of a connection whose chain the
// handshake verified: its certificate must still be listed and unrevoked.
func (n *Node) stillActive(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("peer sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	member, err := xroad.ParseClient(leaf.Subject.CommonName)
	c := n.cat.Load()
	if err != nil || c == nil || !c.ActiveSerial(member, hex.EncodeToString(leaf.SerialNumber.Bytes())) {
		return errors.New("peer certificate is not active in the catalogue (revoked or unknown)")
	}
	return nil
}

// verifyPeer checks a peer's certificate chain against the CA and the
// catalogue; want, if set, is the member the peer must be.
func (n *Node) verifyPeer(cs tls.ConnectionState, want xroad.ClientID) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("peer sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: n.caPool, CurrentTime: n.clock.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("peer certificate: %w", err)
	}
	member, err := xroad.ParseClient(leaf.Subject.CommonName)
	if err != nil {
		return errors.New("peer certificate names no member")
	}
	if want != (xroad.ClientID{}) && member != want.MemberID() {
		return fmt.Errorf("peer is %s, want %s", member, want.MemberID())
	}
	c := n.cat.Load()
	if c == nil || !c.ActiveSerial(member, hex.EncodeToString(leaf.SerialNumber.Bytes())) {
		return errors.New("peer certificate is not active in the catalogue (revoked or unknown)")
	}
	return nil
}

// clientServerTLS is the client port's TLS: the node's certificate, and a
// request (not a demand) for the caller's, which authenticateClient checks
// against the subsystem's registered ones.
func (n *Node) clientServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return n.id.Load().tls, nil },
		ClientAuth:     tls.RequestClientCert,
	}
}

func (n *Node) peerServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return n.id.Load().tls, nil },
		ClientAuth:     tls.RequireAnyClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return n.verifyPeer(cs, xroad.ClientID{})
		},
	}
}

// transport is the pooled connection to the gateway of member.
func (n *Node) transport(member xroad.ClientID) *http.Transport {
	key := member.MemberID().String()
	n.mu.Lock()
	defer n.mu.Unlock()
	if t, ok := n.transports[key]; ok {
		return t
	}
	want := member.MemberID()
	t := &http.Transport{
		TLSClientConfig: &tls.Config{
			MinVersion:           tls.VersionTLS13,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return n.id.Load().tls, nil },
			// The chain, the member and the catalogue are checked below:
			// gateways are addressed by catalogue entry, not by host name.
			InsecureSkipVerify: true,
			VerifyConnection:   func(cs tls.ConnectionState) error { return n.verifyPeer(cs, want) },
		},
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		// Bounded, so that a burst queues for a connection instead of
		// running the node out of file descriptors.
		MaxConnsPerHost:     256,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		DisableCompression:  true,
	}
	n.transports[key] = t
	return t
}
