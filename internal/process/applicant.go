package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ortaq/ortaq/internal/apierr"
	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/identity"
	"github.com/ortaq/ortaq/internal/pg"
)

// MaxListLimit bounds one page of an applicant's applications.
const MaxListLimit = 100

// Summary is one line of an applicant's list of applications.
type Summary struct {
	ID          uuid.UUID
	Number      string
	Service     ServiceRef
	Status      string
	StatusText  string
	SubmittedAt time.Time
	DecidedAt   *time.Time
}

// ListByApplicant returns the applications of the citizen with IIN iin,
// newest first, in lang: at most limit (capped at MaxListLimit) submitted
// before before (the zero time: from the newest). The next page starts
// before the last one's SubmittedAt. The list holds no form inputs, only
// what the applicant's own menu shows, so it is not an audited read of
// personal data (View is not either).
func (e *Engine) ListByApplicant(ctx context.Context, iin string, lang i18n.Lang, before time.Time, limit int) ([]Summary, error) {
	if limit <= 0 || limit > MaxListLimit {
		limit = MaxListLimit
	}
	if before.IsZero() {
		before = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	rows, err := e.pool.Query(ctx, `SELECT id, number, service_id, service_version, status, submitted_at, decided_at
		FROM application WHERE applicant_iin = $1 AND submitted_at < $2
		ORDER BY submitted_at DESC, id DESC LIMIT $3`, iin, before, limit)
	if err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Summary, error) {
		var s Summary
		err := r.Scan(&s.ID, &s.Number, &s.Service.ID, &s.Service.Version, &s.Status, &s.SubmittedAt, &s.DecidedAt)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	for i := range out {
		def, err := e.services.Version(ctx, out[i].Service.ID, out[i].Service.Version)
		if err != nil {
			return nil, err
		}
		out[i].Service.Title = def.Title.In(lang)
		out[i].StatusText = i18n.T(lang, "status."+out[i].Status)
	}
	return out, nil
}

// Inputs returns what the citizen who applied entered in their own
// application's form (to correct it); anyone else is told it does not
// exist. The read is audited: the inputs are personal data.
func (e *Engine) Inputs(ctx context.Context, who identity.Principal, id uuid.UUID, requestID string) (map[string]any, error) {
	if who.Kind != identity.Citizen {
		return nil, apierr.New(apierr.Forbidden)
	}
	var inputs map[string]any
	err := pg.InTx(ctx, e.pool, func(tx pgx.Tx) error {
		var applicant, serviceID string
		var body []byte
		err := tx.QueryRow(ctx, `SELECT applicant_iin, service_id, inputs FROM application WHERE id = $1`, id).Scan(&applicant, &serviceID, &body)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && !who.IsCitizen(applicant)) {
			return apierr.New(apierr.ApplicationNotFound)
		}
		if err != nil {
			return fmt.Errorf("read inputs: %w", err)
		}
		if err := json.Unmarshal(body, &inputs); err != nil {
			return fmt.Errorf("read inputs: %w", err)
		}
		return audit.Record(ctx, tx, audit.Event{At: e.cfg.Clock.Now(), Actor: who.Actor(), Action: "process.application.read_inputs",
			SubjectIIN: applicant, Object: "application:" + id.String(), Purpose: "service:" + serviceID + "; correction", RequestID: requestID})
	})
	return inputs, err
}
