package cli

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ortaq/ortaq/internal/bench"
	"github.com/ortaq/ortaq/internal/exchange/gateway"
	"github.com/ortaq/ortaq/internal/exchange/msglog"
)

func gatewayCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: ortaq gateway enrol|serve|log verify|log export [flags]  (see ortaq gateway serve --help)")
		return errUsage
	}
	switch args[0] {
	case "enrol", "enroll":
		return gatewayEnrol(args[1:], stdout, stderr)
	case "serve":
		return gatewayServe(args[1:], stdout, stderr)
	case "log":
		if len(args) > 1 && args[1] == "verify" {
			return gatewayLogVerify(args[2:], stdout, stderr)
		}
		if len(args) > 1 && args[1] == "export" {
			return gatewayLogExport(args[2:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "ortaq gateway: unknown subcommand %q (enrol, serve, log verify, log export)\n", args[0])
	return errUsage
}

type gatewayStoreFlags struct {
	dataDir, databaseURL, pgBin, level string
}

func (g *gatewayStoreFlags) add(f *flags) {
	f.String(&g.dataDir, "data", "./ortaq-gateway", "the node's data directory: key, certificate, cached catalogue, embedded PostgreSQL (db/)")
	f.String(&g.databaseURL, "database-url", "", "PostgreSQL connection string for the node; empty starts an embedded cluster under --data", "DATABASE_URL")
	f.String(&g.pgBin, "pg-bin", "", "directory with initdb and postgres; empty searches PATH and /usr/lib/postgresql/*/bin")
	f.String(&g.level, "log-level", "info", "log level: debug, info, warn or error")
}

func gatewayEnrol(args []string, stdout, stderr io.Writer) error {
	var centre, dir, token, address string
	f := newFlags("gateway enrol", "Enrols this node with the central authority: creates its Ed25519 key, spends the one-time token, stores the certificate. Enrolling again rotates the key.", stderr)
	f.String(&centre, "centre", "http://127.0.0.1:8080", "URL of the central authority (ortaq serve)")
	f.String(&dir, "data", "./ortaq-gateway", "the node's data directory")
	f.String(&token, "token", "", "one-time enrolment token (prefer the environment variable)", "ORTAQ_ENROL_TOKEN")
	f.String(&address, "address", "", "host:port where other gateways reach this node's peer listener")
	if err := f.Parse(args); err != nil {
		return err
	}
	if token == "" || address == "" {
		return errors.New("--token and --address are required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e, err := gateway.Enrol(ctx, centre, dir, token, address)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "enrolled %s: certificate %s in %s\n", e.Member, e.Serial, dir)
	return nil
}

func gatewayServe(args []string, stdout, stderr io.Writer) error {
	var sf gatewayStoreFlags
	var cfg gateway.Config
	var clientAddr, peerAddr string
	f := newFlags("gateway serve", "Runs one member's exchange gateway: the X-Road REST client listener and the mutual-TLS peer listener. Stops gracefully on SIGINT or SIGTERM.", stderr)
	sf.add(f)
	f.String(&cfg.CentreURL, "centre", "http://127.0.0.1:8080", "URL of the central authority")
	f.String(&clientAddr, "client-addr", "127.0.0.1:8081", "listen address for the member's own systems (plain HTTP unless --client-tls: then keep it internal)")
	var clientCerts string
	f.Bool(&cfg.ClientTLS, "client-tls", false, "serve the client port over TLS with the node's certificate (the platform CA's ca.crt in the data directory verifies it)")
	f.String(&clientCerts, "client-certs", "", "file of lines \"SUBSYSTEM CERTIFICATE\" (a sha256: fingerprint or a PEM file): each listed subsystem must call with one of its certificates (needs --client-tls)")
	f.Bool(&cfg.RequireClientCerts, "require-client-certs", false, "refuse subsystems that have no certificate in --client-certs")
	f.String(&peerAddr, "peer-addr", "127.0.0.1:8443", "listen address for other gateways (mutual TLS)")
	f.Duration(&cfg.MaxCatalogueAge, "max-catalogue-age", time.Hour, "refuse calls once the catalogue is older than this")
	f.Duration(&cfg.RefreshEvery, "refresh-every", time.Minute, "how often the catalogue is downloaded")
	f.Duration(&cfg.SealEvery, "seal-every", time.Minute, "how often the message log is sealed")
	f.Duration(&cfg.ReplayWindow, "replay-window", 5*time.Minute, "accepted clock difference between gateways and replay memory")
	var consentToken string
	f.String(&consentToken, "consent-token", "", "a system access token with the exchange-gateway scope (ortaq token issue --kind system --role exchange-gateway): this gateway keeps a replica of the centre's consents for the exchange's clients (checks in microseconds; the centre is asked directly while the replica is not current) and ships its personal-data calls to the citizens' access log; empty: calls that present a consent (Ortaq-Consent) are refused and nothing is shipped (prefer the environment variable: flags show in ps)")
	if err := f.Parse(args); err != nil {
		return err
	}
	log, err := logger(sf.level, stderr)
	if err != nil {
		return err
	}
	cfg.DataDir, cfg.Logger = sf.dataDir, log
	if (clientCerts != "" || cfg.RequireClientCerts) && !cfg.ClientTLS {
		return fmt.Errorf("--client-certs and --require-client-certs need --client-tls: a certificate is presented over TLS")
	}
	if clientCerts != "" {
		if cfg.ClientCerts, err = gateway.ReadClientCerts(clientCerts); err != nil {
			return fmt.Errorf("--client-certs %s: %w", clientCerts, err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if consentToken != "" {
		centre := strings.TrimRight(cfg.CentreURL, "/")
		replica := &gateway.ConsentReplica{URL: centre, Token: consentToken, Log: log,
			Fallback: gateway.CentreConsent{URL: centre, Token: consentToken, HTTP: &http.Client{Timeout: 10 * time.Second}, Unrecorded: true}}
		go replica.Run(ctx)
		cfg.Consent, cfg.CentreToken = replica, consentToken
	}
	store, err := gateway.OpenStore(ctx, sf.dataDir, sf.databaseURL, sf.pgBin, log)
	if err != nil {
		return err
	}
	defer store.Close(context.Background())
	node, err := gateway.Open(ctx, cfg, store.Pool)
	if err != nil {
		return err
	}
	defer node.Close()
	cl, err := net.Listen("tcp", clientAddr)
	if err != nil {
		return err
	}
	pl, err := net.Listen("tcp", peerAddr)
	if err != nil {
		cl.Close()
		return err
	}
	scheme := "http"
	if cfg.ClientTLS {
		scheme = "https"
	}
	fmt.Fprintf(stdout, "gateway %s: clients on %s://%s, peers on %s\n", node.Member(), scheme, cl.Addr(), pl.Addr())
	log.Info("gateway serving", "member", node.Member().String(), "client", cl.Addr().String(), "peer", pl.Addr().String())
	return node.Serve(ctx, gateway.Listeners{Client: cl, Peer: pl})
}

func readCA(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return x509.ParseCertificate(blk.Bytes)
}

func gatewayLogVerify(args []string, stdout, stderr io.Writer) error {
	var sf gatewayStoreFlags
	var archive, caPath string
	f := newFlags("gateway log verify", "Verifies the message log: the hash chain (altered, removed or reordered entries) and every seal's signature. With --archive, an exported archive offline.", stderr)
	sf.add(f)
	f.String(&archive, "archive", "", "verify this exported archive instead of the node's database")
	f.String(&caPath, "ca", "", "CA certificate (PEM) that issued the sealing certificates; default <data>/ca.crt")
	if err := f.Parse(args); err != nil {
		return err
	}
	if caPath == "" {
		caPath = filepath.Join(sf.dataDir, gateway.CAFile)
	}
	ca, err := readCA(caPath)
	if err != nil {
		return fmt.Errorf("CA certificate: %w", err)
	}
	var rep msglog.Report
	if archive != "" {
		file, err := os.Open(archive)
		if err != nil {
			return err
		}
		defer file.Close()
		rep, err = msglog.VerifyArchive(file, ca)
		if err != nil {
			return err
		}
	} else {
		log, err := logger(sf.level, stderr)
		if err != nil {
			return err
		}
		ctx := context.Background()
		store, err := gateway.OpenStore(ctx, sf.dataDir, sf.databaseURL, sf.pgBin, log)
		if err != nil {
			return err
		}
		defer store.Close(ctx)
		rep, err = msglog.VerifyDB(ctx, store.Pool, ca)
		if err != nil {
			return err
		}
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(stdout, "PROBLEM", p)
	}
	fmt.Fprintf(stdout, "ok=%t entries=%d seals=%d timestamped=%d unsealed=%d problems=%d\n", rep.OK(), rep.Entries, rep.Seals, rep.Timestamped,
		rep.Unsealed, len(rep.Problems))
	if !rep.OK() {
		return errProblems
	}
	return nil
}

func gatewayLogExport(args []string, stdout, stderr io.Writer) error {
	var sf gatewayStoreFlags
	var out string
	f := newFlags("gateway log export", "Writes the message log (entries, seals, sealing certificates) as a JSON-lines archive that `ortaq gateway log verify --archive` checks offline.", stderr)
	sf.add(f)
	f.String(&out, "out", "", "archive file to write")
	if err := f.Parse(args); err != nil {
		return err
	}
	if out == "" {
		return errors.New("--out is required")
	}
	log, err := logger(sf.level, stderr)
	if err != nil {
		return err
	}
	ctx := context.Background()
	store, err := gateway.OpenStore(ctx, sf.dataDir, sf.databaseURL, sf.pgBin, log)
	if err != nil {
		return err
	}
	defer store.Close(ctx)
	file, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := msglog.Export(ctx, store.Pool, file); err != nil {
		file.Close()
		return err
	}
	if err := file.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "exported to %s\n", out)
	return nil
}

func benchExchange(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg bench.ExchangeConfig
	f := newFlags("bench exchange", "Measures client → gateway A → gateway B → provider (mutual TLS, signed and verified messages, both "+
		"message logs durable before the response) against client → provider and client → plain reverse proxy → provider, on "+
		"loopback with a fresh durable embedded PostgreSQL: requests/s with --concurrency clients, then latency p50/p99 at --rate. "+
		"Ends with one key=value summary line.", stderr)
	f.Int(&cfg.Concurrency, "concurrency", 32, "clients of the throughput phase")
	f.Duration(&cfg.Duration, "duration", 5*time.Second, "length of each throughput phase")
	f.Int(&cfg.Rate, "rate", 500, "requests per second offered in the latency phase")
	f.Duration(&cfg.LatencyFor, "latency-for", 10*time.Second, "length of each latency phase")
	f.String(&cfg.PGBin, "pg-bin", "", "directory with initdb and postgres")
	f.Bool(&cfg.Consent, "consent", false, "make the service a personal-data one and every gateway call present a consent: both gateways check it with their replica of the centre's consents and ship the calls to the centre's access log; the summary adds consent_check_p99_us (time inside the check, on both gateways)")
	if err := f.Parse(args); err != nil {
		return err
	}
	return bench.Exchange(ctx, cfg, stdout)
}
