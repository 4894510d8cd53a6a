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
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/agency"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/calendar"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/demo"
	"github.com/ortaq/ortaq/internal/document"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/outbox"
	"github.com/ortaq/ortaq/internal/pg"
	"github.com/ortaq/ortaq/internal/portal"
	"github.com/ortaq/ortaq/internal/process"
	"github.com/ortaq/ortaq/internal/registry"
	"github.com/ortaq/ortaq/internal/service"
	"github.com/ortaq/ortaq/internal/servicedef"
	"github.com/ortaq/ortaq/internal/web"
)

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
		process.JobsSchema(),
		process.Schema(),
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
	RescueAfter time.Duration // when a step of a crashed node runs again
	// AdminToken guards administrative API calls (publishing services) until
	// officers sign in; empty switches them off.
	AdminToken string
	// Clock is the platform's time; nil means the real clock. Service test
	// runs fix it per case.
	Clock clock.Clock
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
	// and River's own bookkeeping need more besides.
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
	Web        *web.Server
	Agencies   *agency.Store
	Population *registry.Population
	Services   *service.Catalogue
	Documents  *document.Store
	Engine     *process.Engine
	Calendar   *calendar.Calendar
	Tokens     *identity.Tokens
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
		Population: registry.NewPopulation(pool, clk),
		Services:   service.NewCatalogue(pool, clk),
		Documents:  document.NewStore(pool, clk),
		Calendar:   calendar.New(pool, clk),
		Tokens:     identity.NewTokens(pool, clk),
	}
	// Every route sees who calls (identity.FromContext); an invalid oq_
	// bearer token is refused before any handler runs.
	p.Web.Use(p.Tokens.Middleware)
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
		return env, nil
	})
	engine, err := process.New(process.Config{
		Workers: cfg.Workers, JobTimeout: cfg.JobTimeout, RescueAfter: cfg.RescueAfter,
		Calendar: p.Calendar, Clock: clk, Logger: log, Metrics: p.Web.Metrics(),
	}, pool, p.Services, p.Population, p.Documents)
	if err != nil {
		return nil, err
	}
	p.Engine = engine

	p.Web.AddReadyCheck("database", func(ctx context.Context) error { return pool.Ping(ctx) })
	p.Services.Routes(p.Web, p.Agencies, cfg.AdminToken)
	p.Documents.Routes(p.Web)
	p.Calendar.Routes(p.Web, cfg.AdminToken)
	p.Engine.Routes(p.Web)
	p.Web.Handle("GET /api/v1/openapi.json", OpenAPIHandler())
	portal.New(portal.Deps{Services: p.Services, Agencies: p.Agencies, Engine: p.Engine, Documents: p.Documents}).Routes(p.Web)
	return p, nil
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
	var sample demo.Result
	if cfg.Demo {
		sample, err = demo.Run(ctx, demo.Seed{Agencies: p.Agencies, Population: p.Population, Services: p.Services, Keys: p.Documents}, cfg.DemoPeople, out)
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
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "Ortaq is up in %s: %s\n", time.Since(started).Round(time.Millisecond), url)
	fmt.Fprintf(out, "  portal:   %s/\n  API:      %s/api/v1/services (OpenAPI: %s/api/v1/openapi.json)\n  health:   %s/readyz, metrics: %s/metrics\n", url, url, url, url, url)
	if cfg.Demo {
		fmt.Fprintf(out, "  demo:     %d citizens; try IIN %s (gets a certificate) or %s (no registered address: refused)\n",
			sample.Citizens, sample.WithAddress, sample.WithoutAddress)
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
	if err := p.Engine.Stop(stopCtx); err != nil && !errors.Is(err, context.Canceled) {
		log.Warn("stopping the engine", "error", err)
	}
	log.Info("ortaq stopped")
	return serveErr
}
