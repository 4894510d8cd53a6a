package app_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ortaq/ortaq/internal/apptest"
)

// TestReferencedRowsAreKept: applications and documents refer to service
// versions, agencies and signing keys without foreign keys (those locked the
// same few rows for every submission); triggers refuse what would break the
// references instead.
func TestReferencedRowsAreKept(t *testing.T) {
	t.Parallel()
	r := apptest.Start(t, 0, 10)
	ctx := context.Background()
	for _, stmt := range []string{
		`DELETE FROM service WHERE id = 'address-certificate'`,
		`UPDATE service SET version = version + 100 WHERE id = 'address-certificate'`,
		`DELETE FROM agency WHERE id = 'mia'`,
		`UPDATE agency SET id = 'mia2' WHERE id = 'mia'`,
		`DELETE FROM signing_key`,
		`UPDATE signing_key SET id = id || 'x'`,
	} {
		_, err := r.DB.Pool.Exec(ctx, stmt)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23001" {
			t.Errorf("%s: %v; want restrict_violation", stmt, err)
		}
	}
	// What may change still does: a service version stops being current,
	// a key is retired.
	for _, stmt := range []string{
		`UPDATE service SET current = current WHERE id = 'address-certificate'`,
		`UPDATE signing_key SET retired_at = retired_at`,
	} {
		if _, err := r.DB.Pool.Exec(ctx, stmt); err != nil {
			t.Errorf("%s: %v", stmt, err)
		}
	}
}
