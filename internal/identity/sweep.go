package identity

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/clock"
)

// SweepEvery is how often a node should call [Sweep].
const SweepEvery = 10 * time.Minute

// Sweep deletes what sign-in no longer needs: challenges and authorization
// codes an hour after they expired, sessions and refresh tokens a day after,
// failure counts whose window and lock are over, access tokens a week after
// they expired. What it deletes could not be used any more; the audit
// trail keeps the record of each. It returns how many rows went.
func Sweep(ctx context.Context, pool *pgxpool.Pool, clk clock.Clock) (int64, error) {
	now := clk.Now()
	var n int64
	for _, q := range []struct {
		sql string
		arg time.Time
	}{
		{`DELETE FROM identity_challenge WHERE expires_at < $1`, now.Add(-time.Hour)},
		{`DELETE FROM identity_oidc_code WHERE expires_at < $1`, now.Add(-time.Hour)},
		{`DELETE FROM identity_session WHERE expires_at < $1`, now.Add(-24 * time.Hour)},
		{`DELETE FROM identity_refresh_token WHERE expires_at < $1`, now.Add(-24 * time.Hour)},
		{`DELETE FROM identity_throttle WHERE first_at < $1 AND (locked_until IS NULL OR locked_until < $1)`, now.Add(-24 * time.Hour)},
		{`DELETE FROM access_token WHERE expires_at < $1`, now.Add(-7 * 24 * time.Hour)},
	} {
		tag, err := pool.Exec(ctx, q.sql, q.arg)
		if err != nil {
			return n, fmt.Errorf("sweep sign-in tables: %w", err)
		}
		n += tag.RowsAffected()
	}
	return n, nil
}
