package registry

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ortaq/ortaq/internal/audit"
	"github.com/ortaq/ortaq/internal/clock"
	"github.com/ortaq/ortaq/internal/i18n"
	"github.com/ortaq/ortaq/internal/iin"
	"github.com/ortaq/ortaq/internal/pg"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schema is the registry capability's part of the database.
func Schema() pg.Schema { return pg.NewSchema("registry", migrations) }

// Person is a record of the population registry.
type Person struct {
	IIN        iin.IIN
	LastName   string
	FirstName  string
	Patronymic string
	BirthDate  time.Time
	Sex        string // "male", "female" or "unknown"
	Address    *Address
}

// FullName is "Last First Patronymic", as Kazakh documents write it.
func (p Person) FullName() string {
	return strings.TrimSpace(strings.Join([]string{p.LastName, p.FirstName, p.Patronymic}, " "))
}

// Address is a registered (permanent) address.
type Address struct {
	KATO     string    `json:"kato"`
	Region   i18n.Text `json:"region"`
	Locality i18n.Text `json:"locality"`
	Street   string    `json:"street"`
	House    string    `json:"house"`
	Flat     string    `json:"flat,omitempty"`
}

// Line renders the address on one line in lang.
func (a Address) Line(lang i18n.Lang) string {
	parts := []string{a.Region.In(lang)}
	if loc := a.Locality.In(lang); loc != "" && loc != parts[0] {
		parts = append(parts, loc)
	}
	parts = append(parts, a.Street, i18n.T(lang, "address.house", a.House))
	if a.Flat != "" {
		parts = append(parts, i18n.T(lang, "address.flat", a.Flat))
	}
	return strings.Join(parts, ", ")
}

// Access says who reads a person's data and why; it goes to the audit trail.
type Access struct {
	Actor     string // "system:process", "citizen:<IIN>", ...
	Purpose   string // the service or legal basis
	Object    string // what the read is for: "application:<id>"
	RequestID string
}

// Population is the population registry.
type Population struct {
	pool  *pgxpool.Pool
	clock clock.Clock
}

// NewPopulation returns the registry on pool.
func NewPopulation(pool *pgxpool.Pool, c clock.Clock) *Population {
	return &Population{pool: pool, clock: c}
}

// ErrAccessUnexplained means a read lacked an actor or a purpose.
var ErrAccessUnexplained = errors.New("registry read without actor and purpose")

// Person reads one person within tx and audits the read in the same
// transaction. found is false when the registry has no such person; the
// attempt is audited all the same.
func (p *Population) Person(ctx context.Context, tx pgx.Tx, id iin.IIN, a Access) (person Person, found bool, err error) {
	if a.Actor == "" || a.Purpose == "" {
		return Person{}, false, ErrAccessUnexplained
	}
	var addr *Address
	err = tx.QueryRow(ctx, `
		SELECT iin, last_name, first_name, patronymic, birth_date, sex, address
		FROM population_person WHERE iin = $1`, id.String()).
		Scan(&person.IIN, &person.LastName, &person.FirstName, &person.Patronymic, &person.BirthDate, &person.Sex, &addr)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		found = false
	case err != nil:
		return Person{}, false, fmt.Errorf("read population record: %w", err)
	default:
		found = true
		person.Address = addr
	}
	if err := audit.Record(ctx, tx, audit.Event{
		At:         p.clock.Now(),
		Actor:      a.Actor,
		Action:     "registry.population.read",
		SubjectIIN: id.String(),
		Object:     a.Object,
		Purpose:    a.Purpose,
		RequestID:  a.RequestID,
	}); err != nil {
		return Person{}, false, err
	}
	return person, found, nil
}

// Import loads persons in bulk (COPY), replacing nobody: it fails on a
// duplicate IIN. It returns how many rows it wrote.
func (p *Population) Import(ctx context.Context, persons []Person) (int64, error) {
	now := p.clock.Now()
	rows := make([][]any, len(persons))
	for i, x := range persons {
		var addr any
		if x.Address != nil {
			addr = x.Address
		}
		rows[i] = []any{x.IIN.String(), x.LastName, x.FirstName, x.Patronymic, x.BirthDate, x.Sex, addr, now}
	}
	n, err := p.pool.CopyFrom(ctx, pgx.Identifier{"population_person"},
		[]string{"iin", "last_name", "first_name", "patronymic", "birth_date", "sex", "address", "updated_at"},
		pgx.CopyFromRows(rows))
	if err != nil {
		return 0, fmt.Errorf("import population: %w", err)
	}
	return n, nil
}

// Count returns the number of persons in the registry.
func (p *Population) Count(ctx context.Context) (int64, error) {
	var n int64
	err := p.pool.QueryRow(ctx, `SELECT count(*) FROM population_person`).Scan(&n)
	return n, err
}
