package gateway

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/pg"
)

// Store is a node's database: DATABASE_URL, or an embedded cluster under
// the data directory ("db/"), as `ortaq serve` runs one.
type Store struct {
	Pool    *pgxpool.Pool
	cluster *pg.Cluster
}

// OpenStore opens and migrates the node's database.
func OpenStore(ctx context.Context, dataDir, databaseURL, pgBin string, log *slog.Logger) (*Store, error) {
	s := &Store{}
	url := databaseURL
	if url == "" {
		bin, err := pg.FindBinaries(pgBin)
		if err != nil {
			return nil, err
		}
		dir, err := filepath.Abs(filepath.Join(dataDir, "db"))
		if err != nil {
			return nil, err
		}
		s.cluster, err = pg.StartCluster(ctx, pg.ClusterConfig{Dir: dir, BinDir: bin, Durable: true, Logger: log})
		if err != nil {
			return nil, err
		}
		if err := s.cluster.EnsureDatabase(ctx, "gateway"); err != nil {
			s.Close(ctx)
			return nil, err
		}
		url = s.cluster.ConnString("gateway")
	}
	var err error
	s.Pool, err = pg.Open(ctx, url, 32)
	if err != nil {
		s.Close(ctx)
		return nil, err
	}
	if err := pg.Migrate(ctx, s.Pool, Schemas(), log); err != nil {
		s.Close(ctx)
		return nil, err
	}
	return s, nil
}

// Close closes the pool and stops the embedded cluster, if any.
func (s *Store) Close(ctx context.Context) {
	if s.Pool != nil {
		s.Pool.Close()
	}
	if s.cluster != nil {
		s.cluster.Stop(ctx)
	}
}
