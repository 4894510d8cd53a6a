// Package service owns the catalogue of e-services: their published,
// versioned definitions and the catalogue API. A new version becomes current
// for new applications at once; applications keep the version they started
// with. The declarative definition format, lint, test and publish come with
// the service-constructor issue; for now a definition names a built-in flow.
//
// Owns: table service; routes GET /api/v1/services, GET /api/v1/services/{id}.
//
// May import: internal/pg, internal/apierr, internal/i18n, internal/web,
// internal/clock, internal/servicedef.
package service

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/pg"
	"github.com/ortaq/ortaq/internal/servicedef"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the service capability's part of the database.
func Schema() pg.Schema { return pg.NewSchema("service", migrations) }

// Definition is one version of an e-service.
type Definition struct {
	ID             string
	Version        int
	OwnerAgency    string
	Audience       string // "citizen" or "business"
	Category       string
	Flow           string // the built-in flow the engine runs
	Title          i18n.Text
	Description    i18n.Text
	Result         i18n.Text
	TargetDuration time.Duration // the promise to the citizen, e.g. 5 minutes
	LegalDays      int           // the legal deadline in working days
	FeeTiyn        int64
	PublishedAt    time.Time
	// Refusals are the texts of the refusal codes the service may give.
	Refusals map[string]i18n.Text
	// Source is the definition file of a declarative service (Flow "plan").
	Source string
}

// Validate checks a definition before it is published.
func (d Definition) Validate() error {
	var errs []error
	if d.ID == "" {
		errs = append(errs, errors.New("id: required"))
	}
	if d.Version < 1 {
		errs = append(errs, errors.New("version: must be 1 or more"))
	}
	if d.OwnerAgency == "" {
		errs = append(errs, errors.New("owner_agency: required"))
	}
	if d.Audience != "citizen" && d.Audience != "business" {
		errs = append(errs, errors.New("audience: must be citizen or business"))
	}
	if d.Flow == "" {
		errs = append(errs, errors.New("flow: required"))
	}
	for name, t := range map[string]i18n.Text{"title": d.Title, "description": d.Description, "result": d.Result} {
		if !t.Complete() {
			errs = append(errs, fmt.Errorf("%s: must exist in kk, ru and en", name))
		}
	}
	if d.TargetDuration <= 0 {
		errs = append(errs, errors.New("target_duration: must be positive"))
	}
	if d.LegalDays < 1 {
		errs = append(errs, errors.New("legal_days: must be 1 or more"))
	}
	if d.FeeTiyn < 0 {
		errs = append(errs, errors.New("fee_tiyn: must not be negative"))
	}
	return errors.Join(errs...)
}

// ErrVersionConflict means a version is already published with other
// content: a change needs a new version number.
var ErrVersionConflict = errors.New("version already published with other content; publish a new version")

// ErrNotFound means there is no such service or version.
var ErrNotFound = errors.New("service not found")

// Catalogue stores and reads service definitions.
type Catalogue struct {
	pool  *pgxpool.Pool
	clock clock.Clock

	// Published versions never change, so they are cached for good.
	mu       sync.RWMutex
	versions map[versionKey]Definition
	plans    plans
}

type versionKey struct {
	id      string
	version int
}

// NewCatalogue returns the catalogue on pool.
func NewCatalogue(pool *pgxpool.Pool, c clock.Clock) *Catalogue {
	return &Catalogue{pool: pool, clock: c, versions: map[versionKey]Definition{}, plans: plans{m: map[versionKey]*servicedef.Plan{}}}
}

// Publish stores d and makes it the current version of its service. Publishing
// the same id and version again with identical content is a no-op, so seeding
// is idempotent; different content under a used version is refused.
func (c *Catalogue) Publish(ctx context.Context, d Definition) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("service %s v%d: %w", d.ID, d.Version, err)
	}
	return pg.InTx(ctx, c.pool, func(tx pgx.Tx) error {
		existing, err := get(ctx, tx, `WHERE id = $1 AND version = $2`, d.ID, d.Version)
		if err == nil {
			existing.PublishedAt = d.PublishedAt
			if !sameDefinition(existing, d) {
				return fmt.Errorf("service %s v%d: %w", d.ID, d.Version, ErrVersionConflict)
			}
			return nil
		}
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE service SET current = false WHERE id = $1 AND current`, d.ID); err != nil {
			return fmt.Errorf("retire current version of %s: %w", d.ID, err)
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO service (id, version, owner_agency, audience, category, flow, title, description, result,
				target_seconds, legal_days, fee_tiyn, current, published_at, refusals, source)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, true, $13, $14, $15)`,
			d.ID, d.Version, d.OwnerAgency, d.Audience, d.Category, d.Flow, d.Title, d.Description, d.Result,
			int(d.TargetDuration/time.Second), d.LegalDays, d.FeeTiyn, c.clock.Now(), refusalsOrEmpty(d.Refusals), d.Source)
		if err != nil {
			return fmt.Errorf("publish service %s v%d: %w", d.ID, d.Version, err)
		}
		return nil
	})
}

