// Package pgtest gives tests a real PostgreSQL: one private cluster per test
// binary (Go runs each package's tests as its own process), and for each test a
// fresh database cloned from a migrated template in milliseconds.
//
// There is no fallback and no skip: when PostgreSQL cannot be started the
// tests fail with the reason and how to fix it.
//
// May import: internal/pg and the standard library. Only tests import pgtest,
// so none of it reaches the ortaq binary.
package pgtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/pg"
)

const templateDB = "ortaq_template"

var (
	cluster *pg.Cluster
	counter atomic.Int64
	initErr error
	once    sync.Once
	schemas []pg.Schema
)

// Main runs a package's tests against a private cluster whose template
// database holds the given schemas. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m, app.Schemas()...) }
func Main(m *testing.M, s ...pg.Schema) {
	schemas = s
	code := m.Run()
	if cluster != nil {
		cluster.Stop(context.Background())
		os.RemoveAll(clusterDir)
	}
	os.Exit(code)
}

var clusterDir string

func start() {
	bin, err := pg.FindBinaries(os.Getenv("ORTAQ_PG_BIN"))
	if err != nil {
		initErr = err
		return
	}
	clusterDir, err = os.MkdirTemp(pg.ScratchDir(os.Getenv("ORTAQ_PGTEST_DIR")), "ortaq-pgtest-")
	if err != nil {
		initErr = err
		return
	}
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	cluster, err = pg.StartCluster(ctx, pg.ClusterConfig{Dir: clusterDir, BinDir: bin, Durable: false, Logger: quiet})
	if err != nil {
		initErr = err
		return
	}
	if err := cluster.EnsureDatabase(ctx, templateDB); err != nil {
		initErr = err
		return
	}
	pool, err := pg.Open(ctx, cluster.ConnString(templateDB), 4)
	if err != nil {
		initErr = err
		return
	}
	defer pool.Close()
	if err := pg.Migrate(ctx, pool, schemas, quiet); err != nil {
		initErr = fmt.Errorf("migrate template database: %w", err)
	}
}

// DB is one test's private database.
type DB struct {
	Pool *pgxpool.Pool
	// URL connects other processes (a server under test) to the same database.
	URL string
}

// New creates a migrated database for this test and drops it when the test ends.
func New(t testing.TB) DB {
	t.Helper()
	once.Do(start)
	if initErr != nil {
		t.Fatalf("pgtest: cannot provide a PostgreSQL database: %v", initErr)
	}
	ctx := context.Background()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), counter.Add(1))
	admin, err := pgx.Connect(ctx, cluster.ConnString("postgres"))
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s STRATEGY FILE_COPY", name, templateDB)); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	url := cluster.ConnString(name)
	pool, err := pg.Open(ctx, url, 8)
	if err != nil {
		t.Fatalf("pgtest: open: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, cluster.ConnString("postgres"))
		if err != nil {
			t.Errorf("pgtest: connect to drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
		}
	})
	return DB{Pool: pool, URL: url}
}
