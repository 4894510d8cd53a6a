package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// An attribute declared `indexed: true` gets a partial expression index on
// its registry's versions, (data->>'attr') WHERE registry = '<name>', so that
// a search by it (the API's filters, a service's `by:` source) looks up the
// keys that ever held the value instead of reading every record. Each
// registry's index is its own: a registry's size never slows another's
// lookups, and an index costs only the registries that ask for it.

// indexName is the index of attr in registry: readable, within
// PostgreSQL's 63 bytes, and unique by its hash.
func indexName(registry, attr string) string {
	sum := sha256.Sum256([]byte(registry + "\x00" + attr))
	base := "registry_attr_" + registry + "_" + strings.ToLower(attr)
	if len(base) > 50 {
		base = base[:50]
	}
	return base + "_" + hex.EncodeToString(sum[:4])
}

// sqlString is s as an SQL string literal. Registry and attribute names
// are checked identifiers; the quoting is for the day they are not.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// ensureIndexes builds the indexes of the definitions' indexed attributes
// that do not exist yet, without blocking writes (CONCURRENTLY, outside
// any transaction). An index left invalid by an interrupted build is
// dropped and built again. Two nodes building the same index at once is
// harmless: the second finds it.
func (s *Store) ensureIndexes(ctx context.Context, defs ...*Definition) error {
	for _, d := range defs {
		for _, a := range d.Attributes {
			if !a.Indexed {
				continue
			}
			name := indexName(d.Name, a.Name)
			var valid bool
			err := s.pool.QueryRow(ctx, `SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
				WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace`, name).Scan(&valid)
			switch {
			case err == nil && valid:
				continue
			case err == nil:
				if _, err := s.pool.Exec(ctx, `DROP INDEX CONCURRENTLY IF EXISTS `+pgx.Identifier{name}.Sanitize()); err != nil {
					return fmt.Errorf("drop the invalid index of %s.%s: %w", d.Name, a.Name, err)
				}
			case !errors.Is(err, pgx.ErrNoRows):
				return fmt.Errorf("look for the index of %s.%s: %w", d.Name, a.Name, err)
			}
			_, err = s.pool.Exec(ctx, `CREATE INDEX CONCURRENTLY IF NOT EXISTS `+pgx.Identifier{name}.Sanitize()+
				` ON registry_record_version ((data->>`+sqlString(a.Name)+`)) WHERE registry = `+sqlString(d.Name))
			var pgErr *pgconn.PgError
			if err != nil && !(errors.As(err, &pgErr) && (pgErr.Code == "42P07" || pgErr.Code == "23505")) {
				return fmt.Errorf("index %s.%s: %w", d.Name, a.Name, err)
			}
		}
	}
	return nil
}

// indexedFilter returns an attribute of q's filters that has an index and
// a string value (the index holds the text form), if there is one.
func indexedFilter(d *Definition, q Query) (attr, value string, ok bool) {
	for _, a := range d.Attributes {
		if !a.Indexed {
			continue
		}
		if v, isString := q.Equal[a.Name].(string); isString {
			return a.Name, v, true
		}
	}
	return "", "", false
}

// indexedSearch is Search's query when a filter has an index: the keys that
// ever held the value (the index), then each key's current version, which
// must still match every filter. The registry's name is in the text, not a
// parameter, so that the planner sees the partial index's predicate.
func indexedSearch(d *Definition, attr string) string {
	reg := sqlString(d.Name)
	return `SELECT ` + recordCols + ` FROM (
		SELECT DISTINCT ON (key) ` + recordCols + ` FROM registry_record_version
		WHERE registry = ` + reg + ` AND key > $2 AND key IN (
			SELECT key FROM registry_record_version WHERE registry = ` + reg + ` AND data->>` + sqlString(attr) + ` = $6)
		ORDER BY key, version DESC) cur
	WHERE registry = $1 AND data @> $3 AND ($4 OR op <> 'cancel') ORDER BY key LIMIT $5`
}
