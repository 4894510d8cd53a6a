// Package apptest starts a whole platform for a test: a fresh database from
// pgtest, every capability wired by app.Build, demo data, running workers and
// an httptest server, all stopped when the test ends. The test binary's
// TestMain must call pgtest.Main with app.Schemas().
//
// May import: internal/app, internal/demo, internal/pgtest. Only tests import
// apptest.
package apptest

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ortaq/ortaq/internal/app"
	"github.com/ortaq/ortaq/internal/demo"
	"github.com/ortaq/ortaq/internal/pgtest"
)

// Running is a platform serving one test.
type Running struct {
	*app.Platform
	DB     pgtest.DB
	Server *httptest.Server
	Sample demo.Result
}

// Start builds and starts a platform with workers and a demo population of
// the given size.
func Start(t *testing.T, workers, people int) *Running {
	t.Helper()
	return StartConfig(t, app.Config{Workers: workers}, people)
}

// StartConfig is Start with a whole configuration.
func StartConfig(t *testing.T, cfg app.Config, people int) *Running {
	t.Helper()
	db := pgtest.New(t)
	p, err := app.Build(cfg, db.Pool, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sample, err := demo.Run(ctx, demo.Seed{Agencies: p.Agencies, Registries: p.Registries, Services: p.Services, Keys: p.Documents}, people, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Engine.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if cfg.Workers > 0 {
		if err := p.Notify.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(p.Web.Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Notify.Stop(ctx)
		p.Engine.Stop(ctx)
	})
	return &Running{Platform: p, DB: db, Server: srv, Sample: sample}
}
