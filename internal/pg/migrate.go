package pg

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

// Schema is the part of the database one capability owns.
type Schema struct {
	// Name identifies the schema; its goose version table is goose_<Name>.
	Name string
	// Migrations holds goose SQL files (NNNNN_what.sql) at its root.
	Migrations fs.FS
	// Apply, when set, replaces goose for schemas that bring their own
	// migrator.
	Apply func(ctx context.Context, pool *pgxpool.Pool) error
}

// migrateLockID is the advisory lock key that serialises migrations ("ortaqmig").
const migrateLockID int64 = 0x6f72746171_6d6967

// Migrate applies every schema in order; later schemas may refer to earlier
// ones. It is safe to run from several processes at once.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schemas []Schema, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.Default()
	}
	// One migrator at a time across every node sharing the database; goose's
	// own lock covers only goose schemas.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLockID); err != nil {
		return fmt.Errorf("migrate: take lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrateLockID)
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	for _, s := range schemas {
		if s.Apply != nil {
			if err := s.Apply(ctx, pool); err != nil {
				return fmt.Errorf("migrate %s: %w", s.Name, err)
			}
			continue
		}
		// No goose locker: the advisory lock above already serialises us.
		p, err := goose.NewProvider(goose.DialectPostgres, db, s.Migrations,
			goose.WithTableName("goose_"+s.Name),
			goose.WithDisableGlobalRegistry(true),
		)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", s.Name, err)
		}
		results, err := p.Up(ctx)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", s.Name, err)
		}
		for _, r := range results {
			logger.Info("migration applied", "schema", s.Name, "version", r.Source.Version, "file", r.Source.Path, "took", r.Duration)
		}
	}
	return nil
}

// NewSchema names the goose migrations a capability embeds under
// migrations/ (//go:embed migrations/*.sql).
func NewSchema(name string, embedded fs.FS) Schema {
	sub, err := fs.Sub(embedded, "migrations")
	if err != nil {
		panic("pg: " + name + " embeds no migrations directory: " + err.Error())
	}
	return Schema{Name: name, Migrations: sub}
}
