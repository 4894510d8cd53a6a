// Package app is the one composition root: it builds every capability from
// its constructor and configuration, wires them together, and runs the
// platform. Nothing imports app except the command line.
//
// May import: every internal package.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/agency"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/calendar"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/consent"
	"github.com/ortaq/ortaq/internal/demo"
	"github.com/ortaq/ortaq/internal/document"
	"github.com/ortaq/ortaq/internal/esign"
	"github.com/ortaq/ortaq/internal/exchange"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/notify"
	"github.com/ortaq/ortaq/internal/outbox"
	"github.com/ortaq/ortaq/internal/pg"
	"github.com/ortaq/ortaq/internal/portal/citizen"
	"github.com/ortaq/ortaq/internal/process"
	"github.com/ortaq/ortaq/internal/registry"
	"github.com/ortaq/ortaq/internal/service"
	"github.com/ortaq/ortaq/internal/servicedef"
	"github.com/ortaq/ortaq/internal/web"
	"github.com/ortaq/ortaq/registries"
)

// ExchangeInstance is the X-Road instance code of the platform's exchange.
const ExchangeInstance = "KZ"

// Schemas lists every capability's schema in dependency order.
func Schemas() []pg.Schema {
	return []pg.Schema{
		agency.Schema(),
		identity.Schema(),
		audit.Schema(),
		outbox.Schema(),
		registry.Schema(),
		service.Schema(),
		document.Schema(),
		calendar.Schema(),
		exchange.Schema(),
		esign.Schema(),
		notify.Schema(),
		consent.Schema(),
		process.Schema(),
		citizen.Schema(),
	}
}

// Config is the platform's configuration; the command line fills it.
type Config struct {
	Addr        string        // HTTP listen address
	DataDir     string        // embedded mode's data directory
	DatabaseURL string        // external PostgreSQL; empty means embedded
	PGBin       string        // where initdb and postgres are; empty means search
	Demo        bool          // seed demo data
	DemoPeople  int           // size of the synthetic population
	Workers     int           // concurrent application steps on this node
	JobTimeout  time.Duration // bound on one step
	// AdminToken guards administrative API calls (publishing services) until
	// officers sign in; empty switches them off.
	AdminToken string
	// PublicURL is the platform's public base URL, the OpenID Connect
	// issuer; empty takes each request's scheme and host (development).
	PublicURL string
	// OIDCIssuer delegates citizens' sign-in to an external OpenID Connect
	// provider (its client id and secret below; the callback is
	// PublicURL/login/external/callback); empty keeps the built-in sign-in
	// only.
	OIDCIssuer       string
	OIDCClientID     string
	OIDCClientSecret string
	// TrustedProxies are the load balancers (addresses or CIDR prefixes)
	// whose X-Forwarded-For names the caller, for sign-in's per-address
	// limit; empty trusts no header.
	TrustedProxies []string
	// Clock is the platform's time; nil means the real clock. Service test
	// runs fix it per case.
	Clock clock.Clock
	// ExchangeGateway is the base URL of the platform's own exchange
	// gateway (X-Road REST), through which services read other agencies'
	// systems; ExchangeClient is the platform's subsystem id there
	// (INSTANCE/CLASS/MEMBER/SUBSYSTEM).
	ExchangeGateway string
	ExchangeClient  string
	// Exchange replaces the gateway client (service test runs answer from
	// their cases' fixtures).
	Exchange process.ExchangeReader
}

// Database is an open, migrated database, with the embedded cluster behind it
// when there is one.
type Database struct {
	Pool    *pgxpool.Pool
	cluster *pg.Cluster
}

// Close closes the pool and stops the embedded cluster, if any.
func (d *Database) Close(ctx context.Context) {
	if d.Pool != nil {
		d.Pool.Close()
	}
	if d.cluster != nil {
		d.cluster.Stop(ctx)
	}
}

// Exited is closed if the embedded cluster stops unexpectedly.
func (d *Database) Exited() <-chan struct{} {
	if d.cluster == nil {
		return nil
	}
	return d.cluster.Exited()
}

