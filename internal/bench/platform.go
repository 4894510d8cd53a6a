package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/demo"
	"github.com/ortaq/ortaq/internal/iin"
)

// platform is what every benchmark starts from: a migrated database (a fresh
// durable embedded cluster in a temporary directory unless a URL is given),
// every capability wired by app.Build, and the demo seeded. The engine is not
// started: benchmarks measure their baseline first.
type platform struct {
	*app.Platform
	db *app.Database
	// iins are demo citizens with a registered address: each gets a
	// certificate.
	iins []iin.IIN
	dir  string
}

// startPlatform opens the database, builds the platform with `workers`
// engine workers and seeds a demo population of `people`.
func startPlatform(ctx context.Context, databaseURL, pgBin string, workers, people int, out io.Writer) (_ *platform, err error) {
	log := slog.New(slog.DiscardHandler)
	cfg := app.Config{DatabaseURL: databaseURL, PGBin: pgBin, Workers: workers}
	b := &platform{}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	if databaseURL == "" {
		if b.dir, err = os.MkdirTemp("", "ortaq-bench-"); err != nil {
			return nil, err
		}
		cfg.DataDir = b.dir
		fmt.Fprintf(out, "bench: starting a durable embedded PostgreSQL in %s\n", b.dir)
	}
	if b.db, err = app.OpenDatabase(ctx, cfg, log); err != nil {
		return nil, err
	}
	if b.Platform, err = app.Build(cfg, b.db.Pool, log); err != nil {
		return nil, err
	}
	seed := demo.Seed{Agencies: b.Agencies, Registries: b.Registries, Services: b.Services, Keys: b.Documents}
	if _, err = demo.Run(ctx, seed, people, out); err != nil {
		return nil, err
	}
	for _, c := range demo.Population(people, demo.PopulationSeed) {
		if demo.HasAddress(c) {
			b.iins = append(b.iins, c.IIN)
		}
	}
	return b, nil
}

func (b *platform) pool() *pgxpool.Pool { return b.db.Pool }

// close closes the database (stopping an embedded cluster) and removes the
// temporary directory. Stop the engine first.
func (b *platform) close() {
	if b.db != nil {
		b.db.Close(context.Background())
	}
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}
