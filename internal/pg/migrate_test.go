package pg

import (
	"context"
	"os"
	"sync"
	"testing"
	"testing/fstest"
)

// TestMigrateConcurrently: nodes starting together apply each migration once.
func TestMigrateConcurrently(t *testing.T) {
	bin, err := FindBinaries(os.Getenv("ORTAQ_PG_BIN"))
	if err != nil {
		t.Fatalf("PostgreSQL server binaries are required: %v", err)
	}
	dir, err := os.MkdirTemp(ScratchDir(""), "ortaq-migrate-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	c, err := StartCluster(ctx, ClusterConfig{Dir: dir, BinDir: bin, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(ctx)
	schema := Schema{Name: "probe", Migrations: fstest.MapFS{
		"00001_one.sql": {Data: []byte("-- +goose Up\nCREATE TABLE probe (id int);\n")},
		"00002_two.sql": {Data: []byte("-- +goose Up\nINSERT INTO probe VALUES (1);\n")},
	}}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			pool, err := Open(ctx, c.ConnString("postgres"), 4)
			if err != nil {
				errs <- err
				return
			}
			defer pool.Close()
			errs <- Migrate(ctx, pool, []Schema{schema}, quiet)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Migrate: %v", err)
		}
	}
	pool, err := Open(ctx, c.ConnString("postgres"), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var rows int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM probe").Scan(&rows); err != nil || rows != 1 {
		t.Errorf("probe rows = %d (%v); want 1: a migration ran more than once", rows, err)
	}
}