// OpenDatabase connects to DatabaseURL, or starts the embedded cluster in
// DataDir, and applies every migration.
func OpenDatabase(ctx context.Context, cfg Config, log *slog.Logger) (*Database, error) {
	db := &Database{}
	url := cfg.DatabaseURL
	if url == "" {
		bin, err := pg.FindBinaries(cfg.PGBin)
		if err != nil {
			return nil, err
		}
		dir, err := filepath.Abs(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		log.Info("starting embedded PostgreSQL", "data", dir, "bin", bin)
		db.cluster, err = pg.StartCluster(ctx, pg.ClusterConfig{Dir: dir, BinDir: bin, Durable: true, Logger: log})
		if err != nil {
			return nil, err
		}
		if err := db.cluster.EnsureDatabase(ctx, "ortaq"); err != nil {
			db.Close(ctx)
			return nil, err
		}
		url = db.cluster.ConnString("ortaq")
	}
	// Each worker holds one connection while it runs a step; HTTP handlers
	// and the run-queue's failure bookkeeping need more besides.
	pool, err := pg.Open(ctx, url, int32(max(16, 2*cfg.Workers+8)))
	if err != nil {
		db.Close(ctx)
		return nil, err
	}
	db.Pool = pool
	if err := pg.Migrate(ctx, pool, Schemas(), log); err != nil {
		db.Close(ctx)
		return nil, err
	}
	return db, nil
}

// Platform is every capability, wired.
type Platform struct {
	Web      *web.Server
	Agencies *agency.Store
	// Registries are the declared state registries (registries/*.yaml)
	// with their records, history and data catalogue; the engine reads
	// persons from its population and addresses registries.
	Registries *registry.Store
	Services   *service.Catalogue
	Documents  *document.Store
	Engine     *process.Engine
	Calendar   *calendar.Calendar
	Exchange   *exchange.Authority // central authority of the exchange gateway
	Tokens     *identity.Tokens
	// Accounts, Logins and Sessions sign people in (password, then a
	// one-time code by SMS) and systems (client credentials); the portal
	// keeps a signed-in person in a session cookie.
	Accounts *identity.Accounts
	Logins   *identity.Logins
	Sessions *identity.Sessions
	// OIDC is the built-in OpenID Connect provider (/.well-known/...,
	// /oidc/...) for relying parties that sign people in.
	OIDC *identity.Provider
	// codes sends sign-in codes by SMS (SeedDemoAccounts echoes them).
	codes *smsCodes
	clock clock.Clock
	// pool is for the portal areas that keep tables of their own (drafts).
	pool *pgxpool.Pool
	// Signatures verifies citizens' and organisations' electronic
	// signatures against the trust store (internal/esign).
	Signatures *esign.Verifier
	// Notify turns events into messages to citizens and officers (SMS,
	// e-mail, in-app) and sends them; serve starts it with the engine.
	Notify *notify.Notifier
	// Consents is the consent ledger: requests, approvals by one-time
	// code, revocations, signed receipts, and the check every personal-data
	// read without a legal basis goes through (registries, exchange).
	Consents *consent.Ledger
}

// Build wires the capabilities on pool.
func Build(cfg Config, pool *pgxpool.Pool, log *slog.Logger) (*Platform, error) {
	var clk clock.Clock = clock.Real{}
	if cfg.Clock != nil {
		clk = cfg.Clock
	}
	p := &Platform{
		Web:        web.New(web.Config{Logger: log}),
		Agencies:   agency.NewStore(pool),
		Registries: registry.NewStore(pool, clk),
		Services:   service.NewCatalogue(pool, clk),
		Documents:  document.NewStore(pool, clk),
		Calendar:   calendar.New(pool, clk),
		Exchange:   exchange.New(pool, clk, ExchangeInstance),
		Tokens:     identity.NewTokens(pool, clk),
		Signatures: esign.NewVerifier(pool, clk),
		clock:      clk,
		pool:       pool,
	}
	// Behind trusted proxies, the caller's address comes from X-Forwarded-For.
	proxies, err := ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	if len(proxies) > 0 {
		p.Web.Use(forwardedFor(proxies))
	}
	// Every route sees who calls (identity.FromContext); an invalid oq_
	// bearer token is refused before any handler runs.
	p.Web.Use(p.Tokens.Middleware)
	// Pages (not /api/) see the signed-in person of the session cookie.
	p.Sessions = identity.NewSessions(pool, clk)
	p.Web.Use(p.Sessions.Middleware)
	// Who may read an application or a document (internal/app/authz.go).
	p.Web.Use(p.guard)
	p.Services.SetEnvironment(func(ctx context.Context) (servicedef.Environment, error) {
		agencies, err := p.Agencies.List(ctx)
		if err != nil {
			return servicedef.Environment{}, err
		}
		env := servicedef.Environment{
			Agencies:   map[string][]string{},
			Registries: map[string]servicedef.Registry{"population": servicedef.PopulationRegistry()},
		}
		for _, a := range agencies {
			env.Agencies[a.ID] = a.Roles
		}
		// Services read the declarative registries. A population data
		// source reads a person (the population record with the address of
		// the addresses registry) in the shape the services use, not the
		// population registry's record.
		for _, d := range p.Registries.Definitions() {
			if d.Name == registry.PopulationRegistry {
				continue
			}
			env.Registries[d.Name] = servicedef.Registry{Key: d.Key.Attribute, Record: d.RecordSchema(), Personal: d.HasPersonalData(), Indexed: d.IndexedAttributes()}
		}
		return env, nil
	})
	exchange := cfg.Exchange
	if exchange == nil && cfg.ExchangeGateway != "" {
		exchange = process.XRoadClient{Gateway: cfg.ExchangeGateway, Client: cfg.ExchangeClient,
			HTTP: &http.Client{Timeout: 30 * time.Second}}
	}
	engine, err := process.New(process.Config{
		Workers: cfg.Workers, JobTimeout: cfg.JobTimeout,
		Calendar: p.Calendar, Signatures: p.Signatures, Exchange: exchange, Registries: p.Registries,
		Consents: engineConsents{p}, Clock: clk, Logger: log, Metrics: p.Web.Metrics(),
	}, pool, p.Services, p.Registries, p.Documents)
	if err != nil {
		return nil, err
	}
	p.Engine = engine
	// The definitions are embedded: a broken one fails the build's tests
	// (ortaq registry lint registries), and here it fails the start.
	set, bad, err := registry.LoadSet(registries.Files, nil)
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("registry definitions: %s", bad[0].Problems[0].Format(bad[0].File))
	}
	p.Registries.Use(set)
	p.Registries.SetConsumers(p.registryConsumers)
	p.Registries.SetAgencies(p.registryAgencies)

	p.Web.AddReadyCheck("database", func(ctx context.Context) error { return pool.Ping(ctx) })
	p.Services.Routes(p.Web, p.Agencies, cfg.AdminToken)
	p.Documents.Routes(p.Web)
	p.Calendar.Routes(p.Web, cfg.AdminToken)
	p.Signatures.Routes(p.Web, cfg.AdminToken)
	p.Exchange.Routes(p.Web, cfg.AdminToken)
	p.Engine.Routes(p.Web)
	p.Notify = notify.NewWithConfig(notify.Config{Metrics: p.Web.Metrics()}, pool, clk, log,
		notify.NewDevSender(pool, clk, notify.SMS), notify.NewDevSender(pool, clk, notify.Email))
	p.Notify.SetApplications(applications{p.Engine})
	p.Notify.Routes(p.Web)
	p.Accounts = identity.NewAccounts(pool, clk)
	p.codes = &smsCodes{sender: notify.NewDevSender(pool, clk, notify.SMS)}
	p.Logins = identity.NewLogins(p.Accounts, p.codes, identity.LoginConfig{CitizensElsewhere: cfg.OIDCIssuer != ""})
	identity.Routes(p.Web, p.Tokens, p.Logins)
	p.OIDC = identity.NewProvider(p.Tokens, p.Logins, cfg.PublicURL)
	p.OIDC.Routes(p.Web)
	external := false
	if cfg.OIDCIssuer != "" {
		if cfg.PublicURL == "" {
			return nil, errors.New("an external OpenID Connect provider (--oidc-issuer) needs --public-url for its callback")
		}
		ext, err := identity.NewExternal(context.Background(), identity.ExternalConfig{Issuer: cfg.OIDCIssuer, ClientID: cfg.OIDCClientID,
			ClientSecret: cfg.OIDCClientSecret, RedirectURI: strings.TrimRight(cfg.PublicURL, "/") + "/login/external/callback", Log: log,
			HTTP: &http.Client{Timeout: 30 * time.Second}}, p.Sessions)
		if err != nil {
			return nil, err
		}
		ext.Routes(p.Web)
		external = true
	}
	p.Consents = consent.New(pool, clk, consentItems{p}, log)
	p.Registries.SetConsent(registryConsent{p.Consents})
	p.Consents.Routes(p.Web)
	// GovStack Consent API on the same ledger, outside /api.
	p.Consents.GovStackRoutes(p.Web)
	p.Registries.Routes(p.Web)
	p.Registries.CatalogueRoutes(p.Web)
	// GovStack Digital Registries API on the same registries, outside /api.
	p.Registries.GovStackRoutes(p.Web)
	p.Web.Handle("GET /api/v1/openapi.json", OpenAPIHandler())
	p.mountPortal(external)
	return p, nil
}

