package citizen

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/pg"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the citizen portal's part of the database: drafts.
func Schema() pg.Schema { return pg.NewSchema("portal_citizen", migrations) }

// MaxDraftBytes bounds a stored draft (its values as JSON): a form is
// short, and the table must not become anyone's free storage.
const MaxDraftBytes = 16 << 10

// errDraftTooLarge: the draft is over MaxDraftBytes and was not kept.
var errDraftTooLarge = errors.New("draft too large")

// drafts keeps citizens' unfinished forms, one per citizen and service.
type drafts struct{ pool *pgxpool.Pool }

func (d drafts) save(ctx context.Context, iin, serviceID string, values url.Values, now time.Time) error {
	body, err := json.Marshal(values)
	if err != nil {
		return err
	}
	if len(body) > MaxDraftBytes {
		return errDraftTooLarge
	}
	_, err = d.pool.Exec(ctx, `INSERT INTO portal_draft (citizen_iin, service_id, form_values, saved_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (citizen_iin, service_id) DO UPDATE SET form_values = EXCLUDED.form_values, saved_at = EXCLUDED.saved_at`,
		iin, serviceID, body, now)
	if err != nil {
		return fmt.Errorf("save draft: %w", err)
	}
	return nil
}

// load returns the citizen's draft for the service, or nil.
func (d drafts) load(ctx context.Context, iin, serviceID string) (url.Values, *time.Time, error) {
	var body []byte
	var at time.Time
	err := d.pool.QueryRow(ctx, `SELECT form_values, saved_at FROM portal_draft WHERE citizen_iin = $1 AND service_id = $2`, iin, serviceID).Scan(&body, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read draft: %w", err)
	}
	var v url.Values
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, nil, fmt.Errorf("read draft: %w", err)
	}
	return v, &at, nil
}

func (d drafts) delete(ctx context.Context, iin, serviceID string) error {
	if _, err := d.pool.Exec(ctx, `DELETE FROM portal_draft WHERE citizen_iin = $1 AND service_id = $2`, iin, serviceID); err != nil {
		return fmt.Errorf("delete draft: %w", err)
	}
	return nil
}
