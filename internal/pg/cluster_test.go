package pg

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

var quiet = slog.New(slog.DiscardHandler)

func TestClusterLifecycle(t *testing.T) {
	bin, err := FindBinaries(os.Getenv("ORTAQ_PG_BIN"))
	if err != nil {
		t.Fatalf("PostgreSQL server binaries are required: %v", err)
	}
	// Not t.TempDir: its parent is 0700, which the postgres user cannot cross.
	base, err := os.MkdirTemp("", "ortaq-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o711); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "data dir with spaces")
	ctx := context.Background()
	c, err := StartCluster(ctx, ClusterConfig{Dir: dir, BinDir: bin, Durable: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := StartCluster(ctx, ClusterConfig{Dir: dir, BinDir: bin, Logger: quiet}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second supervisor on the same directory: %v; want an in-use error", err)
	}
	if err := c.EnsureDatabase(ctx, "ortaq"); err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureDatabase(ctx, "ortaq"); err != nil {
		t.Fatalf("EnsureDatabase twice: %v", err)
	}
	conn, err := pgx.Connect(ctx, c.ConnString("ortaq"))
	if err != nil {
		t.Fatal(err)
	}
	var fsync string
	conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync)
	if fsync != "on" {
		t.Errorf("a durable cluster runs with fsync=%s", fsync)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("Stop twice: %v", err)
	}

	// A restart finds the data.
	c, err = StartCluster(ctx, ClusterConfig{Dir: dir, BinDir: bin, Durable: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(ctx)
	if _, err := os.Stat(filepath.Join(dir, "pg", "PG_VERSION")); err != nil {
		t.Errorf("the cluster is not inside the data directory: %v", err)
	}
	conn, err = pgx.Connect(ctx, c.ConnString("ortaq"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var x int
	if err := conn.QueryRow(ctx, "SELECT x FROM kept").Scan(&x); err != nil || x != 42 {
		t.Errorf("after restart: %d, %v; want 42", x, err)
	}
}

func TestFindBinariesExplicitDirWithoutServer(t *testing.T) {
	_, err := FindBinaries(t.TempDir())
	if !errors.Is(err, ErrNoServer) || !strings.Contains(err.Error(), "apt-get install") || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("FindBinaries(empty dir) = %v; want ErrNoServer telling how to install or use DATABASE_URL", err)
	}
}

func TestReachable(t *testing.T) {
	dir := t.TempDir()
	locked := filepath.Join(dir, "locked")
	inner := filepath.Join(locked, "inner")
	if err := os.MkdirAll(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(locked, 0o700); err != nil {
		t.Fatal(err)
	}
	stranger := &credential{uid: 64000, gid: 64000}
	if reachable(inner, stranger) {
		t.Errorf("reachable through a 0700 directory owned by someone else")
	}
	os.Chmod(locked, 0o711)
	if os.Geteuid() == 0 && !reachable(inner, stranger) {
		// Only meaningful when the temp dir's ancestors are world-traversable.
		if reachable(dir, stranger) {
			t.Errorf("not reachable through a 0711 directory")
		}
	}
}