// registryAgencies names the agencies and their roles for the registries'
// publishing and the GovStack Database API.
func (p *Platform) registryAgencies(ctx context.Context) (map[string]registry.Agency, error) {
	list, err := p.Agencies.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]registry.Agency, len(list))
	for _, a := range list {
		out[a.ID] = registry.Agency{Name: a.Name, Roles: a.Roles}
	}
	return out, nil
}

// registryConsumers lists the data sources of the current services' plans:
// who reads which registry, for the data catalogue.
func (p *Platform) registryConsumers(ctx context.Context) ([]registry.Consumer, error) {
	defs, err := p.Services.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []registry.Consumer
	for _, d := range defs {
		if d.Source == "" {
			continue
		}
		plan, err := p.Services.Plan(ctx, d.ID, d.Version)
		if err != nil || plan == nil {
			continue // a built-in flow reads nothing declared
		}
		for _, ds := range plan.Data {
			if ds.Source.Registry == "" {
				continue // read through the exchange, not from a registry
			}
			c := registry.Consumer{Service: d.ID, Version: d.Version, Registry: ds.Source.Registry,
				DataSource: ds.Source.Name, Basis: ds.Source.Basis, Consent: ds.Source.Consent, Prefill: ds.Source.Prefill}
			out = append(out, c)
			if c.Registry == registry.PopulationRegistry {
				// A person is read with their registered address.
				c.Registry, c.Prefill = registry.AddressRegistry, nil
				if slices.Contains(ds.Source.Prefill, "address") {
					c.Prefill = []string{"kato", "street", "house", "flat"}
				}
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// InstallRegistries records the embedded registry definitions and
// classifiers in the database (each version once).
func (p *Platform) InstallRegistries(ctx context.Context) error {
	set, _, err := registry.LoadSet(registries.Files, nil)
	if err != nil {
		return err
	}
	return p.Registries.Install(ctx, set)
}

// Serve runs the platform until ctx ends, then shuts down in order: stop
// taking requests, let running steps finish, close the database.
func Serve(ctx context.Context, cfg Config, log *slog.Logger, out io.Writer) error {
	started := time.Now()
	db, err := OpenDatabase(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close(context.Background())

	p, err := Build(cfg, db.Pool, log)
	if err != nil {
		return err
	}
	if err := p.InstallRegistries(ctx); err != nil {
		return fmt.Errorf("install registries: %w", err)
	}
	// Definitions published or registries archived on another node.
	go p.Registries.Watch(ctx, registry.WatchEvery)
	var sample demo.Result
	if cfg.Demo {
		sample, err = demo.Run(ctx, demo.Seed{Agencies: p.Agencies, Registries: p.Registries, Services: p.Services, Keys: p.Documents}, cfg.DemoPeople, out)
		if err != nil {
			return fmt.Errorf("seed demo data: %w", err)
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	if err := p.Engine.Start(ctx); err != nil {
		ln.Close()
		return err
	}
	// Exchange gateways long-poll the consent feed on any node: wake them
	// when another node changes a consent.
	go p.Consents.ListenFeed(ctx)
	if cfg.Workers > 0 { // a node without workers does no background work
		if err := p.Notify.Start(ctx); err != nil {
			ln.Close()
			return err
		}
		go sweepIdentity(ctx, db.Pool, p.clock, log)
	}
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "Ortaq is up in %s: %s\n", time.Since(started).Round(time.Millisecond), url)
	fmt.Fprintf(out, "  portal:   %s/\n  API:      %s/api/v1/services (OpenAPI: %s/api/v1/openapi.json)\n  health:   %s/readyz, metrics: %s/metrics\n", url, url, url, url, url)
	if cfg.Demo {
		fmt.Fprintf(out, "  demo:     %d citizens; try IIN %s (gets a certificate) or %s (no registered address: refused)\n",
			sample.Citizens, sample.WithAddress, sample.WithoutAddress)
		if err := p.SeedDemoAccounts(ctx, sample, out); err != nil {
			ln.Close()
			return fmt.Errorf("seed demo accounts: %w", err)
		}
	}
	fmt.Fprintln(out, "Press Ctrl-C to stop.")

	serveCtx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	go func() {
		select {
		case <-db.Exited():
			log.Error("the embedded PostgreSQL server stopped unexpectedly; shutting down")
			stopServing()
		case <-serveCtx.Done():
		}
	}()
	serveErr := p.Web.Serve(serveCtx, ln)
	stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Notify.Stop(stopCtx); err != nil {
		log.Warn("stopping notifications", "error", err)
	}
	if err := p.Engine.Stop(stopCtx); err != nil && !errors.Is(err, context.Canceled) {
		log.Warn("stopping the engine", "error", err)
	}
	log.Info("ortaq stopped")
	return serveErr
}