// Current returns the version of service id that takes new applications.
// Only the version number is read: a version never changes once published,
// so its definition comes from the per-node cache after the first use.
func (c *Catalogue) Current(ctx context.Context, id string) (Definition, error) {
	var version int
	err := c.pool.QueryRow(ctx, `SELECT version FROM service WHERE id = $1 AND current`, id).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		return Definition{}, ErrNotFound
	}
	if err != nil {
		return Definition{}, fmt.Errorf("read service: %w", err)
	}
	return c.Version(ctx, id, version)
}

// Version returns one version of a service.
func (c *Catalogue) Version(ctx context.Context, id string, version int) (Definition, error) {
	key := versionKey{id, version}
	c.mu.RLock()
	d, ok := c.versions[key]
	c.mu.RUnlock()
	if ok {
		return d, nil
	}
	d, err := get(ctx, c.pool, `WHERE id = $1 AND version = $2`, id, version)
	if err != nil {
		return Definition{}, err
	}
	c.mu.Lock()
	c.versions[key] = d
	c.mu.Unlock()
	return d, nil
}

// List returns the current version of every service, by id.
func (c *Catalogue) List(ctx context.Context) ([]Definition, error) {
	rows, err := c.pool.Query(ctx, selectDefinition+` WHERE current ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	return pgx.CollectRows(rows, scanDefinition)
}

const selectDefinition = `SELECT id, version, owner_agency, audience, category, flow, title, description, result,
	target_seconds, legal_days, fee_tiyn, published_at, refusals, source FROM service`

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func get(ctx context.Context, q querier, where string, args ...any) (Definition, error) {
	rows, err := q.Query(ctx, selectDefinition+" "+where, args...)
	if err != nil {
		return Definition{}, fmt.Errorf("read service: %w", err)
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanDefinition)
	if errors.Is(err, pgx.ErrNoRows) {
		return Definition{}, ErrNotFound
	}
	if err != nil {
		return Definition{}, fmt.Errorf("read service: %w", err)
	}
	return d, nil
}

func scanDefinition(row pgx.CollectableRow) (Definition, error) {
	var d Definition
	var seconds int
	err := row.Scan(&d.ID, &d.Version, &d.OwnerAgency, &d.Audience, &d.Category, &d.Flow, &d.Title, &d.Description,
		&d.Result, &seconds, &d.LegalDays, &d.FeeTiyn, &d.PublishedAt, &d.Refusals, &d.Source)
	d.TargetDuration = time.Duration(seconds) * time.Second
	return d, err
}

func refusalsOrEmpty(r map[string]i18n.Text) map[string]i18n.Text {
	if r == nil {
		return map[string]i18n.Text{}
	}
	return r
}

// sameDefinition compares two definitions, treating no refusals and an
// empty set of refusals as the same.
func sameDefinition(a, b Definition) bool {
	a.Refusals, b.Refusals = refusalsOrEmpty(a.Refusals), refusalsOrEmpty(b.Refusals)
	return reflect.DeepEqual(a, b)
}

// Versions lists every version of a service, newest first.
func (c *Catalogue) Versions(ctx context.Context, id string) ([]Definition, error) {
	rows, err := c.pool.Query(ctx, selectDefinition+` WHERE id = $1 ORDER BY version DESC`, id)
	if err != nil {
		return nil, fmt.Errorf("list versions of %s: %w", id, err)
	}
	defs, err := pgx.CollectRows(rows, scanDefinition)
	if err == nil && len(defs) == 0 {
		return nil, ErrNotFound
	}
	return defs, err
}
